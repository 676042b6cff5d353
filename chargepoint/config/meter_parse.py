"""``[meter]``: the station's energy meter, and the grid meter's table of the same keys.

Split from the loader because two sections read these keys (``[meter]`` and
``[load.meter]``, which ``energy_parse`` checks with this function) and the
supervisor's view of the file reads them too (``safety_view``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chargepoint.config.model import MeterConfig
from chargepoint.config.reader import Reader, did_you_mean, table

METER_KINDS = ("sim", "sim-modbus", "modbus")
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def parse_meter(file: str, data: dict[str, Any], prefix: str = "meter") -> MeterConfig:
    """``[meter]``, or another meter's table of the same keys (``prefix`` names it, e.g. load.meter)."""
    from dataclasses import replace

    from hal.meters.registermap import MapError, load_map, shipped_models

    r = Reader(file, table(file, data, "meter"), prefix)
    d = MeterConfig()
    cfg = MeterConfig(
        poll_interval_s=r.number("poll_interval_s", d.poll_interval_s, low=0.1, high=3600),
        kind=r.string("kind", d.kind),
        model=r.string("model", d.model),
        map_file=r.string("map_file", d.map_file),
        transport=r.string("transport", d.transport),
        port=r.string("port", d.port),
        baudrate=r.number("baudrate", d.baudrate, integer=True),
        parity=r.string("parity", d.parity),
        stopbits=r.number("stopbits", d.stopbits, low=1, high=2, integer=True),
        host=r.string("host", d.host),
        tcp_port=r.number("tcp_port", d.tcp_port, low=1, high=65535, integer=True),
        unit_id=r.number("unit_id", d.unit_id, low=1, high=247, integer=True),
        timeout_s=r.number("timeout_s", d.timeout_s, low=0.05, high=10),
        retries=r.number("retries", d.retries, low=0, high=5, integer=True),
        # The plausibility of the import register is the station meter's (a grid meter's is not billed).
        max_power_w=r.number("max_power_w", d.max_power_w, low=0, high=1_000_000) if prefix == "meter"
        else d.max_power_w,
    )
    if cfg.kind not in METER_KINDS:
        r.refuse("kind", f"unknown meter kind {cfg.kind!r}; known: {', '.join(METER_KINDS)}"
                 + did_you_mean(cfg.kind, METER_KINDS))
    if cfg.map_file:
        path = Path(cfg.map_file)
        if not path.is_absolute():
            path = Path(file).parent / path
        try:
            load_map(path=path)
        except MapError as exc:
            r.refuse("map_file", f"register map rejected: {exc}")
        cfg = replace(cfg, map_file=str(path))
    elif cfg.model not in shipped_models():
        r.refuse("model", f"unknown meter model {cfg.model!r}; shipped: "
                 f"{', '.join(sorted(shipped_models()))} (or give map_file)")
    if cfg.transport not in ("rtu", "tcp"):
        r.refuse("transport", f"must be 'rtu' or 'tcp', not {cfg.transport!r}: 'rtu' for an RS-485 adapter "
                 "(with port), 'tcp' for Modbus TCP or a gateway (with host)")
    if cfg.baudrate not in BAUD_RATES:
        r.refuse("baudrate", f"must be one of {', '.join(map(str, BAUD_RATES))}")
    if cfg.parity not in ("N", "E", "O"):
        r.refuse("parity", f"must be 'N', 'E' or 'O', not {cfg.parity!r}")
    if cfg.kind == "modbus" and cfg.transport == "tcp" and not cfg.host:
        r.refuse("host", "is required with transport = 'tcp': the address of the meter or its Modbus TCP "
                 "gateway (or transport = 'rtu' with port for an RS-485 adapter)")
    if cfg.kind == "modbus" and cfg.transport == "rtu" and not cfg.port:
        r.refuse("port", "is required with transport = 'rtu': the RS-485 adapter's device, e.g. "
                 "/dev/serial/by-id/... (ls /dev/serial/by-id/ lists them), or transport = 'tcp' with host")
    r.finish()
    return cfg
