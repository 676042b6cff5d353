"""Every shipped map over real Modbus RTU (socat ptys) and Modbus TCP (loopback).

The meter side is a pymodbus server holding the model's register layout
(:class:`hal.meters.simdevice.SimModbusDevice`); the station side is the
driver the daemon uses (:class:`hal.meters.modbus_meter.ModbusMeter`).
"""

from __future__ import annotations

import asyncio

import pytest

from hal.clock import ManualClock
from hal.interfaces import MeterFailure, MeterFailureKind, MeterReading
from hal.meters.bus import BusPool, BusSettings
from hal.meters.modbus_meter import ModbusMeter
from hal.meters.registermap import load_map
from hal.meters.simdevice import LoopbackSimMeter, SimModbusDevice
from hal.sim.world import SimWorld
from tests.integration.meter_rig import VALUES, assert_values, rtu_line, rtu_meter, tcp_meter

MODELS = ("sdm630", "sdm72d-m", "sdm120", "abb-b23", "em340", "orno-we517")


@pytest.mark.parametrize("model", MODELS)
async def test_model_over_rtu(model: str, tmp_path) -> None:
    register_map = load_map(model)
    device = SimModbusDevice(register_map, VALUES, unit_id=7)
    async with rtu_line(tmp_path, device) as pair:
        meter = rtu_meter(pair, register_map, 7)
        try:
            values = await meter.read_values()
            reading = await meter.read()
        finally:
            await meter.close()
    assert_values(register_map, values)
    assert not isinstance(reading, Exception) and reading.energy_import_wh == values["energy_import"]
    assert device.requests == 2 * len(register_map.plan())


@pytest.mark.parametrize("model", MODELS)
async def test_model_over_tcp(model: str) -> None:
    register_map = load_map(model)
    device = SimModbusDevice(register_map, VALUES, unit_id=3)
    port = await device.serve_tcp()
    meter = tcp_meter(port, register_map, 3)
    try:
        values = await meter.read_values()
    finally:
        await meter.close()
        await device.close()
    assert_values(register_map, values)
    assert device.requests == len(register_map.plan())


async def test_two_meters_share_one_rs485_line(tmp_path) -> None:
    """A station meter and a grid meter on one adapter: one client, one lock, no collisions."""
    sdm, em = load_map("sdm630"), load_map("em340")
    first = SimModbusDevice(sdm, VALUES, unit_id=1)
    second = SimModbusDevice(em, dict(VALUES, energy_import=5_000_000.0), unit_id=2)
    async with rtu_line(tmp_path, first, second) as pair:
        pool = BusPool()
        settings = BusSettings("rtu", port=str(pair.a), timeout_s=0.3)
        meters = [ModbusMeter(pool.get(settings), sdm, 1), ModbusMeter(pool.get(settings), em, 2)]
        assert meters[0].bus is meters[1].bus and meters[0].bus.users == 2
        try:
            for _ in range(5):
                a, b = await asyncio.gather(meters[0].read(), meters[1].read())
                assert not isinstance(a, Exception) and a.energy_import_wh == 12_345_678.0
                assert not isinstance(b, Exception) and b.energy_import_wh == 5_000_000.0
        finally:
            for meter in meters:
                await meter.close()
        assert not meters[0].bus.connected  # the last user closed the port
    assert first.requests == 5 * len(sdm.plan()) and second.requests == 5 * len(em.plan())


async def test_a_read_does_not_block_the_event_loop(tmp_path) -> None:
    register_map = load_map("sdm630")
    device = SimModbusDevice(register_map, VALUES, unit_id=1)
    device.silent = True
    async with rtu_line(tmp_path, device) as pair:
        meter = rtu_meter(pair, register_map, 1, timeout_s=5.0)
        try:
            task = asyncio.ensure_future(meter.read())
            await asyncio.sleep(0.05)  # this coroutine runs while the meter keeps silent
            assert not task.done()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            await meter.close()


async def test_loopback_sim_meter_carries_the_simulation_and_its_failures() -> None:
    """The demo's meter: SimWorld's values through SDM630 registers on loopback TCP."""
    clock = ManualClock()
    world = SimWorld(clock, meter_start_wh=1500.0)
    meter = LoopbackSimMeter(world.meter, "sdm630", clock=clock, max_power_w=30_000.0)
    try:
        reading = await meter.read()
        assert isinstance(reading, MeterReading)
        direct = await world.meter.read()
        assert isinstance(direct, MeterReading)
        assert reading.energy_import_wh == direct.energy_import_wh == 1500.0
        assert reading.voltages_v == direct.voltages_v and reading.frequency_hz == direct.frequency_hz
        for queued, seen in ((MeterFailureKind.EXCEPTION_RESPONSE, MeterFailureKind.EXCEPTION_RESPONSE),
                             (MeterFailureKind.TIMEOUT, MeterFailureKind.NO_ANSWER),
                             (MeterFailureKind.CRC, MeterFailureKind.NO_ANSWER)):  # TCP: no checksum
            world.meter.fail_next(queued)
            failure = await meter.read()
            assert isinstance(failure, MeterFailure) and failure.kind == seen
        assert isinstance(await meter.read(), MeterReading)
    finally:
        await meter.close()
    assert isinstance(await world.meter.read(), MeterFailure)  # closed with it
