"""Reservations (the H block) and remote triggers in 2.0.1 against the strict ``ocpp-rpc`` CSMS.

A daemon with two simulated connectors, reservations without an EVSE allowed, is
driven by the independent 2.0.1 CSMS: each ReserveNow answer, the Reserved
connector status, CancelReservation, ReservationStatusUpdate on expiry and on
removal, the reserved token (and only it) starting, and each TriggerMessage
reporting the real state. Every frame the station sends is schema-checked; the
run must end with zero strict validation failures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.strict_peer import StrictPeer
from tests.integration.test_v201_strict import ok, peer

__all__ = ["peer"]  # the fixture: the node process serving 2.0.1

CARD = "CAFE0201"
OTHER = "BEEF0201"


@pytest.fixture
async def daemon(peer: StrictPeer, tmp_path: Path) -> AsyncIterator[Daemon]:
    station = Daemon(parse({
        "station": {"identity": "CP-RES-201", "state_dir": str(tmp_path / "state"),
                    "reserve_any_connector": True},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "meter_value_sample_interval_s": 60,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "connectors": [{"id": 1}, {"id": 2}],
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_v201_reservations>"))
    task = asyncio.ensure_future(station.run())
    try:
        await peer.wait_call("StatusNotification", evseId=2, connectorStatus="Available")
        yield station
        assert peer.of("close") == [], "the connection dropped" + peer.report()
    finally:
        station.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], "ocpp-rpc (strict, 2.0.1) rejected frames" + peer.report()
    assert peer.of("badMessage") == [], peer.report()


def _expiry(daemon: Daemon, in_s: float) -> str:
    moment = datetime.fromtimestamp(daemon.clock.time() + in_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _token(value: str) -> dict[str, str]:
    return {"idToken": value, "type": "ISO14443"}


async def _reserve(peer: StrictPeer, daemon: Daemon, rid: int, evse: int | None, tag: str = CARD,
                   in_s: float = 3600, **extra: Any) -> str:
    params = {"id": rid, "expiryDateTime": _expiry(daemon, in_s), "idToken": _token(tag), **extra}
    if evse is not None:
        params["evseId"] = evse
    return str((await ok(peer, "ReserveNow", params))["status"])


def _statuses(peer: StrictPeer, evse: int) -> list[str]:
    return [c["params"]["connectorStatus"] for c in peer.calls("StatusNotification", evseId=evse)]


async def test_h01_h03_h04_reserve_cancel_expire_and_the_reserved_token_starts(
        peer: StrictPeer, daemon: Daemon) -> None:
    world1, world2 = daemon.hardware.worlds[1], daemon.hardware.worlds[2]

    # H01: a reservation of EVSE 1 (with a group): Reserved; the same id replaces it; another is Occupied.
    assert await _reserve(peer, daemon, 1, 1, groupIdToken=_token("FLEET")) == "Accepted"
    await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Reserved")
    assert await _reserve(peer, daemon, 2, 1, OTHER) == "Occupied", "held by reservation 1"
    assert await _reserve(peer, daemon, 1, 1, OTHER) == "Accepted", "the same id replaces it"
    assert await _reserve(peer, daemon, 3, 9) == "Rejected", "no EVSE 9"
    assert await _reserve(peer, daemon, 3, 2, in_s=-60) == "Rejected", "already expired"
    assert await _reserve(peer, daemon, 3, None, connectorType="cCCS2") == "Rejected", "no such plug here"

    # H03: cancel; a second cancel of the same id is Rejected.
    assert await ok(peer, "CancelReservation", {"reservationId": 1}) == {"status": "Accepted"}
    await peer.wait(lambda: _statuses(peer, 1)[-1:] == ["Available"], "EVSE 1 Available again")
    assert await ok(peer, "CancelReservation", {"reservationId": 1}) == {"status": "Rejected"}
    assert peer.calls("ReservationStatusUpdate") == [], "a cancelled reservation is not reported"

    # Unavailable and Occupied EVSEs.
    assert (await ok(peer, "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 2}})) \
        == {"status": "Accepted"}
    assert await _reserve(peer, daemon, 4, 2) == "Unavailable"
    assert (await ok(peer, "ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 2}})) \
        == {"status": "Accepted"}
    world2.plug_in()
    await peer.wait(lambda: _statuses(peer, 2)[-1:] == ["Occupied"], "EVSE 2 Occupied")
    assert await _reserve(peer, daemon, 5, 2) == "Occupied", "an EV is plugged in"
    world2.unplug()
    await peer.wait(lambda: _statuses(peer, 2)[-1:] == ["Available"], "EVSE 2 Available")

    # H04 expiry: Reserved, then Available, and ReservationStatusUpdate Expired.
    assert await _reserve(peer, daemon, 6, 1, in_s=20) == "Accepted"
    update = (await peer.wait_call("ReservationStatusUpdate", reservationId=6, timeout=12))[0]["params"]
    assert update == {"reservationId": 6, "reservationUpdateStatus": "Expired"}
    await peer.wait(lambda: _statuses(peer, 1)[-2:] == ["Reserved", "Available"], "Reserved, then Available")
    assert daemon.station.reservations.all() == []

    # Removed: the EVSE goes out of service while reserved.
    assert await _reserve(peer, daemon, 7, 2) == "Accepted"
    await peer.wait(lambda: _statuses(peer, 2)[-1:] == ["Reserved"], "EVSE 2 Reserved")
    assert (await ok(peer, "ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 2}})) \
        == {"status": "Accepted"}
    update = (await peer.wait_call("ReservationStatusUpdate", reservationId=7))[0]["params"]
    assert update["reservationUpdateStatus"] == "Removed"
    assert (await ok(peer, "ChangeAvailability", {"operationalStatus": "Operative", "evse": {"id": 2}})) \
        == {"status": "Accepted"}

    # No EVSE, of the station's plug type: one of the two is held for the card; cancelled again.
    assert await _reserve(peer, daemon, 8, None, connectorType="sType2") == "Accepted"
    assert await ok(peer, "CancelReservation", {"reservationId": 8}) == {"status": "Accepted"}

    # The reserved token (and only it) starts; its TransactionEvent names the reservation.
    assert await _reserve(peer, daemon, 9, 1) == "Accepted"
    await peer.wait(lambda: _statuses(peer, 1)[-1:] == ["Reserved"], "EVSE 1 Reserved")
    world1.plug_in()
    other = {"idToken": _token(OTHER), "remoteStartId": 1, "evseId": 1}
    assert (await ok(peer, "RequestStartTransaction", other))["status"] == "Rejected"
    # Triggered, the status is the real one: still Reserved with the EV plugged in.
    assert (await ok(peer, "TriggerMessage", {"requestedMessage": "StatusNotification",
                                              "evse": {"id": 1, "connectorId": 1}})) == {"status": "Accepted"}
    count = len(peer.calls("StatusNotification", evseId=1, connectorStatus="Reserved"))
    await peer.wait_call("StatusNotification", count=max(count, 2), evseId=1, connectorStatus="Reserved")
    world1.card_reader.tap(CARD)
    started = (await peer.wait_call("TransactionEvent", eventType="Started"))[0]["params"]
    assert started["idToken"] == _token(CARD) and started["reservationId"] == 9
    assert [e for e in peer.calls("TransactionEvent") if e["params"].get("idToken") == _token(OTHER)] == []
    await peer.wait(lambda: _statuses(peer, 1)[-1:] == ["Occupied"], "EVSE 1 Occupied")
    assert daemon.station.reservations.all() == []
    assert [c["params"]["reservationId"] for c in peer.calls("ReservationStatusUpdate")] == [6, 7], \
        "a used reservation is not reported"


async def test_f06_trigger_message_sends_the_current_state(peer: StrictPeer, daemon: Daemon) -> None:
    world1 = daemon.hardware.worlds[1]
    await peer.wait(lambda: all(daemon.station.view(e).last_reading for e in (1, 2)), "meter readings")

    async def trigger(message: str, expect: str = "Accepted", **params: Any) -> int:
        answer = await peer.call("TriggerMessage", {"requestedMessage": message, **params})
        assert answer["event"] == "result" and answer["result"]["status"] == expect, answer
        # Where the answer reached the peer (its "callResult" event): a triggered CALL may be logged
        # before the peer reports the result to this test.
        index = peer.events.index(answer)
        return max(i for i, e in enumerate(peer.events[:index + 1])
                   if e.get("event") == "callResult" and e.get("action") == "TriggerMessage")

    def after(action: str, index: int, **params: Any) -> list[dict[str, Any]]:
        return [e for e in peer.events[index:] if e.get("event") == "call" and e["action"] == action
                and all(e["params"].get(k) == v for k, v in params.items())]

    await trigger("BootNotification", "Rejected")  # already accepted (F06.FR.17)
    index = await trigger("Heartbeat")
    await peer.wait(lambda: after("Heartbeat", index), "the triggered Heartbeat")
    index = await trigger("StatusNotification")
    await peer.wait(lambda: {c["params"]["evseId"] for c in after("StatusNotification", index)} == {1, 2},
                    "a StatusNotification of each EVSE")
    index = await trigger("MeterValues", evse={"id": 2})
    sent = (await peer.wait(lambda: after("MeterValues", index, evseId=2), "MeterValues"))[0]["params"]
    assert {v["context"] for v in sent["meterValue"][0]["sampledValue"]} == {"Trigger"}
    await trigger("TransactionEvent", "Rejected", evse={"id": 1})  # no transaction
    await trigger("StatusNotification", "Rejected", evse={"id": 9})

    world1.plug_in()
    world1.card_reader.tap(CARD)
    started = (await peer.wait_call("TransactionEvent", eventType="Started"))[0]["params"]
    index = await trigger("TransactionEvent", evse={"id": 1})
    event = (await peer.wait(lambda: after("TransactionEvent", index, triggerReason="Trigger"),
                             "the triggered TransactionEvent"))[0]["params"]
    assert event["eventType"] == "Updated"
    assert event["transactionInfo"]["transactionId"] == started["transactionInfo"]["transactionId"]
    assert {v["context"] for mv in event["meterValue"] for v in mv["sampledValue"]} == {"Trigger"}
    index = await trigger("StatusNotification", evse={"id": 1, "connectorId": 1})
    await peer.wait(lambda: after("StatusNotification", index, evseId=1, connectorStatus="Occupied"),
                    "the triggered status says Occupied")
