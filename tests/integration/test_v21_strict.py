"""The station against an independent OCPP 2.1 CSMS: ``ocpp-rpc`` in strict mode (``ocpp2.1``).

Every frame the station sends in 2.1 (its CALLs and its CALLRESULTs to the
CSMS's CALLs) is checked against the official 2.1 schemas by an implementation
we did not write. A whole session (boot, availability, triggers, the tariff
block, a card session priced by the CSMS's tariff with a tariff change, cost
details in the Ended message, a dynamic charging limit moved by the CSMS and
pulled by the station, what 2.1 adds that the station does not do, a remote
start) must pass with zero strict validation failures, and the transaction
messages must number without gaps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.strict_peer import StrictPeer, strict_peer

CARD = "CAFE0021"
REMOTE_TAG = "REMOTE21"
HEARTBEAT_S = 5
EVSE = {"id": 1, "connectorId": 1}
#: 0.30 per kWh and 0.05 per charging minute without tax, VAT 21 % on both, a 1.00 fee (no tax).
TARIFF = {"tariffId": "op-day", "currency": "EUR",
          "energy": {"prices": [{"priceKwh": 0.30}], "taxRates": [{"type": "VAT", "tax": 21}]},
          "chargingTime": {"prices": [{"priceMinute": 0.05}], "taxRates": [{"type": "VAT", "tax": 21}]},
          "fixedFee": {"prices": [{"priceFixed": 1.00}]}}
DRIVER = {"tariffId": "driver-7", "currency": "EUR", "energy": {"prices": [{"priceKwh": 0.20}]}}


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[StrictPeer]:
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp2.1",
                           env={"STRICT_CSMS_DYNAMIC_LIMIT": "9"}) as server:
        yield server


def station(peer: StrictPeer, tmp_path: Path, **ocpp: Any) -> Daemon:
    return Daemon(parse({
        "station": {"identity": "CP-STRICT-21", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "meter_value_sample_interval_s": 10,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, **ocpp},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
        "meter": {"poll_interval_s": 1.0},
    }, "<test_v21_strict>"))


def events(peer: StrictPeer, tx_id: str) -> list[dict[str, Any]]:
    return [e["params"] for e in peer.calls("TransactionEvent")
            if e["params"]["transactionInfo"]["transactionId"] == tx_id]


def volume(period: dict[str, Any], kind: str) -> Decimal:
    """A charging period's volume of one dimension, as the decimal written on the wire."""
    return Decimal(str(next(d["volume"] for d in period["dimensions"] if d["type"] == kind)))


async def ok(peer: StrictPeer, action: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await peer.call(action, params)
    assert answer["event"] == "result", f"{action}: {answer}"
    return answer["result"]


async def test_whole_21_session_passes_strict_schema_validation(peer: StrictPeer, tmp_path: Path) -> None:
    daemon = station(peer, tmp_path)
    task = asyncio.ensure_future(daemon.run())
    try:
        await _scenario(peer, daemon)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], (
        "ocpp-rpc (strict mode, OCPP 2.1) rejected frames the station sent:" + peer.report())
    assert peer.of("badMessage") == [], "ocpp-rpc saw frames that break OCPP-J framing" + peer.report()


