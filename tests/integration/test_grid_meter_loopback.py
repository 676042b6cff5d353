"""The "sim-modbus" grid meter: a pymodbus server on loopback read by the real driver, closed cleanly.

A daemon stopping while the first grid read is still starting the server must
not leave a server behind (it kept a stopping daemon alive once).
"""

from __future__ import annotations

import asyncio
import socket

from hal.grid import GridReading
from hal.interfaces import MeterFailure, MeterFailureKind
from hal.meters.grid_meter import LoopbackGridMeter
from hal.meters.registermap import load_map

VALUES = {"voltage_l1_v": 230.0, "voltage_l2_v": 231.0, "voltage_l3_v": 229.0,
          "current_l1_a": 10.0, "current_l2_a": 4.0, "current_l3_a": 2.0,
          "power_l1_w": 2300.0, "power_l2_w": -900.0, "power_l3_w": 450.0,
          "power_w": 1850.0, "energy_import_wh": 1_000_000.0, "energy_export_wh": 20_000.0}


async def _values() -> dict[str, float | None]:
    return dict(VALUES)


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return True
    return False


async def test_reads_through_the_real_driver_and_close_stops_the_server():
    meter = LoopbackGridMeter(_values, load_map("sdm630"), unit_id=3)
    reading = await meter.read()
    assert isinstance(reading, GridReading), reading
    assert meter.port and not _refused(meter.port)
    await meter.close()
    assert meter.device is None and meter.meter is None
    after = await meter.read()
    assert isinstance(after, MeterFailure) and after.kind is MeterFailureKind.DISCONNECTED
    assert _refused(meter.port), "the server is gone"


async def test_a_close_during_the_first_read_leaves_no_server_behind():
    meter = LoopbackGridMeter(_values, load_map("sdm630"), unit_id=3)
    first = asyncio.ensure_future(meter.read())
    await asyncio.sleep(0)  # the read has begun starting the server
    await meter.close()
    assert isinstance(await first, GridReading | MeterFailure)
    assert meter.device is None and meter.meter is None, "the server the read started was closed too"
    assert not meter.port or _refused(meter.port)
    assert isinstance(await meter.read(), MeterFailure)
