"""The ``[load]``, ``[load.meter]``, ``[solar]`` and ``[house]`` sections: the house's fuse and sun.

Kept beside the other sections' parsing because their rules reach across
sections: solar charging needs the grid meter of load management, a simulated
grid meter needs the simulated hardware, and a grid meter on the station
meter's RS-485 line must be configured as that line is. The grid meter's own
keys are those of ``[meter]``, checked by the same function (passed in by the
loader, which owns it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chargepoint.config.model import SOLAR_MODES, Config, HouseConfig, LoadConfig, MeterConfig, SolarConfig
from chargepoint.config.reader import ConfigError, Reader, did_you_mean, report, table

#: The slowest grid meter poll that still answers an overload within 2 s of the meter seeing it.
MAX_GRID_POLL_S = 2.0
#: Switching more often than this wears the contactor and annoys the car.
MIN_SWITCH_INTERVAL_S = 60.0

MeterParser = Callable[[str, dict[str, Any], str], MeterConfig]


def parse_load(file: str, data: dict[str, Any], meter_parser: MeterParser) -> LoadConfig:
    raw = table(file, data, "load")
    sub = raw.get("meter", {})
    if not isinstance(sub, dict):
        raise ConfigError(file, "load.meter", "must be a table ([load.meter])")
    r = Reader(file, {k: v for k, v in raw.items() if k != "meter"}, "load")
    d = LoadConfig()
    cfg = LoadConfig(
        enabled=r.boolean("enabled", d.enabled),
        main_fuse_a=r.number("main_fuse_a", d.main_fuse_a, low=6, high=1000),
        margin_a=r.number("margin_a", d.margin_a, low=0, high=100),
        fallback_a=r.number("fallback_a", d.fallback_a, low=0, high=1000),
        stale_after_s=r.number("stale_after_s", d.stale_after_s, low=0.5, high=600),
        meter=meter_parser(file, {"meter": sub}, "load.meter"),
    )
    usable = cfg.main_fuse_a - cfg.margin_a
    if usable < 6:
        r.problem("margin_a", f"leaves {usable:g} A of the {cfg.main_fuse_a:g} A fuse: less than 6 A", None)
    if cfg.fallback_a > usable:
        r.problem("fallback_a", f"must not exceed main_fuse_a - margin_a ({usable:g} A)", None)
    if cfg.enabled and cfg.meter.poll_interval_s > MAX_GRID_POLL_S:
        raise ConfigError(file, "load.meter.poll_interval_s",
                          f"must be at most {MAX_GRID_POLL_S:g} s for load management "
                          "(an overload is answered within 2 s of the meter seeing it)")
    if cfg.stale_after_s < 2 * cfg.meter.poll_interval_s:
        r.problem("stale_after_s", f"must be at least twice load.meter.poll_interval_s "
                                   f"({2 * cfg.meter.poll_interval_s:g} s)", None)
    r.finish()
    return cfg


def parse_solar(file: str, data: dict[str, Any]) -> SolarConfig:
    r = Reader(file, table(file, data, "solar"), "solar")
    d = SolarConfig()
    cfg = SolarConfig(
        mode=r.string("mode", d.mode),
        enable_delay_s=r.number("enable_delay_s", d.enable_delay_s, low=0, high=3600),
        disable_delay_s=r.number("disable_delay_s", d.disable_delay_s, low=0, high=3600),
        min_switch_interval_s=r.number("min_switch_interval_s", d.min_switch_interval_s,
                                       low=MIN_SWITCH_INTERVAL_S, high=3600),
        hysteresis_a=r.number("hysteresis_a", d.hysteresis_a, low=0, high=6),
    )
    if cfg.mode not in SOLAR_MODES:
        r.problem("mode", f"unknown mode {cfg.mode!r}; known: {', '.join(SOLAR_MODES)}"
                  + did_you_mean(cfg.mode, SOLAR_MODES), None)
    r.finish()
    return cfg


def parse_house(file: str, data: dict[str, Any]) -> HouseConfig:
    r = Reader(file, table(file, data, "house"), "house")
    d = HouseConfig()
    cfg = HouseConfig(
        base_load_w=r.number("base_load_w", d.base_load_w, low=0, high=100_000),
        pv_peak_w=r.number("pv_peak_w", d.pv_peak_w, low=0, high=200_000),
        cloudiness=r.number("cloudiness", d.cloudiness, low=0, high=1),
        seed=r.number("seed", d.seed, low=0, high=2**31 - 1, integer=True),
        day_start_h=r.number("day_start_h", d.day_start_h, low=0, high=24),
        time_factor=r.number("time_factor", d.time_factor, low=0.01, high=10_000),
    )
    r.finish()
    return cfg


def check_energy(file: str, config: Config) -> None:
    """The rules across sections (see the module doc)."""
    load, solar = config.load, config.solar
    if solar.mode != "fast" and not load.enabled:
        report(ConfigError(file, "solar.mode", f"{solar.mode!r} needs the grid meter: set load.enabled = "
                                               "true and configure [load.meter]"))
    if not load.enabled:
        return
    grid, station = load.meter, config.meter
    if grid.kind != "modbus" and config.hal_backend != "sim":
        reason = (f'must be "modbus" with hal.backend = "{config.hal_backend}" (a real grid meter), '
                  f"not {grid.kind!r}")
        report(ConfigError(file, "load.meter.kind", reason))
    if grid.kind == "modbus" and station.kind == "modbus" and grid.transport == station.transport == "rtu" \
            and grid.port == station.port:
        for name in ("baudrate", "parity", "stopbits", "timeout_s"):
            if getattr(grid, name) != getattr(station, name):
                reason = (f"the grid meter shares {grid.port} with [meter]: "
                          f"must be {getattr(station, name)!r} as there")
                report(ConfigError(file, f"load.meter.{name}", reason))
        station_units = {c.meter_unit_id or station.unit_id + c.id - 1 for c in config.connectors}
        if grid.unit_id in station_units:
            report(ConfigError(file, "load.meter.unit_id", f"unit {grid.unit_id} on {grid.port} is a "
                                                           "connector's meter; the grid meter needs its own"))