async def _scenario(peer: StrictPeer, daemon: Daemon) -> None:
    world = daemon.hardware.worlds[1]

    # ------------------------------------------------ boot, statuses, 2.0.1's CSMS calls in 2.1
    await peer.wait_call("StatusNotification", evseId=1, connectorId=1, connectorStatus="Available")
    assert peer.of("client")[0]["protocol"] == "ocpp2.1"
    assert peer.calls("BootNotification")[0]["params"]["reason"] == "PowerUp"
    assert daemon.service.status()["connection"]["ocpp_version"] == "2.1"
    assert (await ok(peer, "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": EVSE})) \
        == {"status": "Accepted"}
    await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Unavailable")
    assert (await ok(peer, "ChangeAvailability", {"operationalStatus": "Operative"}))["status"] == "Accepted"
    await peer.wait_call("StatusNotification", count=2, evseId=1, connectorStatus="Available")
    assert (await ok(peer, "TriggerMessage", {"requestedMessage": "Heartbeat"}))["status"] == "Accepted"
    await peer.wait_call("Heartbeat")
    report = await ok(peer, "GetBaseReport", {"requestId": 5, "reportBase": "ConfigurationInventory"})
    assert report["status"] == "Accepted"
    await peer.wait_call("NotifyReport", requestId=5)
    assert (await ok(peer, "GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
    )["getVariableResult"][0]["attributeStatus"] == "Accepted"
    tariff_cost = await ok(peer, "GetVariables", {"getVariableData": [
        {"component": {"name": "TariffCostCtrlr"}, "variable": {"name": "Enabled", "instance": "Tariff"}},
        {"component": {"name": "TariffCostCtrlr"}, "variable": {"name": "Currency"}}]})
    assert [r["attributeValue"] for r in tariff_cost["getVariableResult"]] == ["true", "EUR"]

    # ------------------------------------------------ more of 2.0.1's blocks, in 2.1
    listed = {"idToken": {"idToken": "LISTED21", "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}}
    assert (await ok(peer, "SendLocalList", {"versionNumber": 4, "updateType": "Full",
                                             "localAuthorizationList": [listed]})) == {"status": "Accepted"}
    assert (await ok(peer, "GetLocalListVersion", {})) == {"versionNumber": 4}
    assert (await ok(peer, "ClearCache", {}))["status"] == "Accepted"
    assert (await ok(peer, "DataTransfer", {"vendorId": "org.example"}))["status"] == "UnknownVendorId"
    expiry = datetime.fromtimestamp(daemon.clock.time() + 600, UTC).isoformat().replace("+00:00", "Z")
    reserve = {"id": 3, "expiryDateTime": expiry, "idToken": {"idToken": "RES21", "type": "ISO14443"},
               "evseId": 1}
    assert (await ok(peer, "ReserveNow", reserve)) == {"status": "Accepted"}
    await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Reserved")
    assert (await ok(peer, "CancelReservation", {"reservationId": 3})) == {"status": "Accepted"}
    await peer.wait_call("StatusNotification", count=3, evseId=1, connectorStatus="Available")
    message = {"id": 1, "priority": "NormalCycle", "message": {"format": "UTF8", "content": "Welcome"}}
    assert (await ok(peer, "SetDisplayMessage", {"message": message})) == {"status": "Accepted"}
    assert (await ok(peer, "GetDisplayMessages", {"requestId": 8}))["status"] == "Accepted"
    await peer.wait_call("NotifyDisplayMessages", requestId=8)
    assert (await ok(peer, "ClearDisplayMessage", {"id": 1})) == {"status": "Accepted"}
    composite = await ok(peer, "GetCompositeSchedule", {"evseId": 1, "duration": 300})
    assert composite["status"] == "Accepted"
    installed = await ok(peer, "GetInstalledCertificateIds", {})
    assert installed["status"] in ("Accepted", "NotFound")
    await ok(peer, "TriggerMessage", {"requestedMessage": "MeterValues", "evse": {"id": 1}})
    await peer.wait_call("MeterValues", evseId=1)

    # 2.1's network profile: the version may be left out (the one spoken); a profile's own identity is refused
    connection = {"ocppInterface": "Wired0", "ocppTransport": "JSON", "messageTimeout": 30,
                  "ocppCsmsUrl": f"ws://127.0.0.1:{peer.port}/next", "securityProfile": 0}
    stored = await ok(peer, "SetNetworkProfile", {"configurationSlot": 1, "connectionData": connection})
    assert stored == {"status": "Accepted"}
    named = await ok(peer, "SetNetworkProfile", {"configurationSlot": 1, "connectionData": {
        **connection, "ocppVersion": "OCPP21", "identity": "OTHER"}})
    assert named["status"] == "Rejected" and "identity" in named["statusInfo"]["additionalInfo"]

    # ------------------------------------------------ what 2.1 adds and this station does not do
    der = {"isDefault": True, "controlId": "c1", "controlType": "FreqDroop"}
    for action, params in (("SetDERControl", der),
                           ("RequestBatterySwap", {"idToken": {"idToken": "X", "type": "Central"},
                                                   "requestId": 1}),
                           ("NotifyAllowedEnergyTransfer", {"transactionId": "t",
                                                            "allowedEnergyTransfer": ["AC_single_phase"]}),
                           ("AFRRSignal", {"timestamp": "2026-01-01T00:00:00Z", "signal": 1})):
        answer = await peer.call(action, params)
        assert answer["event"] == "callError" and answer["code"] == "NotSupported", (action, answer)

    # ------------------------------------------------ tariffs
    assert (await ok(peer, "GetTariffs", {"evseId": 0}))["status"] == "NoTariff"
    assert (await ok(peer, "SetDefaultTariff", {"evseId": 0, "tariff": TARIFF})) == {"status": "Accepted"}
    night = {**TARIFF, "tariffId": "op-night",
             "energy": {"prices": [{"priceKwh": 0.2, "conditions": {"startTimeOfDay": "22:00"}}]}}
    refused = await ok(peer, "SetDefaultTariff", {"evseId": 1, "tariff": night})
    assert refused["status"] == "ConditionNotSupported"
    assert (await ok(peer, "SetDefaultTariff", {"evseId": 1, "tariff": {**TARIFF, "currency": "CHF"}})
            )["status"] == "DuplicateTariffId"
    assert (await ok(peer, "SetDefaultTariff", {"evseId": 9, "tariff": TARIFF}))["status"] == "Rejected"
    tariffs = await ok(peer, "GetTariffs", {"evseId": 0})
    assert tariffs == {"status": "Accepted", "tariffAssignments": [
        {"tariffId": "op-day", "tariffKind": "DefaultTariff", "evseIds": [1]}]}

    # ------------------------------------------------ a card session priced by the tariff, changed midway
    world.plug_in()
    await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Occupied")
    world.card_reader.tap(CARD)
    started = (await peer.wait_call("TransactionEvent", eventType="Started"))[0]["params"]
    tx_id = started["transactionInfo"]["transactionId"]
    assert started["seqNo"] == 0 and started["triggerReason"] == "Authorized"
    await peer.wait(lambda: world.contactor.closed, "the contactor to close")
    await peer.wait(lambda: any(e["triggerReason"] == "MeterValuePeriodic" for e in events(peer, tx_id)),
                    "a periodic TransactionEvent")
    periodic = next(e for e in events(peer, tx_id) if e["triggerReason"] == "MeterValuePeriodic")
    so_far = periodic["costDetails"]
    assert so_far["totalCost"]["currency"] == "EUR" and so_far["chargingPeriods"][0]["tariffId"] == "op-day"
    assert so_far["totalCost"]["fixed"] == {"exclTax": 1, "inclTax": 1}
    change = await ok(peer, "ChangeTransactionTariff", {"transactionId": tx_id, "tariff": DRIVER})
    assert change == {"status": "Accepted"}
    other = await ok(peer, "ChangeTransactionTariff", {"transactionId": "nope", "tariff": DRIVER})
    assert other["status"] == "TxNotFound"
    assert (await ok(peer, "CostUpdated", {"totalCost": 1.75, "transactionId": tx_id})) == {}
    assert (await ok(peer, "GetTransactionStatus", {"transactionId": tx_id}))["ongoingIndicator"] is True
    assert (await ok(peer, "GetTransactionStatus", {"transactionId": "gone"})) == {
        "messagesInQueue": False, "ongoingIndicator": False}
    shown = daemon.service.status()["connectors"][0]["session"]["transaction"]
    assert shown["csms_cost"] == "1.75" and shown["cost"]["currency"] == "EUR"

    # ------------------------------------------------ a dynamic limit: set, moved, pulled
    dynamic = {"id": 21, "stackLevel": 1, "chargingProfilePurpose": "TxDefaultProfile",
               "chargingProfileKind": "Dynamic", "dynUpdateInterval": 3600,
               "chargingSchedule": [{"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [
                   {"startPeriod": 0, "limit": 12, "operationMode": "ChargingOnly"}]}]}
    assert (await ok(peer, "SetChargingProfile", {"evseId": 1, "chargingProfile": dynamic})) \
        == {"status": "Accepted"}
    await peer.wait_call("PullDynamicScheduleUpdate", chargingProfileId=21)
    connector = daemon.station.connectors[1]
    await peer.wait(lambda: connector.limits.snapshot().get("smart_charging") == 9.0, "the pulled 9 A")
    moved = await ok(peer, "UpdateDynamicSchedule", {"chargingProfileId": 21, "scheduleUpdate": {"limit": 7}})
    assert moved == {"status": "Accepted"}
    await peer.wait(lambda: connector.limits.snapshot().get("smart_charging") == 7.0, "the updated 7 A")
    limit = daemon.service.status()["connectors"][0]["limit"]
    assert limit["binding"] == "smart_charging" and limit["amps"] == 7.0
    await peer.wait(lambda: abs((world.ev.current_a or 0) - 7.0) < 0.5, "the EV drawing 7 A")
    assert (await ok(peer, "GetChargingProfiles", {"requestId": 4, "chargingProfile": {
        "chargingProfileId": [21]}}))["status"] == "Accepted"
    report = (await peer.wait_call("ReportChargingProfiles", requestId=4))[0]["params"]
    reported = report["chargingProfile"][0]
    assert (reported["chargingProfileKind"], reported["dynUpdateInterval"]) == ("Dynamic", 3600)
    assert reported["chargingSchedule"][0]["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 7.0}]
    bad = await ok(peer, "UpdateDynamicSchedule", {"chargingProfileId": 21,
                                                   "scheduleUpdate": {"setpoint": 3}})
    assert bad["status"] == "Rejected"
    setpoint = {"startPeriod": 0, "setpoint": 5, "operationMode": "CentralSetpoint"}
    v2x = {**dynamic, "id": 22, "stackLevel": 2, "chargingSchedule": [
        {**dynamic["chargingSchedule"][0], "chargingSchedulePeriod": [setpoint]}]}
    refused = await ok(peer, "SetChargingProfile", {"evseId": 1, "chargingProfile": v2x})
    assert refused["status"] == "Rejected"

    # ------------------------------------------------ the end: the cost in the Ended message
    assert (await ok(peer, "RequestStopTransaction", {"transactionId": tx_id})) == {"status": "Accepted"}
    ended = (await peer.wait_call("TransactionEvent", eventType="Ended"))[0]["params"]
    assert [e["seqNo"] for e in events(peer, tx_id)] == list(range(len(events(peer, tx_id))))
    details = ended["costDetails"]
    periods = details["chargingPeriods"]
    assert [p["tariffId"] for p in periods] == ["op-day", "driver-7"]
    energy = {p["tariffId"]: volume(p, "Energy") for p in periods}
    charging_s = volume(periods[0], "ChargingTime")
    total = details["totalCost"]
    assert total["currency"] == "EUR" and total["typeOfCost"] == "NormalCost"
    assert Decimal(str(total["fixed"]["exclTax"])) == Decimal("1")
    assert Decimal(str(total["energy"]["exclTax"])) == (
        energy["op-day"] / 1000 * Decimal("0.30") + energy["driver-7"] / 1000 * Decimal("0.20"))
    # A price per minute makes repeating decimals: exact in the station, the nearest float on the wire.
    assert total["chargingTime"]["inclTax"] == float(charging_s / 60 * Decimal("0.05") * Decimal("1.21"))
    assert details["totalUsage"]["energy"] == float(energy["op-day"] + energy["driver-7"])
    await peer.wait(lambda: not world.contactor.closed, "the contactor to open")
    world.unplug()
    assert (await ok(peer, "ClearTariffs", {"tariffIds": ["op-day"]})) == {
        "clearTariffsResult": [{"tariffId": "op-day", "status": "Accepted"}]}
    assert (await ok(peer, "ClearTariffs", {}))["clearTariffsResult"] == [{"status": "NoTariff"}]
    assert (await ok(peer, "GetTransactionStatus", {})) == {"messagesInQueue": False}

    # ------------------------------------- remote start, end by unplugging
    answer = await ok(peer, "RequestStartTransaction", {
        "idToken": {"idToken": REMOTE_TAG, "type": "Central"}, "remoteStartId": 7, "evseId": 1})
    assert answer == {"status": "Accepted"}
    world.plug_in()
    second = (await peer.wait_call("TransactionEvent", count=2, eventType="Started"))[1]["params"]
    assert second["transactionInfo"]["remoteStartId"] == 7 and second["triggerReason"] == "RemoteStart"
    world.unplug()
    ends = await peer.wait_call("TransactionEvent", count=2, eventType="Ended")
    assert ends[1]["params"]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert "costDetails" not in ends[1]["params"], "no tariff was in force"
    assert peer.of("close") == [] and daemon.link.connections == 1, "the station reconnected" + peer.report()
    resume = await ok(peer, "Reset", {"type": "ImmediateAndResume"})
    assert resume["status"] == "Rejected" and resume["statusInfo"]["reasonCode"] == "UnsupportedRequest"
