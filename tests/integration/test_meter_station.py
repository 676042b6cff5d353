"""Meter figures reach OCPP through the real driver; bus faults reach the CSMS and pass.

The daemon runs on the sim hal with its meter either served by the
simulation through a loopback Modbus TCP device (kind "sim-modbus", as in
the demo) or a Modbus RTU meter on a socat pty (kind "modbus").
"""

from __future__ import annotations

from hal.interfaces import MeterFailureKind
from hal.meters.modbus_meter import ModbusMeter
from hal.meters.registermap import load_map
from hal.meters.simdevice import LoopbackSimMeter, SimModbusDevice, SimModbusLine
from tests.integration.meter_rig import VALUES, PtyPair, rtu_line

CARD = "CAFE0001"


async def test_sim_modbus_meter_feeds_transactions_and_meter_values(csms, station) -> None:
    async with station(meter={"kind": "sim-modbus", "model": "sdm630", "poll_interval_s": 1.0}) as daemon:
        world = daemon.hardware.worlds[1]
        meter = daemon.station.connectors[1].meter
        assert isinstance(meter, LoopbackSimMeter)
        await csms.wait_for("StatusNotification", connector_id=1, status="Available")
        world.plug_in()
        world.card_reader.tap(CARD)
        start = (await csms.wait_for("StartTransaction"))[0].payload
        samples = await csms.wait_for("MeterValues", count=2)
        values = samples[-1].payload["meter_value"][0]["sampled_value"]
        currents = [float(v["value"]) for v in values if v["measurand"] == "Current.Import"]
        assert currents == [16.0, 16.0, 16.0]  # the EV's 16 A, through SDM630 registers
        energy = [float(v["value"]) for v in values if v["measurand"] == "Energy.Active.Import.Register"]
        assert energy and energy[0] > start["meter_start"]
        await csms.remote_stop(100)
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["meter_stop"] >= energy[0]
        # the reading came over the wire: the device answered the driver's requests
        assert meter.device is not None and meter.device.requests >= 4 * 3
        assert abs(stop["meter_stop"] - world.meter.energy_wh) < 50


async def test_sim_modbus_meter_failure_is_reported_and_recovers(csms, station) -> None:
    async with station(meter={"kind": "sim-modbus"}) as daemon:
        world = daemon.hardware.worlds[1]
        await csms.wait_for("StatusNotification", connector_id=1)
        world.meter.fail_next(MeterFailureKind.EXCEPTION_RESPONSE, count=3)
        failed = (await csms.wait_for("StatusNotification", connector_id=1,
                                      error_code="PowerMeterFailure"))[0]
        assert failed.payload["status"] == "Available"
        await csms.wait_for("StatusNotification", connector_id=1, error_code="NoError", count=2)


async def test_rtu_meter_silent_then_back(csms, station, tmp_path) -> None:
    device = SimModbusDevice(load_map("sdm630"), VALUES, unit_id=1)
    async with rtu_line(tmp_path, device, name="rs485") as pair:
        meter_section = {"kind": "modbus", "model": "sdm630", "port": str(pair.a), "timeout_s": 0.1,
                         "retries": 0, "max_power_w": 0}
        async with station(meter=meter_section) as daemon:
            assert isinstance(daemon.station.connectors[1].meter, ModbusMeter)
            await csms.wait_for("StatusNotification", connector_id=1, status="Available")
            device.silent = True
            await csms.wait_for("StatusNotification", connector_id=1, error_code="PowerMeterFailure")
            device.silent = False
            await csms.wait_for("StatusNotification", connector_id=1, error_code="NoError", count=2)
            assert daemon.station.connectors[1].last_reading.energy_import_wh == 12_345_678.0


