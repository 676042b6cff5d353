"""The station against an independent OCPP 1.6J CSMS: ``ocpp-rpc`` in strict mode.

``tests/peer/strict_csms.js`` schema-checks every frame the station sends (its
CALLs and the CALLRESULTs it returns to the CSMS's CALLs) with an OCPP
implementation we did not write. A whole charging session, a remote start and
stop and a CALL the station does not implement must pass with zero strict
validation failures. ``make test`` installs the peer's node_modules (``npm ci``).
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

CARD = "CAFE0001"
REMOTE_TAG = "REMOTE01"
#: Simulated seconds (the simulation runs 10x real time): a heartbeat every 0.5 s.
HEARTBEAT_S = 5
#: CSMS-initiated 1.6 actions with valid payloads; each must get a schema-valid
#: CALLRESULT if the station implements it, else a CALLERROR NotImplemented/NotSupported.
PROBES: list[tuple[str, dict[str, Any]]] = [
    ("GetConfiguration", {}),
    ("GetConfiguration", {"key": ["HeartbeatInterval", "NoSuchKey", "AuthorizationKey"]}),
    ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "10"}),
    ("ChangeConfiguration", {"key": "NumberOfConnectors", "value": "3"}),
    ("ChangeAvailability", {"connectorId": 0, "type": "Operative"}),
    ("DataTransfer", {"vendorId": "org.example", "messageId": "ping"}),
    ("UnlockConnector", {"connectorId": 1}),
    ("ClearCache", {}),
    ("GetLocalListVersion", {}),
    ("TriggerMessage", {"requestedMessage": "Heartbeat"}),
    ("SendLocalList", {"listVersion": 3, "updateType": "Full", "localAuthorizationList": [
        {"idTag": "LISTED01", "idTagInfo": {"status": "Accepted"}}]}),
    ("SendLocalList", {"listVersion": 3, "updateType": "Differential", "localAuthorizationList": []}),
    # clock-aligned readings every 10 simulated seconds from now on (schema-checked below)
    ("ChangeConfiguration", {"key": "ClockAlignedDataInterval", "value": "10"}),
]


@pytest.fixture
async def peer(tmp_path: Path) -> AsyncIterator[StrictPeer]:
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp1.6") as server:
        yield server


async def test_whole_session_passes_strict_schema_validation(peer: StrictPeer, tmp_path: Path) -> None:
    config = parse({
        "station": {"identity": "CP-STRICT-1", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "meter_value_sample_interval_s": 10,
                 "meter_values_sampled_data": list(MEASURANDS),
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "simulation": {"speed": 10.0},
        "meter": {"poll_interval_s": 1.0},
    }, "<test_strict_peer>")
    daemon = Daemon(config)
    task = asyncio.ensure_future(daemon.run())
    try:
        await _scenario(peer, daemon)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)

    failures = peer.strict_failures()
    assert failures == [], (
        "ocpp-rpc (strict mode) rejected frames the station sent; each entry names the action, "
        "whether it was our CALL (isCall) or our CALLRESULT, and the schema error:" + peer.report())
    assert peer.of("badMessage") == [], "ocpp-rpc saw frames that break OCPP-J framing" + peer.report()


async def _scenario(peer: StrictPeer, daemon: Daemon) -> None:
    world = daemon.hardware.worlds[1]

    # ------------------------------------------------ boot and statuses
    await peer.wait_call("StatusNotification", connectorId=1, status="Available")
    client = peer.of("client")[0]
    assert client["identity"] == "CP-STRICT-1" and client["protocol"] == "ocpp1.6"
    assert peer.actions()[0] == "BootNotification"
    assert peer.calls("StatusNotification", connectorId=0), "no StatusNotification for connector 0"
    await peer.wait_call("Heartbeat")

    # ------------------- CALLs the station may not implement: answered, link stays up
    # the ocpp library's routes of the station's adapter: which actions have a handler
    handled = getattr(getattr(daemon.adapter, "peer", None), "route_map", {})
    for action, params in PROBES:
        answer = await peer.call(action, params)
        if "_on_action" in handled.get(action, {}):
            assert answer["event"] == "result", f"{action} is implemented but answered {answer}"
        else:
            assert answer["event"] == "callError", f"{action} has no handler but answered {answer}"
            assert answer["code"] in ("NotImplemented", "NotSupported"), answer
    assert peer.of("close") == [], "the connection dropped after an unimplemented CALL" + peer.report()
    # a DataTransfer of the station's own, and clock-aligned MeterValues outside a transaction
    status, _ = await daemon.adapter.data_transfer("org.example", "hello", "42")
    assert status == "UnknownVendorId"
    aligned = (await peer.wait_call("MeterValues"))[0]["params"]
    assert "transactionId" not in aligned
    assert aligned["meterValue"][0]["sampledValue"][0]["context"] == "Sample.Clock"
    answer = await peer.call("ChangeConfiguration", {"key": "ClockAlignedDataInterval", "value": "0"})
    assert answer["event"] == "result" and answer["result"] == {"status": "Accepted"}, answer

    # ------------------------------------------- card session, remote stop
    world.plug_in()
    await peer.wait_call("StatusNotification", connectorId=1, status="Preparing")
    world.card_reader.tap(CARD)
    authorize = (await peer.wait_call("Authorize"))[0]
    assert authorize["params"] == {"idTag": CARD}
    start = (await peer.wait_call("StartTransaction"))[0]
    assert start["params"]["idTag"] == CARD and start["params"]["connectorId"] == 1
    await peer.wait_call("StatusNotification", connectorId=1, status="Charging")
    samples = await peer.wait_call("MeterValues", count=2, transactionId=1)
    assert {s["params"]["transactionId"] for s in samples} == {1}
    measurands = {v.get("measurand", "Energy.Active.Import.Register")
                  for s in samples for mv in s["params"]["meterValue"] for v in mv["sampledValue"]}
    # A selected phase ("Power.Factor.L2") goes out as its measurand with that phase.
    assert measurands == {split_phase(m)[0] for m in MEASURANDS}, f"measurands sent: {sorted(measurands)}"
    phased = {(v.get("measurand"), v.get("phase")) for s in samples for mv in s["params"]["meterValue"]
              for v in mv["sampledValue"]}
    for selected in MEASURANDS:
        measurand, phase = split_phase(selected)
        if phase is not None:
            assert (measurand, phase) in phased, selected
    assert world.contactor.closed

    answer = await peer.call("RemoteStopTransaction", {"transactionId": 1})
    assert answer["event"] == "result" and answer["result"] == {"status": "Accepted"}, answer
    stop = (await peer.wait_call("StopTransaction"))[0]["params"]
    assert stop["transactionId"] == 1
    assert stop["reason"] == "Remote"
    assert stop["transactionData"], "StopTransaction without transactionData"
    assert stop["meterStop"] >= start["params"]["meterStart"]
    await peer.wait(lambda: not world.contactor.closed, "the contactor to open")
    world.unplug()
    await peer.wait_call("StatusNotification", count=2, connectorId=1, status="Available")

    # ------------------------------------- remote start, end by unplugging
    answer = await peer.call("RemoteStartTransaction", {"connectorId": 1, "idTag": REMOTE_TAG})
    assert answer["event"] == "result" and answer["result"] == {"status": "Accepted"}, answer
    world.plug_in()
    second = (await peer.wait_call("StartTransaction", count=2))[1]["params"]
    assert second["idTag"] == REMOTE_TAG and second["connectorId"] == 1
    await peer.wait_call("StatusNotification", count=2, connectorId=1, status="Charging")
    world.unplug()
    stops = await peer.wait_call("StopTransaction", count=2)
    assert stops[1]["params"]["transactionId"] == 2
    assert stops[1]["params"]["reason"] == "EVDisconnected"
    await peer.wait_call("StatusNotification", count=3, connectorId=1, status="Available")

    # -------------------------------------------------- the whole run
    seen = set(peer.actions())
    for action in ("BootNotification", "Heartbeat", "StatusNotification", "Authorize",
                   "StartTransaction", "MeterValues", "StopTransaction"):
        assert action in seen, f"the station never sent {action}"
    results = {e["action"] for e in peer.of("callResult")}
    assert {"RemoteStopTransaction", "RemoteStartTransaction"} <= results
    tx_ids = [e["params"]["transactionId"] for e in peer.of("call")
              if e["action"] in ("MeterValues", "StopTransaction") and "transactionId" in e["params"]]
    assert set(tx_ids) <= {1, 2} and tx_ids, f"transaction ids used: {tx_ids}"
    assert peer.of("close") == [] and daemon.link.connections == 1, \
        "the station reconnected during the run" + peer.report()

    # ------------------------------------------------ Reset: answered, then a restart
    answer = await peer.call("Reset", {"type": "Soft"})
    assert answer["event"] == "result" and answer["result"] == {"status": "Accepted"}, answer
    await peer.wait(lambda: daemon.restart_requested == "soft", "the daemon to stop for a restart")
