"""Bus faults become typed failures, and readings resume by themselves when the fault goes.

Real parts only: socat pty pairs for RTU, a relay between two pairs that
corrupts or cuts the meter's answers, loopback TCP, and a pymodbus server
holding the meter's register layout.
"""

from __future__ import annotations

from hal.interfaces import MeterFailure, MeterFailureKind, MeterReading
from hal.meters.bus import BusSettings, ModbusBus
from hal.meters.modbus_meter import ModbusMeter
from hal.meters.registermap import load_map
from hal.meters.simdevice import SimModbusDevice, SimModbusLine
from tests.integration.meter_rig import (
    VALUES,
    LineRelay,
    PtyPair,
    rtu_line,
    rtu_meter,
    tcp_meter,
)

SDM = load_map("sdm630")


def failed(result: object, kind: MeterFailureKind) -> MeterFailure:
    assert isinstance(result, MeterFailure), result
    assert result.kind == kind, result
    return result


def good(result: object) -> MeterReading:
    assert isinstance(result, MeterReading), result
    return result


async def test_a_meter_that_stops_answering_and_comes_back(tmp_path) -> None:
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    async with rtu_line(tmp_path, device) as pair:
        meter = rtu_meter(pair, SDM, 1, timeout_s=0.15, retries=1)
        try:
            good(await meter.read())
            device.silent = True
            before = device.requests
            failure = failed(await meter.read(), MeterFailureKind.NO_ANSWER)
            assert "no answer from unit 1" in failure.detail
            assert device.requests == before + 2  # the first request, and its one retry
            device.silent = False
            good(await meter.read())
        finally:
            await meter.close()


async def test_wrong_unit_id_gets_no_answer(tmp_path) -> None:
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    async with rtu_line(tmp_path, device) as pair:
        meter = rtu_meter(pair, SDM, 17, timeout_s=0.15)
        try:
            failure = failed(await meter.read(), MeterFailureKind.NO_ANSWER)
        finally:
            await meter.close()
    assert "unit 17" in failure.detail
    assert device.requests == 0


async def test_exception_responses_are_reported_and_not_retried(tmp_path) -> None:
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    async with rtu_line(tmp_path, device) as pair:
        meter = rtu_meter(pair, SDM, 1, retries=2)
        try:
            device.exception_code = 4
            failure = failed(await meter.read(), MeterFailureKind.EXCEPTION_RESPONSE)
            assert failure.extra["exception_code"] == "4"
            assert "server device failure" in failure.detail
            assert device.requests == 1
            device.exception_code = 6
            failure = failed(await meter.read(), MeterFailureKind.EXCEPTION_RESPONSE)
            assert "busy" in failure.detail
            device.exception_code = None
            good(await meter.read())
        finally:
            await meter.close()


async def test_the_wrong_model_is_answered_with_illegal_data_address() -> None:
    """An ABB meter asked for an SDM630's registers: exception 02, as the real one answers."""
    device = SimModbusDevice(load_map("abb-b23"), VALUES, unit_id=1)
    port = await device.serve_tcp()
    meter = tcp_meter(port, SDM, 1)
    try:
        failure = failed(await meter.read(), MeterFailureKind.EXCEPTION_RESPONSE)
    finally:
        await meter.close()
        await device.close()
    assert failure.extra["exception_code"] == "2" and "illegal data address" in failure.detail


async def test_crc_errors_from_a_corrupting_line_and_recovery(tmp_path) -> None:
    """client <-> pty pair <-> relay (flips a byte of each answer) <-> pty pair <-> meter."""
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    client_side = PtyPair(tmp_path / "client", tmp_path / "relay-a").start()
    meter_side = PtyPair(tmp_path / "relay-b", tmp_path / "meter").start()
    line = SimModbusLine([device])
    await line.serve_rtu(str(meter_side.b))
    relay = LineRelay(client_side.b, meter_side.a).start()
    meter = rtu_meter(client_side, SDM, 1, timeout_s=0.15, retries=1)
    try:
        good(await meter.read())
        relay.corrupt = True
        failure = failed(await meter.read(), MeterFailureKind.CRC)
        assert "CRC error" in failure.detail
        relay.corrupt = False
        relay.truncate = 3
        failure = failed(await meter.read(), MeterFailureKind.TIMEOUT)
        assert "cut short" in failure.detail
        relay.truncate = 0
        good(await meter.read())
        assert relay.bytes_to_client > 0 and relay.bytes_to_meter > 0
    finally:
        await meter.close()
        relay.stop()
        await line.close()
        client_side.stop()
        meter_side.stop()


