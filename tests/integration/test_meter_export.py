"""An exporting meter reads as export everywhere: ``chargepoint meter``, ``status`` and both versions' wire.

Datasheet-faithful Modbus emulators (``hal.meters.simdevice``) hold the meter rig's values: the total
power is negative (the EV feeds back, 1234.5 W), L1 and L2 import, L3 exports 2058 W. The station
samples with the shipped default measurands, import only: Energy.Active.Import.Register,
Power.Active.Import, Current.Import.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from chargepoint.cli import main
from hal.meters.registermap import load_map
from hal.meters.simdevice import SimModbusDevice
from tests.integration.conftest import running, station_config, until
from tests.integration.loopback_csms import LoopbackCsms
from tests.integration.loopback_csms201 import LoopbackCsms201
from tests.integration.meter_rig import VALUES, rtu_line

CARD = "CAFE0001"
#: What the defaults carry while the meter exports: (measurand, phase) -> value.
ON_THE_WIRE = {
    ("Energy.Active.Import.Register", None): 12_345_678.0,
    ("Energy.Active.Export.Register", None): 4321.0,
    ("Power.Active.Export", None): 1234.5,
    ("Current.Import", "L1"): 1.786,
    ("Current.Import", "L2"): 16.002,
    ("Current.Export", "L3"): 31.99,
}


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


async def test_chargepoint_meter_reads_export_as_export(tmp_path: Path) -> None:
    device = SimModbusDevice(load_map("sdm630"), VALUES, unit_id=1)
    async with rtu_line(tmp_path, device) as pair:
        shown = await asyncio.to_thread(cli, "meter", "--model", "sdm630", "--port", str(pair.a), "--json")
        table = await asyncio.to_thread(cli, "meter", "--model", "sdm630", "--port", str(pair.a))
    assert shown.exit_code == 0, shown.output
    doc = json.loads(shown.stdout)
    assert doc["values"]["power"] == -1234.5  # the meter's own sign, for the wiring check
    rows = {r["quantity"]: (r["measurand"], r["phase"], r["value"]) for r in doc["measurands"]}
    assert rows["power"] == ("Power.Active.Export", None, 1234.5)
    assert rows["power_l1"] == ("Power.Active.Import", "L1", 411.5)
    assert rows["power_l3"] == ("Power.Active.Export", "L3", 2058.0)
    assert rows["current_l1"][:2] == ("Current.Import", "L1")
    assert rows["current_l3"][:2] == ("Current.Export", "L3")
    assert rows["energy_export"][:2] == ("Energy.Active.Export.Register", None)
    assert table.exit_code == 0, table.output
    power = next(line for line in table.stdout.splitlines() if line.startswith("power "))
    assert power.split()[1:4] == ["1234.5", "W", "Power.Active.Export"]
    assert "-1234" not in table.stdout


def wire_values(meter_values: list[dict[str, Any]]) -> dict[tuple[str, str | None], float]:
    return {(v["measurand"], v.get("phase")): float(v["value"])
            for mv in meter_values for v in mv["sampled_value"]}


async def station_status(sock: str) -> tuple[dict[str, Any], str]:
    as_json = await asyncio.to_thread(cli, "status", "--json", "--socket", sock)
    text = await asyncio.to_thread(cli, "status", "--socket", sock)
    return json.loads(as_json.stdout)["connectors"][0]["meter"], text.stdout


def meter_section(port: int) -> dict[str, Any]:
    return {"kind": "modbus", "model": "sdm630", "transport": "tcp", "host": "127.0.0.1", "tcp_port": port,
            "unit_id": 1, "timeout_s": 0.5, "max_power_w": 0, "poll_interval_s": 0.5}


async def test_status_and_the_16_wire_say_export(tmp_path: Path) -> None:
    device = SimModbusDevice(load_map("sdm630"), VALUES, unit_id=1)
    port = await device.serve_tcp()
    csms = await LoopbackCsms().start()
    sock = str(tmp_path / "control.sock")
    config = station_config(csms.url, str(tmp_path / "state"), ocpp={"versions": ["1.6"]},
                            meter=meter_section(port), control={"socket": sock})
    try:
        async with running(config) as daemon:
            world = daemon.hardware.worlds[1]
            await csms.wait_for("StatusNotification", connector_id=1, status="Available", timeout=30)
            world.plug_in()
            world.card_reader.tap(CARD)
            await csms.wait_for("StartTransaction", timeout=30)
            sample = (await csms.wait_for("MeterValues", timeout=30))[0].payload
            meter, text = await station_status(sock)
            await csms.remote_stop(100)
            await csms.wait_for("StopTransaction", timeout=30)
    finally:
        await csms.close()
        await device.close()
    assert wire_values(sample["meter_value"]) == ON_THE_WIRE
    assert (meter["power_w"], meter["power_measurand"], meter["energy_export_wh"]) == (
        -1234.5, "Power.Active.Export", 4321.0)
    line = next(line for line in text.splitlines() if line.strip().startswith("meter "))
    assert "1234 W export (4.321 kWh exported)" in line and "-1234" not in line


async def test_the_201_wire_says_export(tmp_path: Path) -> None:
    device = SimModbusDevice(load_map("sdm630"), VALUES, unit_id=1)
    port = await device.serve_tcp()
    csms = await LoopbackCsms201().start()
    config = station_config(csms.url, str(tmp_path / "state"), ocpp={"versions": ["2.0.1"]},
                            meter=meter_section(port), control={"enabled": False})
    try:
        async with running(config) as daemon:
            await until(lambda: daemon.adapter is not None and daemon.adapter.accepted.is_set(), 30, "boot")
            world = daemon.hardware.worlds[1]
            world.plug_in()
            world.card_reader.tap(CARD)
            await csms.wait_for("TransactionEvent", event_type="Started", timeout=30)

            def periodic() -> list[dict[str, Any]]:
                return [mv for r in csms.of("TransactionEvent", event_type="Updated")
                        for mv in r.payload.get("meter_value") or []
                        if all(v.get("context") == "Sample.Periodic" for v in mv["sampled_value"])]

            samples = await until(periodic, 30, "a periodic sample")
    finally:
        await csms.close()
        await device.close()
    assert wire_values(samples[:1]) == ON_THE_WIRE
