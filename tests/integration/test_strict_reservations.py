"""Reservations and remote triggers against the strict ocpp-rpc CSMS (``test_strict_peer``'s peer).

A daemon with two simulated connectors, any-connector reservations allowed, is driven by the
independent 1.6 CSMS: every ReserveNow answer, CancelReservation, the Reserved status and what
follows it, and each TriggerMessage with the state the triggered message reports. Every frame
the station sends is schema-checked; the run must end with zero strict validation failures.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chargepoint.app.daemon import Daemon
from chargepoint.cli import main
from chargepoint.config import parse
from tests.integration.strict_peer import PEER_DIR, SCRIPT, StrictPeer
from tests.integration.test_strict_peer import HEARTBEAT_S

CARD = "CAFE0001"
OTHER = "BEEF0002"


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[StrictPeer]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the strict ocpp-rpc peer cannot run (make test installs it)")
    if not (PEER_DIR / "node_modules" / "ocpp-rpc").is_dir():
        pytest.fail(f"{PEER_DIR / 'node_modules'} is missing: run `make test` to install the strict peer")
    stderr_path = tmp_path / "strict_csms.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            node, str(SCRIPT), "0", str(HEARTBEAT_S), cwd=PEER_DIR,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr)
    server = StrictPeer(process, stderr_path)
    try:
        await server.wait(lambda: server.port, "the peer to listen", timeout=10)
        yield server
    finally:
        await server.quit()


def _config(strict: StrictPeer, tmp_path: Path) -> Any:
    return parse({
        "station": {"identity": "CP-STRICT-RES", "state_dir": str(tmp_path / "state"),
                    "reserve_any_connector": True},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{strict.port}", "meter_value_sample_interval_s": 60,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "connectors": [{"id": 1}, {"id": 2}],
        "simulation": {"speed": 10.0},
        "control": {"socket": str(tmp_path / "control.sock")},
    }, "<test_strict_reservations>")


@pytest.fixture
async def daemon(strict: StrictPeer, tmp_path: Path) -> AsyncIterator[Daemon]:
    station = Daemon(_config(strict, tmp_path))
    task = asyncio.ensure_future(station.run())
    try:
        await strict.wait_call("StatusNotification", connectorId=2, status="Available")
        yield station
        assert strict.of("close") == [], "the connection dropped" + strict.report()
    finally:
        station.stop()
        await asyncio.wait_for(task, 20)
    assert strict.strict_failures() == [], "ocpp-rpc (strict mode) rejected frames" + strict.report()
    assert strict.of("badMessage") == [], strict.report()


def _expiry(daemon: Daemon, in_s: float) -> str:
    """An expiryDate ``in_s`` simulated seconds from the station's now."""
    moment = datetime.fromtimestamp(daemon.clock.time() + in_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _ok(strict: StrictPeer, action: str, params: dict[str, Any]) -> str:
    answer = await strict.call(action, params)
    assert answer["event"] == "result", answer
    return str(answer["result"]["status"])


async def _reserve(strict: StrictPeer, daemon: Daemon, rid: int, connector: int, tag: str = CARD,
                   in_s: float = 3600, **extra: Any) -> str:
    return await _ok(strict, "ReserveNow", {"connectorId": connector, "expiryDate": _expiry(daemon, in_s),
                                            "idTag": tag, "reservationId": rid, **extra})


def _statuses(strict: StrictPeer, connector: int) -> list[str]:
    return [c["params"]["status"] for c in strict.calls("StatusNotification", connectorId=connector)]


async def test_reserve_now_answers_cancel_and_the_reserved_status(strict: StrictPeer, daemon: Daemon) -> None:
    world1, world2 = daemon.hardware.worlds[1], daemon.hardware.worlds[2]

    assert await _reserve(strict, daemon, 1, 1, parentIdTag="FLEET") == "Accepted"
    await strict.wait_call("StatusNotification", connectorId=1, status="Reserved")
    assert await _reserve(strict, daemon, 2, 1, OTHER) == "Occupied", "held by reservation 1"
    assert await _reserve(strict, daemon, 1, 1, OTHER) == "Accepted", "the same id replaces it"
    assert await _reserve(strict, daemon, 3, 9) == "Rejected", "no connector 9"
    assert await _reserve(strict, daemon, 3, 2, in_s=-60) == "Rejected", "already expired"

    assert await _ok(strict, "CancelReservation", {"reservationId": 1}) == "Accepted"
    await strict.wait(lambda: _statuses(strict, 1)[-1:] == ["Available"], "connector 1 Available again")
    assert await _ok(strict, "CancelReservation", {"reservationId": 1}) == "Rejected"

    assert await _ok(strict, "ChangeAvailability", {"connectorId": 2, "type": "Inoperative"}) == "Accepted"
    assert await _reserve(strict, daemon, 4, 2) == "Unavailable"
    assert await _ok(strict, "ChangeAvailability", {"connectorId": 2, "type": "Operative"}) == "Accepted"

    world2.plug_in()
    await strict.wait_call("StatusNotification", connectorId=2, status="Preparing")
    assert await _reserve(strict, daemon, 5, 2) == "Occupied", "an EV is plugged in"
    world2.unplug()
    await strict.wait(lambda: _statuses(strict, 2)[-1:] == ["Available"], "connector 2 Available")

    # Expiry: Reserved, then Available with nothing else in between.
    before = len(_statuses(strict, 1))  # the statuses since this reservation, not an earlier pair
    assert await _reserve(strict, daemon, 6, 1, in_s=20) == "Accepted"
    await strict.wait(lambda: _statuses(strict, 1)[before:] == ["Reserved", "Available"],
                      "the reservation to expire (20 simulated s)")
    assert daemon.station.reservations.all() == []

    # The reserved card: another identifier is refused, the reserved card gets Preparing and its
    # start names the reservation.
    assert await _reserve(strict, daemon, 7, 1) == "Accepted"
    await strict.wait(lambda: _statuses(strict, 1)[-1:] == ["Reserved"], "Reserved")
    world1.plug_in()
    assert await _ok(strict, "RemoteStartTransaction", {"connectorId": 1, "idTag": OTHER}) == "Rejected"
    world1.card_reader.tap(CARD)
    start = (await strict.wait_call("StartTransaction"))[0]["params"]
    assert (start["idTag"], start["connectorId"], start["reservationId"]) == (CARD, 1, 7)
    assert [c for c in strict.calls("StartTransaction") if c["params"]["idTag"] == OTHER] == []
    await strict.wait_call("StatusNotification", connectorId=1, status="Charging")
    shown = _statuses(strict, 1)
    last_reserved = len(shown) - 1 - shown[::-1].index("Reserved")
    assert shown[last_reserved:][:2] == ["Reserved", "Preparing"], \
        f"Reserved with the EV plugged in, then Preparing: {shown}"

    # Connector 0 (any connector) while connector 1 charges: connector 2 is the one held.
    assert await _reserve(strict, daemon, 8, 0) == "Accepted"
    await strict.wait_call("StatusNotification", connectorId=2, status="Reserved")
    assert await _reserve(strict, daemon, 9, 2, OTHER) == "Occupied"

    assert await _ok(strict, "CancelReservation", {"reservationId": 8}) == "Accepted"
    await strict.wait(lambda: _statuses(strict, 2)[-1:] == ["Available"], "connector 2 Available")

    # A fault ends the connector's reservation; the faulted connector answers Faulted.
    assert await _reserve(strict, daemon, 10, 2) == "Accepted"
    await strict.wait(lambda: _statuses(strict, 2)[-1:] == ["Reserved"], "connector 2 Reserved")
    world2.faults.trip("rcd")
    await strict.wait_call("StatusNotification", connectorId=2, status="Faulted")
    assert daemon.station.reservations.all() == []
    assert await _reserve(strict, daemon, 11, 2) == "Faulted"


async def test_trigger_message_sends_the_current_state_after_its_answer(
        strict: StrictPeer, daemon: Daemon) -> None:
    world1 = daemon.hardware.worlds[1]
    await strict.wait(lambda: all(daemon.station.view(e).last_reading for e in (1, 2)), "meter readings")

    async def trigger(message: str, expect: str = "Accepted", **params: Any) -> int:
        answer = await strict.call("TriggerMessage", {"requestedMessage": message, **params})
        assert answer["event"] == "result" and answer["result"] == {"status": expect}, answer
        # Where the answer reached the peer: its "callResult" event. The peer reports the result to
        # this test a moment later, and a triggered CALL that followed the answer at once may be
        # logged in between.
        index = strict.events.index(answer)
        return max(i for i, e in enumerate(strict.events[:index + 1])
                   if e.get("event") == "callResult" and e.get("action") == "TriggerMessage")

    def after(action: str, index: int, **params: Any) -> list[dict[str, Any]]:
        """The station's CALLs of ``action`` that reached the CSMS after event ``index``."""
        return [e for e in strict.events[index:] if e.get("event") == "call" and e["action"] == action
                and all(e["params"].get(k) == v for k, v in params.items())]

    for message in ("BootNotification", "Heartbeat", "DiagnosticsStatusNotification",
                    "FirmwareStatusNotification"):
        index = await trigger(message)
        sent = await strict.wait(lambda m=message, i=index: after(m, i), f"the triggered {message}")
        if message.endswith("StatusNotification"):
            assert sent[0]["params"] == {"status": "Idle"}
    assert (await strict.wait_call("BootNotification", count=2))[1]["params"]["chargePointModel"] == "Pi AC"

    # StatusNotification: one connector, and without connectorId the station and every connector.
    index = await trigger("StatusNotification", connectorId=1)
    await strict.wait(lambda: after("StatusNotification", index, connectorId=1, status="Available"),
                      "the triggered StatusNotification")
    index = await trigger("StatusNotification")
    await strict.wait(lambda: {c["params"]["connectorId"] for c in after("StatusNotification", index)}
                      == {0, 1, 2}, "a StatusNotification of the station and each connector")

    # MeterValues: the newest reading, context Trigger; in a transaction with its id.
    index = await trigger("MeterValues", connectorId=2)
    sent = (await strict.wait(lambda: after("MeterValues", index, connectorId=2), "MeterValues"))[0]
    assert "transactionId" not in sent["params"]
    assert {v["context"] for v in sent["params"]["meterValue"][0]["sampledValue"]} == {"Trigger"}

    world1.plug_in()
    world1.card_reader.tap(CARD)
    await strict.wait_call("StatusNotification", connectorId=1, status="Charging")
    index = await trigger("StatusNotification", connectorId=1)
    await strict.wait(lambda: after("StatusNotification", index, connectorId=1, status="Charging"),
                      "the triggered status says Charging")
    index = await trigger("MeterValues")
    sent = await strict.wait(lambda: {c["params"]["connectorId"] for c in after("MeterValues", index)
                                      if c["params"]["meterValue"][0]["sampledValue"][0]["context"]
                                      == "Trigger"} == {1, 2} and after("MeterValues", index),
                             "MeterValues of each connector")
    in_tx = [c["params"] for c in sent if c["params"]["connectorId"] == 1][0]
    assert in_tx["transactionId"] == 1

    # A connector the station does not have, and MeterValues of connector 0 (no main meter).
    before = len(strict.of("call"))
    await trigger("StatusNotification", "Rejected", connectorId=9)
    await trigger("Heartbeat", "Rejected", connectorId=9)
    await trigger("MeterValues", "Rejected", connectorId=0)
    # Triggered messages leave in the order of their triggers: once this one is there, any
    # message of the rejected ones would be too.
    index = await trigger("DiagnosticsStatusNotification")
    await strict.wait(lambda: after("DiagnosticsStatusNotification", index), "the probe")
    sent = [e["action"] for e in strict.of("call")[before:] if e["action"] != "Heartbeat"]  # periodic ones
    assert sent == ["DiagnosticsStatusNotification"], "nothing was sent for the rejected triggers"


async def test_status_shows_the_reservations(strict: StrictPeer, daemon: Daemon) -> None:
    """``chargepoint status`` (the real CLI over the control socket): a connector's reservation on its
    connector, an any-connector one under the station; ``sessions`` is not affected."""
    socket = daemon.config.control.socket

    def cli(*args: str) -> str:
        result = CliRunner().invoke(main, [*args, "--socket", socket])
        assert result.exit_code == 0, result.output
        return result.output

    assert await _reserve(strict, daemon, 21, 2, parentIdTag="FLEET") == "Accepted"
    assert await _reserve(strict, daemon, 22, 0, OTHER) == "Accepted"
    expiry = daemon.station.reservations.all()[0].expiry
    text = await asyncio.to_thread(cli, "status")
    until = datetime.fromtimestamp(expiry).strftime("%Y-%m-%d %H:%M:%S")
    station, connector2 = text.split("Connector 1:")[0], text.split("Connector 2:")[1]
    assert f"reserved   #22 for {OTHER} on any connector until " in station, text
    assert f"reserved   #21 for {CARD} (group FLEET) until {until}" in connector2, text
    assert "Connector 2: Reserved" in text and "Connector 1: Reserved" in text, \
        "the one free connector is held for the any-connector reservation"
    assert "No sessions yet." in await asyncio.to_thread(cli, "sessions")


async def test_a_reservation_survives_a_restart_of_the_daemon(strict: StrictPeer, tmp_path: Path) -> None:
    first = Daemon(_config(strict, tmp_path))
    task = asyncio.ensure_future(first.run())
    try:
        await strict.wait_call("StatusNotification", connectorId=2, status="Available")
        assert await _reserve(strict, first, 31, 2, parentIdTag="FLEET") == "Accepted"
        await strict.wait_call("StatusNotification", connectorId=2, status="Reserved")
    finally:
        first.stop()
        await asyncio.wait_for(task, 20)

    second = Daemon(_config(strict, tmp_path))
    task = asyncio.ensure_future(second.run())
    try:
        await strict.wait_call("BootNotification", count=2)
        await strict.wait_call("StatusNotification", count=2, connectorId=2, status="Reserved")
        kept = second.station.reservations.all()
        assert [(r.id, r.evse_id, r.token.value, r.group_id) for r in kept] == [(31, 2, CARD, "FLEET")]
        assert await _ok(strict, "CancelReservation", {"reservationId": 31}) == "Accepted"
        await strict.wait(lambda: _statuses(strict, 2)[-1:] == ["Available"], "connector 2 Available")
    finally:
        second.stop()
        await asyncio.wait_for(task, 20)
    assert strict.strict_failures() == [], strict.report()
