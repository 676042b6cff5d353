"""Custom reports (GetReport, B block) and variable monitoring (N block) against the strict ``ocpp-rpc``
CSMS in 2.0.1, by OCTT case.

One daemon with one simulated connector: the CSMS asks for parts of the device
model by component criteria and by name, sets monitors on the measured power of
the EVSE and on the connector's availability, and is told, without polling,
when the power crosses a threshold (and again when it is back), when the
connector's state changes and, periodically, what the power is. Every frame the
station sends is schema-checked; the run must end with zero strict validation
failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.conftest import StationLog
from tests.integration.strict_peer import StrictPeer
from tests.integration.test_v201_strict import ok, peer

__all__ = ["peer"]  # the fixture: the node process serving 2.0.1

CARD = "CAFE0201"
EVSE1 = {"name": "EVSE", "evse": {"id": 1}}
CONNECTOR1 = {"name": "Connector", "evse": {"id": 1, "connectorId": 1}}


@asynccontextmanager
async def running(peer: StrictPeer, tmp_path: Path, reconnect_s: float = 0.2) -> AsyncIterator[Daemon]:
    station = Daemon(parse({
        "station": {"identity": "CP-MONITOR-201", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "meter_value_sample_interval_s": 60,
                 "reconnect_min_s": reconnect_s, "reconnect_max_s": reconnect_s * 5},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_v201_monitoring>"))
    task = asyncio.ensure_future(station.run())
    try:
        yield station
    finally:
        station.stop()
        await asyncio.wait_for(task, 20)


@pytest.fixture
def checked(peer: StrictPeer) -> Callable[[], None]:
    """Call at the end of a test: no frame refused by the strict peer, no connection lost."""
    def check() -> None:
        assert peer.strict_failures() == [], "ocpp-rpc (strict, 2.0.1) rejected frames" + peer.report()
        assert peer.of("badMessage") == [], peer.report()
    return check


async def _report(peer: StrictPeer, request_id: int, **request: Any) -> tuple[str, list[dict[str, Any]]]:
    """GetReport: its status and the ReportData of its NotifyReport parts."""
    status = (await ok(peer, "GetReport", {"requestId": request_id, **request}))["status"]
    if status != "Accepted":
        return status, []
    parts = await peer.wait(lambda: (lambda found: found if found and not found[-1].get("tbc") else None)(
        [c["params"] for c in peer.calls("NotifyReport", requestId=request_id)]), f"report {request_id}")
    return status, [item for part in parts for item in part["reportData"]]


def _names(items: list[dict[str, Any]]) -> set[str]:
    return {f"{i['component']['name']}.{i['variable']['name']}" for i in items}


async def _monitor(peer: StrictPeer, *items: dict[str, Any]) -> list[dict[str, Any]]:
    data = [{"severity": 5, **item} for item in items]
    return list((await ok(peer, "SetVariableMonitoring", {"setMonitoringData": data}))["setMonitoringResult"])


async def _monitor_report(peer: StrictPeer, request_id: int, **request: Any) -> tuple[str, dict[int, str]]:
    """GetMonitoringReport: its status and, per monitor id reported, its type."""
    status = (await ok(peer, "GetMonitoringReport", {"requestId": request_id, **request}))["status"]
    if status != "Accepted":
        return status, {}
    parts = await peer.wait(lambda: (lambda found: found if found and not found[-1].get("tbc") else None)(
        [c["params"] for c in peer.calls("NotifyMonitoringReport", requestId=request_id)]),
        f"monitoring report {request_id}")
    return status, {m["id"]: m["type"] for part in parts for item in part["monitor"]
                    for m in item["variableMonitoring"]}


def _events(peer: StrictPeer, monitor_id: int) -> list[dict[str, Any]]:
    return [e for c in peer.calls("NotifyEvent") for e in c["params"]["eventData"]
            if e.get("variableMonitoringId") == monitor_id]


def _seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def test_tc_b_16_to_19_custom_reports_by_criteria_and_by_name(
        peer: StrictPeer, tmp_path: Path, checked: Callable[[], None]) -> None:
    async with running(peer, tmp_path):
        await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available")
        # TC_B_16_CS: the components that are available, each with all its variables.
        status, items = await _report(peer, 1, componentCriteria=["Available"])
        assert status == "Accepted"
        components = {i["component"]["name"] for i in items}
        assert {"ChargingStation", "EVSE", "Connector", "AuthCacheCtrlr", "MonitoringCtrlr"} <= components
        assert "OCPPCommCtrlr" not in components  # it has no Available variable
        assert {"EVSE.AvailabilityState", "EVSE.Power", "Connector.ConnectorType"} <= _names(items)
        # TC_B_17_CS: one variable of one EVSE by name.
        status, items = await _report(peer, 2, componentVariable=[
            {"component": EVSE1, "variable": {"name": "AvailabilityState"}}])
        assert status == "Accepted" and len(items) == 1
        assert items[0]["component"] == EVSE1 and items[0]["variableAttribute"][0]["value"] == "Available"
        assert items[0]["variableCharacteristics"]["supportsMonitoring"] is True
        # TC_B_18_CS: criteria and names together: a connector without a problem is not reported.
        assert await _report(peer, 3, componentCriteria=["Problem"],
                             componentVariable=[{"component": CONNECTOR1}]) == ("EmptyResultSet", [])
        status, items = await _report(peer, 4, componentCriteria=["Enabled", "Available"],
                                      componentVariable=[{"component": {"name": "Connector"}}])
        assert status == "Accepted" and _names(items) == {
            "Connector.AvailabilityState", "Connector.Available", "Connector.ConnectorType",
            "Connector.SupplyPhases", "Connector.Problem"}
        # TC_B_54_CS / TC_B_55_CS: a variable with instances, without one (all) and with one.
        status, items = await _report(peer, 6, componentVariable=[
            {"component": {"name": "DeviceDataCtrlr"}, "variable": {"name": "ItemsPerMessage"}}])
        assert status == "Accepted" and sorted(i["variable"]["instance"] for i in items) == [
            "GetReport", "GetVariables", "SetVariables"]
        status, items = await _report(peer, 7, componentVariable=[
            {"component": {"name": "DeviceDataCtrlr"},
             "variable": {"name": "ItemsPerMessage", "instance": "GetReport"}}])
        assert [i["variableAttribute"][0]["value"] for i in items] == ["20"]
        # TC_B_56_CS: an EVSE's variable without the evseId: every EVSE's.
        status, items = await _report(peer, 8, componentVariable=[
            {"component": {"name": "EVSE"}, "variable": {"name": "AvailabilityState"}}])
        assert status == "Accepted" and [i["component"] for i in items] == [EVSE1]
        # TC_B_19_CS: an unknown component.
        assert await _report(peer, 5, componentCriteria=["Available"],
                             componentVariable=[{"component": {"name": "NoSuchCtrlr"}}]) \
            == ("EmptyResultSet", [])
    checked()


async def test_tc_n_monitors_set_replaced_reported_and_cleared(
        peer: StrictPeer, tmp_path: Path, checked: Callable[[], None]) -> None:
    async with running(peer, tmp_path):
        await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available")
        power = {"component": EVSE1, "variable": {"name": "Power"}}
        state = {"component": CONNECTOR1, "variable": {"name": "AvailabilityState"}}
        # TC_N_08_CS / TC_N_09_CS / TC_N_10_CS: one, several, several on one variable.
        [upper] = await _monitor(peer, {**power, "type": "UpperThreshold", "value": 3000})
        assert upper["status"] == "Accepted" and upper["id"] > 0
        results = await _monitor(peer, {**power, "type": "LowerThreshold", "value": 100},
                                 {**power, "type": "Delta", "value": 500},
                                 {**state, "type": "Delta", "value": 1})
        assert [r["status"] for r in results] == ["Accepted"] * 3
        ids = [upper["id"], *(r["id"] for r in results)]
        assert len(set(ids)) == 4
        # TC_N_11_CS / TC_N_37_CS / TC_N_39_CS / TC_N_38_CS: unknown component, unknown variable, a
        # variable of another component, a threshold on a state.
        refused = await _monitor(
            peer, {"component": {"name": "NoSuchCtrlr"}, "variable": {"name": "Power"}, "type": "Delta",
                   "value": 1},
            {"component": EVSE1, "variable": {"name": "NoSuch"}, "type": "Delta", "value": 1},
            {"component": EVSE1, "variable": {"name": "ConnectorType"}, "type": "Delta", "value": 1},
            {**state, "type": "UpperThreshold", "value": 1})
        assert [r["status"] for r in refused] == [
            "UnknownComponent", "UnknownVariable", "UnknownVariable", "UnsupportedMonitorType"]
        # TC_N_12_CS / TC_N_13_CS / TC_N_15_CS / TC_N_43_CS: out of range, duplicate; the valid ones of
        # a request are set whatever the others are.
        mixed = await _monitor(peer, {**power, "type": "Periodic", "value": 10},
                               {**power, "type": "Delta", "value": -5},
                               {**power, "type": "UpperThreshold", "value": 1e9},
                               {**power, "type": "UpperThreshold", "value": 4000},
                               {**power, "type": "PeriodicClockAligned", "value": 900})
        assert [r["status"] for r in mixed] == ["Accepted", "Rejected", "Rejected", "Duplicate", "Accepted"]
        assert [r["statusInfo"]["reasonCode"] for r in mixed[1:3]] == ["ValueOutOfRange"] * 2
        # TC_N_40_CS: an id replaces its monitor.
        [replaced] = await _monitor(peer, {**power, "id": upper["id"], "type": "UpperThreshold",
                                           "value": 3500, "severity": 2})
        assert replaced == {**replaced, "status": "Accepted", "id": upper["id"]}
        # TC_N_47_CS / TC_N_01_CS / TC_N_02_CS / TC_N_03_CS / TC_N_04_CS: all, by criteria, by name, both,
        # an unknown component.
        status, every = await _monitor_report(peer, 1)
        assert status == "Accepted" and len(every) == 6 and every[upper["id"]] == "UpperThreshold"
        _, thresholds = await _monitor_report(peer, 2, monitoringCriteria=["ThresholdMonitoring"])
        assert sorted(thresholds.values()) == ["LowerThreshold", "UpperThreshold"]
        _, named = await _monitor_report(peer, 3, componentVariable=[state])
        assert list(named.values()) == ["Delta"]
        _, both = await _monitor_report(peer, 4, monitoringCriteria=["PeriodicMonitoring"],
                                        componentVariable=[{"component": EVSE1}])
        assert sorted(both.values()) == ["Periodic", "PeriodicClockAligned"]
        assert await _monitor_report(peer, 5, componentVariable=[{"component": {"name": "NoSuchCtrlr"}}]) \
            == ("EmptyResultSet", {})
        # TC_N_18_CS / TC_N_19_CS: cleared, then not found.
        cleared = await ok(peer, "ClearVariableMonitoring", {"id": [upper["id"], 999]})
        assert cleared["clearMonitoringResult"] == [{"id": upper["id"], "status": "Accepted"},
                                                    {"id": 999, "status": "NotFound"}]
        # TC_N_16_CS / TC_N_17_CS: the level, and one out of range.
        assert await ok(peer, "SetMonitoringLevel", {"severity": 4}) == {"status": "Accepted"}
        assert await ok(peer, "SetMonitoringLevel", {"severity": 10}) == {"status": "Rejected"}
        values = await ok(peer, "GetVariables", {"getVariableData": [
            {"component": {"name": "MonitoringCtrlr"}, "variable": {"name": name}}
            for name in ("ActiveMonitoringLevel", "ActiveMonitoringBase")]})
        assert [r["attributeValue"] for r in values["getVariableResult"]] == ["4", "All"]
        # TC_N_05_CS / TC_N_06_CS: the base; FactoryDefault removes the operator's monitors.
        assert await ok(peer, "SetMonitoringBase", {"monitoringBase": "All"}) == {"status": "Accepted"}
        assert len((await _monitor_report(peer, 6))[1]) == 5
        factory = await ok(peer, "SetMonitoringBase", {"monitoringBase": "FactoryDefault"})
        assert factory == {"status": "Accepted"}
        assert await _monitor_report(peer, 7) == ("EmptyResultSet", {})
    checked()


async def test_tc_n_20_24_45_events_without_polling_and_tc_n_53_kept_over_a_restart(
        peer: StrictPeer, tmp_path: Path, checked: Callable[[], None]) -> None:
    async with running(peer, tmp_path) as daemon:
        await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available")
        power = {"component": EVSE1, "variable": {"name": "Power"}}
        [upper, periodic, delta] = await _monitor(
            peer, {**power, "type": "UpperThreshold", "value": 1000},
            {**power, "type": "Periodic", "value": 10},
            {"component": CONNECTOR1, "variable": {"name": "AvailabilityState"}, "type": "Delta", "value": 1})
        world = daemon.hardware.worlds[1]
        world.plug_in()
        # TC_N_45_CS (not a number: any change): the connector is occupied.
        [occupied] = await peer.wait(lambda: _events(peer, delta["id"]), "the delta event")
        assert occupied["trigger"] == "Delta" and occupied["actualValue"] == "Occupied"
        assert occupied["eventNotificationType"] == "CustomMonitor"
        assert occupied["component"] == CONNECTOR1 and occupied["variable"] == {"name": "AvailabilityState"}
        world.card_reader.tap(CARD)
        # TC_N_20_CS: the power goes above 1 kW: an alert, in the transaction.
        [alert] = await peer.wait(lambda: _events(peer, upper["id"]), "the threshold alert")
        assert alert["trigger"] == "Alerting" and alert["cleared"] is False
        assert float(alert["actualValue"]) > 1000
        tx_id = (await peer.wait_call("TransactionEvent", eventType="Started"))[0]["params"][
            "transactionInfo"]["transactionId"]
        assert alert["transactionId"] == tx_id
        # TC_N_24_CS: the power every 10 s (of the station's clock).
        reports = await peer.wait(
            lambda: (lambda e: e if len(e) >= 3 else None)(_events(peer, periodic["id"])),
            "three periodic events", timeout=12)
        times = [_seconds(r["timestamp"]) for r in reports]
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(9.0 <= gap <= 11.5 for gap in gaps), gaps
        assert all(r["trigger"] == "Periodic" for r in reports)
        # TC_N_52_CS: a monitor removed reports no more (12 s of the station's clock after its removal).
        [short] = await _monitor(peer, {**power, "type": "Periodic", "value": 2, "severity": 6})
        await peer.wait(lambda: _events(peer, short["id"]), "the short monitor's event")
        assert (await ok(peer, "ClearVariableMonitoring", {"id": [short["id"]]}))["clearMonitoringResult"][0][
            "status"] == "Accepted"
        removed_at = daemon.clock.time()
        await daemon.clock.sleep(12)
        assert all(_seconds(e["timestamp"]) < removed_at for e in _events(peer, short["id"]))
        # The power drops when the session ends: the alert is cleared.
        assert (await ok(peer, "RequestStopTransaction", {"transactionId": tx_id}))["status"] == "Accepted"
        await peer.wait(lambda: len(_events(peer, upper["id"])) == 2, "the cleared alert")
        cleared = _events(peer, upper["id"])[1]
        assert cleared["cleared"] is True and float(cleared["actualValue"]) <= 1000
    # TC_N_53_CS: the monitors are there after a restart, and still watch.
    before = len(peer.calls("StatusNotification", evseId=1))
    async with running(peer, tmp_path):
        await peer.wait_call("StatusNotification", evseId=1, count=before + 1)
        _, kept = await _monitor_report(peer, 10)
        assert kept == {upper["id"]: "UpperThreshold", periodic["id"]: "Periodic", delta["id"]: "Delta"}
    checked()


async def test_tc_n_22_23_offline_events_queued_by_severity(
        peer: StrictPeer, tmp_path: Path, checked: Callable[[], None], station_log: StationLog) -> None:
    # Reconnects after 5 s of the station's clock: time to change the connector's state while offline.
    async with running(peer, tmp_path, reconnect_s=5.0) as daemon:
        await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available")
        await _set_offline_severity(peer, 3)
        state = {"component": CONNECTOR1, "variable": {"name": "AvailabilityState"}, "type": "Delta",
                 "value": 1}
        [queued, dropped] = await _monitor(peer, {**state, "severity": 3}, {**state, "severity": 4})
        peer.drop()
        await station_log.wait_for("lost")
        daemon.hardware.worlds[1].plug_in()
        # TC_N_22_CS: severity 3 (at most OfflineQueuingSeverity) is sent after the reconnect, with the
        # time it happened; TC_N_23_CS: severity 4 is not.
        [event] = await peer.wait(lambda: _events(peer, queued["id"]), "the queued event", timeout=10)
        assert event["actualValue"] == "Occupied"
        await station_log.wait_for("1 monitor event(s) of the offline time sent")
        assert _events(peer, dropped["id"]) == []
    checked()


async def _set_offline_severity(peer: StrictPeer, severity: int) -> None:
    answer = await ok(peer, "SetVariables", {"setVariableData": [
        {"component": {"name": "MonitoringCtrlr"}, "variable": {"name": "OfflineQueuingSeverity"},
         "attributeValue": str(severity)}]})
    assert answer["setVariableResult"][0]["attributeStatus"] == "Accepted", answer