async def test_one_garbled_answer_is_absorbed_by_a_retry(tmp_path) -> None:
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    async with rtu_line(tmp_path, device) as pair:
        meter = rtu_meter(pair, SDM, 1, timeout_s=0.15, retries=1)
        try:
            device.corrupt = 1
            good(await meter.read())
            assert device.requests == len(SDM.plan()) + 1
        finally:
            await meter.close()


async def test_the_usb_adapter_vanishes_and_comes_back(tmp_path) -> None:
    """socat killed and started again on the same link paths: the port is reopened."""
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    pair = PtyPair(tmp_path / "ttyUSB0", tmp_path / "meter").start()
    line = SimModbusLine([device])
    await line.serve_rtu(str(pair.b))
    meter = rtu_meter(pair, SDM, 1, timeout_s=0.15)
    try:
        good(await meter.read())
        first_pts = pair.pts
        await line.close()
        pair.stop()
        failure = failed(await meter.read(), MeterFailureKind.DISCONNECTED)
        failure = failed(await meter.read(), MeterFailureKind.DISCONNECTED)
        assert "cannot open" in failure.detail
        pair.start()
        await line.serve_rtu(str(pair.b))
        good(await meter.read())
        assert pair.pts is not None and first_pts is not None
    finally:
        await meter.close()
        await line.close()
        pair.stop()


async def test_tcp_meter_gone_and_back_on_the_same_port() -> None:
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    port = await device.serve_tcp()
    meter = tcp_meter(port, SDM, 1, timeout_s=0.2)
    try:
        good(await meter.read())
        await device.close()
        failed(await meter.read(), MeterFailureKind.DISCONNECTED)
        failure = failed(await meter.read(), MeterFailureKind.DISCONNECTED)
        assert f"cannot connect to 127.0.0.1:{port}" in failure.detail
        await device.serve_tcp(port=port)
        good(await meter.read())
    finally:
        await meter.close()
        await device.close()


async def test_tcp_meter_that_keeps_silent() -> None:
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    port = await device.serve_tcp()
    meter = tcp_meter(port, SDM, 1, timeout_s=0.15)
    try:
        device.silent = True
        for _ in range(4):  # after three silent requests the connection is replaced
            failed(await meter.read(), MeterFailureKind.NO_ANSWER)
        device.silent = False
        good(await meter.read())
    finally:
        await meter.close()
        await device.close()


async def test_implausible_registers_over_the_wire() -> None:
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    port = await device.serve_tcp()
    meter = tcp_meter(port, SDM, 1, max_power_w=22_000.0)
    try:
        good(await meter.read())
        device.values["energy_import"] = VALUES["energy_import"] - 5_000.0  # type: ignore[operator]
        failure = failed(await meter.read(), MeterFailureKind.IMPLAUSIBLE)
        assert "backwards" in failure.detail and failure.extra["last_good_wh"] == "12345678.0"
        device.values["energy_import"] = VALUES["energy_import"] + 1_000_000.0  # type: ignore[operator]
        failure = failed(await meter.read(), MeterFailureKind.IMPLAUSIBLE)
        assert "jumped" in failure.detail
        device.values["energy_import"] = VALUES["energy_import"] + 1.0  # type: ignore[operator]
        assert good(await meter.read()).energy_import_wh == 12_345_679.0
    finally:
        await meter.close()
        await device.close()


async def test_a_closed_meter_reports_disconnected() -> None:
    device = SimModbusDevice(SDM, VALUES, unit_id=1)
    port = await device.serve_tcp()
    meter = tcp_meter(port, SDM, 1)
    await meter.close()
    await device.close()
    failed(await meter.read(), MeterFailureKind.DISCONNECTED)


async def test_ports_that_cannot_be_opened_are_failures_not_exceptions(tmp_path) -> None:
    missing = rtu_meter(PtyPair(tmp_path / "none", tmp_path / "nothing"), SDM, 1)
    pair = PtyPair(tmp_path / "ttyUSB0", tmp_path / "meter").start()
    # a pty refuses parity: the settings are rejected when the port is configured
    refused = ModbusMeter(ModbusBus(BusSettings("rtu", port=str(pair.a), parity="E", timeout_s=0.1)), SDM, 1)
    try:
        failure = failed(await missing.read(), MeterFailureKind.DISCONNECTED)
        assert f"cannot open {tmp_path / 'none'}" in failure.detail
        failure = failed(await refused.read(), MeterFailureKind.DISCONNECTED)
        assert "8E1" in failure.detail
    finally:
        await missing.close()
        await refused.close()
        pair.stop()
