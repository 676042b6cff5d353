"""A remote start names its request, and a connector is never announced in a state its transaction's end
takes back: against the strict ``ocpp-rpc`` peer in each version.

A RequestStartTransaction is remote whatever kind of identifier it names (a card too): its Started
TransactionEvent says RemoteStart and carries the request's ``remoteStartId``, by which the CSMS
matches the transaction to its request, also when the Started is delivered after a daemon restart.
A connector scheduled out of service during a transaction goes from occupied to unavailable, never
free in between; after an unplug ends a 1.6 transaction, no Preparing is sent (no EV is there).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.conftest import until
from tests.integration.strict_peer import StrictPeer, strict_peer

CARD = "CAFE2502"
HEARTBEAT_S = 60
EVSE = {"id": 1, "connectorId": 1}


@pytest.fixture
async def peer201(tmp_path: Path) -> AsyncIterator[StrictPeer]:
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp2.0.1") as server:
        yield server


@pytest.fixture
async def peer16(tmp_path: Path) -> AsyncIterator[StrictPeer]:
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp1.6") as server:
        yield server


def station(peer: StrictPeer, tmp_path: Path, version: str) -> Daemon:
    return Daemon(parse({
        "station": {"identity": "CP-STRICT-RS", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "versions": [version],
                 "reconnect_min_s": 0.2, "reconnect_max_s": 0.5},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
        "meter": {"poll_interval_s": 1.0},
    }, "<test_strict_remote_start_status>"))


def strict_clean(peer: StrictPeer) -> None:
    assert peer.strict_failures() == [], "ocpp-rpc (strict) rejected frames the station sent" + peer.report()
    assert peer.of("badMessage") == [], peer.report()


async def ok(peer: StrictPeer, action: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await peer.call(action, params)
    assert answer["event"] == "result", f"{action}: {answer}"
    return answer["result"]


def statuses(peer: StrictPeer, since: int, field: str) -> list[str]:
    """The connector 1 (EVSE 1) statuses the station reported after its first ``since`` ones."""
    return [e["params"][field] for e in peer.calls("StatusNotification")[since:]
            if e["params"].get("evseId", e["params"].get("connectorId")) == 1]


async def test_v201_remote_start_with_a_card_names_its_request_also_after_a_restart(
        peer201: StrictPeer, tmp_path: Path) -> None:
    token = {"idToken": CARD, "type": "ISO14443"}
    daemon = station(peer201, tmp_path, "2.0.1")
    task = asyncio.ensure_future(daemon.run())
    try:
        world = daemon.hardware.worlds[1]
        await peer201.wait_call("StatusNotification", evseId=1, connectorStatus="Available")
        world.plug_in()
        assert await ok(peer201, "RequestStartTransaction", {"idToken": token, "remoteStartId": 41,
                                                             "evseId": 1}) == {"status": "Accepted"}
        started = (await peer201.wait_call("TransactionEvent", eventType="Started"))[0]["params"]
        assert started["triggerReason"] == "RemoteStart" and started["idToken"] == token
        assert started["transactionInfo"]["remoteStartId"] == 41
        tx_id = started["transactionInfo"]["transactionId"]
        assert await ok(peer201, "RequestStopTransaction", {"transactionId": tx_id}) == {"status": "Accepted"}
        await peer201.wait_call("TransactionEvent", eventType="Ended")
        world.unplug()
        await peer201.wait_call("StatusNotification", count=2, evseId=1, connectorStatus="Available")
        # The next remote start waits for its EV; the link goes before the EV comes.
        assert await ok(peer201, "RequestStartTransaction", {"idToken": token, "remoteStartId": 42,
                                                             "evseId": 1}) == {"status": "Accepted"}
        await peer201.quit()
        await until(lambda: not daemon.link.connected.is_set(), what="the link to drop")
        world.plug_in()
        await until(lambda: daemon.station.active_transactions(), what="the offline transaction")
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    strict_clean(peer201)

    # A new run of the daemon (same state) meets the CSMS again: the queued Started names the request.
    (tmp_path / "again").mkdir()
    async with strict_peer(tmp_path / "again", HEARTBEAT_S, "ocpp2.0.1") as peer:
        daemon = station(peer, tmp_path, "2.0.1")
        task = asyncio.ensure_future(daemon.run())
        try:
            started = (await peer.wait_call("TransactionEvent", eventType="Started"))[0]["params"]
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 20)
        assert started["triggerReason"] == "RemoteStart" and started["idToken"] == token
        assert started["transactionInfo"]["remoteStartId"] == 42 and started["offline"] is True
        strict_clean(peer)


async def test_v201_connector_scheduled_inoperative_is_never_announced_available(
        peer201: StrictPeer, tmp_path: Path) -> None:
    daemon = station(peer201, tmp_path, "2.0.1")
    task = asyncio.ensure_future(daemon.run())
    try:
        world = daemon.hardware.worlds[1]
        await peer201.wait_call("StatusNotification", evseId=1, connectorStatus="Available")
        world.plug_in()
        world.card_reader.tap(CARD)
        await peer201.wait_call("TransactionEvent", eventType="Started")
        await until(lambda: world.contactor.closed, what="the contactor to close")
        answer = await ok(peer201, "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": EVSE})
        assert answer["status"] == "Scheduled"
        since = len(peer201.calls("StatusNotification"))
        world.unplug()
        await peer201.wait_call("TransactionEvent", eventType="Ended")
        await peer201.wait_call("StatusNotification", evseId=1, connectorStatus="Unavailable")
        await until(lambda: daemon.station.active_transactions() == [], what="the transaction to end")
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    reported = statuses(peer201, since, "connectorStatus")
    assert "Available" not in reported and reported[-1] == "Unavailable", reported
    strict_clean(peer201)


async def test_v16_unplug_ending_a_transaction_sends_no_preparing(peer16: StrictPeer, tmp_path: Path) -> None:
    daemon = station(peer16, tmp_path, "1.6")
    task = asyncio.ensure_future(daemon.run())
    try:
        world = daemon.hardware.worlds[1]
        await peer16.wait_call("StatusNotification", connectorId=1, status="Available")
        world.plug_in()
        world.card_reader.tap(CARD)
        await peer16.wait_call("StartTransaction")
        await peer16.wait_call("StatusNotification", connectorId=1, status="Charging")
        since = len(peer16.calls("StatusNotification"))
        world.unplug()
        stop = (await peer16.wait_call("StopTransaction"))[0]["params"]
        assert stop["reason"] == "EVDisconnected"
        await peer16.wait_call("StatusNotification", count=2, connectorId=1, status="Available")
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    reported = statuses(peer16, since, "status")
    assert "Preparing" not in reported and reported[-1] == "Available", reported
    strict_clean(peer16)
