"""The station against an independent OCPP 2.0.1 CSMS: ``ocpp-rpc`` in strict mode.

Every frame the station sends in 2.0.1 (its CALLs and its CALLRESULTs to the
CSMS's CALLs) is checked against the official 2.0.1 schemas by an implementation
we did not write. A whole session (card, remote start and stop, meter values,
triggers, availability, local list, reset) must pass with zero strict
validation failures, and the transaction messages must number without gaps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import MEASURANDS, parse
from chargepoint.protocol.common.measurands import split_phase
from tests.integration.strict_peer import StrictPeer, strict_peer

CARD = "CAFE0201"
REMOTE_TAG = "REMOTE201"
#: Simulated seconds (the simulation runs 10x real time): a heartbeat every 0.5 s.
HEARTBEAT_S = 5
EVSE = {"id": 1, "connectorId": 1}


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[StrictPeer]:
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp2.0.1") as server:
        yield server


def station(peer: StrictPeer, tmp_path: Path, **ocpp: Any) -> Daemon:
    return Daemon(parse({
        "station": {"identity": "CP-STRICT-201", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "meter_value_sample_interval_s": 10,
                 "meter_values_sampled_data": list(MEASURANDS),
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0, **ocpp},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
        "meter": {"poll_interval_s": 1.0},
    }, "<test_v201_strict>"))


def events(peer: StrictPeer, tx_id: str) -> list[dict[str, Any]]:
    return [e["params"] for e in peer.calls("TransactionEvent")
            if e["params"]["transactionInfo"]["transactionId"] == tx_id]


async def ok(peer: StrictPeer, action: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await peer.call(action, params)
    assert answer["event"] == "result", f"{action}: {answer}"
    return answer["result"]


async def test_whole_201_session_passes_strict_schema_validation(peer: StrictPeer, tmp_path: Path) -> None:
    daemon = station(peer, tmp_path)
    task = asyncio.ensure_future(daemon.run())
    try:
        await _scenario(peer, daemon)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], (
        "ocpp-rpc (strict mode, OCPP 2.0.1) rejected frames the station sent:" + peer.report())
    assert peer.of("badMessage") == [], "ocpp-rpc saw frames that break OCPP-J framing" + peer.report()


async def _scenario(peer: StrictPeer, daemon: Daemon) -> None:
    world = daemon.hardware.worlds[1]

    # ------------------------------------------------ boot and statuses
    await peer.wait_call("StatusNotification", evseId=1, connectorId=1, connectorStatus="Available")
    client = peer.of("client")[0]
    assert client["protocol"] == "ocpp2.0.1"
    boot = peer.calls("BootNotification")[0]["params"]
    assert boot["reason"] == "PowerUp" and boot["chargingStation"]["vendorName"] == "chargepoint"
    await peer.wait_call("Heartbeat")

    # ------------------------------------------------ CSMS-initiated messages
    assert (await ok(peer, "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": EVSE})) \
        == {"status": "Accepted"}
    await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Unavailable")
    assert (await ok(peer, "ChangeAvailability", {"operationalStatus": "Operative"}))["status"] == "Accepted"
    await peer.wait_call("StatusNotification", count=2, evseId=1, connectorStatus="Available")
    assert (await ok(peer, "DataTransfer", {"vendorId": "org.example", "messageId": "ping"})) \
        == {"status": "UnknownVendorId"}
    assert (await ok(peer, "UnlockConnector", {"evseId": 1, "connectorId": 1}))["status"] in (
        "Unlocked", "UnlockFailed")
    unknown = await ok(peer, "UnlockConnector", {"evseId": 1, "connectorId": 2})
    assert unknown["status"] == "UnknownConnector"
    assert (await ok(peer, "ClearCache", {}))["status"] == "Accepted"
    listed = {"idToken": {"idToken": "LISTED01", "type": "ISO14443"}, "idTokenInfo": {"status": "Accepted"}}
    assert (await ok(peer, "SendLocalList", {"versionNumber": 3, "updateType": "Full",
                                             "localAuthorizationList": [listed]})) == {"status": "Accepted"}
    assert (await ok(peer, "GetLocalListVersion", {})) == {"versionNumber": 3}
    boot_again = await ok(peer, "TriggerMessage", {"requestedMessage": "BootNotification"})
    assert boot_again["status"] == "Rejected"
    assert (await ok(peer, "TriggerMessage", {"requestedMessage": "StatusNotification", "evse": EVSE})) \
        == {"status": "Accepted"}
    await peer.wait_call("StatusNotification", count=3, evseId=1, connectorStatus="Available")
    heartbeats = len(peer.calls("Heartbeat"))
    assert (await ok(peer, "TriggerMessage", {"requestedMessage": "Heartbeat"}))["status"] == "Accepted"
    await peer.wait_call("Heartbeat", count=heartbeats + 1)
    await ok(peer, "TriggerMessage", {"requestedMessage": "MeterValues", "evse": {"id": 1}})
    triggered = (await peer.wait_call("MeterValues"))[0]["params"]
    assert triggered["evseId"] == 1 and triggered["meterValue"][0]["sampledValue"][0]["context"] == "Trigger"
    # an action the station does not support, and one it has no device model for yet: answered, link up
    cost = await peer.call("CostUpdated", {"totalCost": 1.5, "transactionId": "none"})
    assert cost["event"] == "callError" and cost["code"] == "NotSupported", cost

    # ------------------------------------------- card session, remote stop
    world.plug_in()
    await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Occupied")
    world.card_reader.tap(CARD)
    authorize = (await peer.wait_call("Authorize"))[0]["params"]
    assert authorize == {"idToken": {"idToken": CARD, "type": "ISO14443"}}
    started = (await peer.wait_call("TransactionEvent", eventType="Started"))[0]["params"]
    tx_id = started["transactionInfo"]["transactionId"]
    assert started["seqNo"] == 0 and started["triggerReason"] == "Authorized"
    assert started["idToken"] == {"idToken": CARD, "type": "ISO14443"} and started["evse"] == EVSE
    assert "offline" not in started
    def periodic() -> list[dict[str, Any]]:
        return [e for e in events(peer, tx_id) if e["triggerReason"] == "MeterValuePeriodic"]
    await peer.wait(lambda: len(periodic()) >= 2, "two periodic TransactionEvent Updated")
    assert periodic()[0]["eventType"] == "Updated"
    charging_state = [e["transactionInfo"]["chargingState"] for e in events(peer, tx_id)
                      if e["triggerReason"] == "ChargingStateChanged"]
    assert "Charging" in charging_state, charging_state
    measurands = {(v["measurand"], v.get("phase")) for e in periodic() for mv in e["meterValue"]
                  for v in mv["sampledValue"]}
    # Every selected measurand is there; one that names a phase with that phase.
    assert {m for m, _ in measurands} == {split_phase(m)[0] for m in MEASURANDS}
    assert {split_phase(m) for m in MEASURANDS if split_phase(m)[1]} <= measurands
    assert world.contactor.closed
    assert (await ok(peer, "TriggerMessage", {"requestedMessage": "TransactionEvent", "evse": {"id": 1}})) \
        == {"status": "Accepted"}
    await peer.wait(lambda: any(e["triggerReason"] == "Trigger" for e in events(peer, tx_id)),
                    "a triggered TransactionEvent")
    assert (await ok(peer, "UnlockConnector", {"evseId": 1, "connectorId": 1}))["status"] == \
        "OngoingAuthorizedTransaction"
    assert (await ok(peer, "RequestStopTransaction", {"transactionId": tx_id})) == {"status": "Accepted"}
    ended = (await peer.wait_call("TransactionEvent", eventType="Ended"))[0]["params"]
    assert ended["transactionInfo"]["stoppedReason"] == "Remote" and ended["triggerReason"] == "RemoteStop"
    assert [e["seqNo"] for e in events(peer, tx_id)] == list(range(len(events(peer, tx_id))))
    assert ended["meterValue"][-1]["sampledValue"][0]["context"] == "Transaction.End"
    assert (await ok(peer, "RequestStopTransaction", {"transactionId": tx_id})) == {"status": "Rejected"}
    await peer.wait(lambda: not world.contactor.closed, "the contactor to open")
    world.unplug()
    await peer.wait_call("StatusNotification", count=4, evseId=1, connectorStatus="Available")

    # ------------------------------------- remote start, end by unplugging
    answer = await ok(peer, "RequestStartTransaction", {
        "idToken": {"idToken": REMOTE_TAG, "type": "Central"}, "remoteStartId": 7, "evseId": 1})
    assert answer == {"status": "Accepted"}
    world.plug_in()
    second = (await peer.wait_call("TransactionEvent", count=2, eventType="Started"))[1]["params"]
    assert second["transactionInfo"]["remoteStartId"] == 7 and second["triggerReason"] == "RemoteStart"
    assert second["idToken"] == {"idToken": REMOTE_TAG, "type": "Central"} and second["seqNo"] == 0
    world.unplug()
    ends = await peer.wait_call("TransactionEvent", count=2, eventType="Ended")
    assert ends[1]["params"]["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert ends[1]["params"]["triggerReason"] == "EVCommunicationLost"
    assert peer.of("close") == [] and daemon.link.connections == 1, "the station reconnected" + peer.report()

    # ------------------------------------------------ Reset: answered, then a restart
    assert (await ok(peer, "Reset", {"type": "OnIdle"})) == {"status": "Accepted"}
    await peer.wait(lambda: daemon.restart_requested == "soft", "the daemon to stop for a restart")


async def test_boot_after_a_reset_says_remote_reset(peer: StrictPeer, tmp_path: Path) -> None:
    """B_11-style: the BootNotification after the CSMS's Reset names it; the first says PowerUp."""
    for expected in ("PowerUp", "RemoteReset"):
        daemon = station(peer, tmp_path)
        task = asyncio.ensure_future(daemon.run())
        try:
            boot = (await peer.wait_call("BootNotification", count=1, reason=expected))[0]["params"]
            assert boot["reason"] == expected
            await peer.wait_call("StatusNotification", count=1)
            if expected == "PowerUp":
                assert (await ok(peer, "Reset", {"type": "Immediate"})) == {"status": "Accepted"}
                await peer.wait(lambda d=daemon: d.restart_requested == "soft", "the restart")  # type: ignore[misc]
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], peer.report()