async def test_usb_adapter_unplugged_and_back_under_the_daemon(csms, station, tmp_path) -> None:
    device = SimModbusDevice(load_map("em340"), VALUES, unit_id=4)
    pair = PtyPair(tmp_path / "ttyUSB0", tmp_path / "meter").start()
    line = SimModbusLine([device])
    await line.serve_rtu(str(pair.b))
    meter_section = {"kind": "modbus", "model": "em340", "port": str(pair.a), "unit_id": 4,
                     "timeout_s": 0.1, "retries": 0}
    try:
        async with station(meter=meter_section) as daemon:
            await csms.wait_for("StatusNotification", connector_id=1, status="Available")
            await line.close()
            pair.stop()
            await csms.wait_for("StatusNotification", connector_id=1, error_code="PowerMeterFailure")
            pair.start()
            await line.serve_rtu(str(pair.b))
            await csms.wait_for("StatusNotification", connector_id=1, error_code="NoError", count=2)
            assert daemon.station.connectors[1].meter_failures == 0
    finally:
        await line.close()
        pair.stop()


async def test_a_transaction_ends_with_the_last_good_reading_not_a_made_up_one(
        csms, station, tmp_path) -> None:
    device = SimModbusDevice(load_map("abb-b23"), VALUES, unit_id=1)
    async with rtu_line(tmp_path, device) as pair:
        meter_section = {"kind": "modbus", "model": "abb-b23", "port": str(pair.a), "timeout_s": 0.1,
                         "retries": 0}
        async with station(meter=meter_section) as daemon:
            world = daemon.hardware.worlds[1]
            await csms.wait_for("StatusNotification", connector_id=1, status="Available")
            world.plug_in()
            world.card_reader.tap(CARD)
            start = (await csms.wait_for("StartTransaction"))[0].payload
            assert start["meter_start"] == 12_345_680  # 12345.68 kWh in ABB's 0.01 kWh steps
            device.values["energy_import"] = 12_345_700.0
            await csms.wait_for("MeterValues")
            device.silent = True
            await csms.wait_for("StatusNotification", connector_id=1, error_code="PowerMeterFailure")
            await csms.remote_stop(100)
            stop = (await csms.wait_for("StopTransaction"))[0].payload
            assert stop["meter_stop"] == 12_345_700


async def test_export_and_single_phases_on_the_16_wire(csms, station) -> None:
    """An ABB meter reads a negative total power (the EV feeds back): MeterValues carries it as a
    positive Power.Active.Export, the export register, and the selected phases with their phase;
    the CSMS (the ``ocpp`` library) validated the payload against the 1.6 schema."""
    device = SimModbusDevice(load_map("abb-b23"), VALUES, unit_id=3)
    port = await device.serve_tcp()
    sampled = ["Energy.Active.Import.Register", "Energy.Active.Export.Register", "Power.Active.Import",
               "Power.Active.Export", "Power.Active.Import.L1", "Power.Active.Export.L3",
               "Power.Factor.L2"]
    meter_section = {"kind": "modbus", "model": "abb-b23", "transport": "tcp", "host": "127.0.0.1",
                     "tcp_port": port, "unit_id": 3, "timeout_s": 0.5, "max_power_w": 0}
    try:
        async with station(meter=meter_section, ocpp={"meter_values_sampled_data": sampled}) as daemon:
            world = daemon.hardware.worlds[1]
            await csms.wait_for("StatusNotification", connector_id=1, status="Available")
            world.plug_in()
            world.card_reader.tap(CARD)
            await csms.wait_for("StartTransaction")
            sample = (await csms.wait_for("MeterValues"))[0].payload
            await csms.remote_stop(100)
            await csms.wait_for("StopTransaction")
    finally:
        await device.close()
    values = sample["meter_value"][0]["sampled_value"]
    wire = {(v["measurand"], v.get("phase")): (v["value"], v.get("unit")) for v in values}
    assert wire == {
        ("Energy.Active.Import.Register", None): ("12345680", "Wh"),
        ("Energy.Active.Export.Register", None): ("4320", "Wh"),
        ("Power.Active.Import", None): ("0", "W"),
        ("Power.Active.Export", None): ("1234.5", "W"),
        ("Power.Active.Import", "L1"): ("411.5", "W"),
        ("Power.Active.Export", "L3"): ("2058", "W"),
        ("Power.Factor", "L2"): ("-0.5", None),
    }
    assert all(not v["value"].startswith("-") for v in values if v["measurand"].startswith("Power.Active"))
