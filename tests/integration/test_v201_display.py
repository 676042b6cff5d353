"""Display messages (the O block) in 2.0.1 against the strict ``ocpp-rpc`` CSMS, by OCTT case.

One daemon with one simulated connector is driven by the independent 2.0.1
CSMS through the cases of the DisplayMessage block that a station is tested on:
set (accepted, refused format, priority and state, unknown transaction), get all
and specific messages (with the report in pages), clear, a message for a
transaction that goes when it ends, and one removed when its end time passes.
What the display shows is read from the simulation's display. Every frame the
station sends is schema-checked; the run must end with zero strict validation
failures.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.cli.control_status import _status_view
from chargepoint.config import parse
from chargepoint.core.display_messages import Priority, State
from tests.integration.strict_peer import StrictPeer
from tests.integration.test_v201_strict import ok, peer

__all__ = ["peer"]  # the fixture: the node process serving 2.0.1

CARD = "CAFE0201"


@pytest.fixture
async def daemon(peer: StrictPeer, tmp_path: Path) -> AsyncIterator[Daemon]:
    station = Daemon(parse({
        "station": {"identity": "CP-DISPLAY-201", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "meter_value_sample_interval_s": 60,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_v201_display>"))
    task = asyncio.ensure_future(station.run())
    try:
        await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available")
        yield station
        assert peer.of("close") == [], "the connection dropped" + peer.report()
    finally:
        station.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], "ocpp-rpc (strict, 2.0.1) rejected frames" + peer.report()
    assert peer.of("badMessage") == [], peer.report()


def _at(daemon: Daemon, in_s: float) -> str:
    moment = datetime.fromtimestamp(daemon.clock.time() + in_s, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _set(peer: StrictPeer, mid: int, priority: str = "NormalCycle", content: str | None = None,
               fmt: str = "UTF8", **extra: Any) -> str:
    message = {"id": mid, "priority": priority,
               "message": {"format": fmt, "language": "en", "content": content or f"message {mid}"}, **extra}
    return str((await ok(peer, "SetDisplayMessage", {"message": message}))["status"])


def _shown(daemon: Daemon) -> list[str]:
    return [t.text for t in daemon.display_messages.display.shown]  # type: ignore[union-attr]


async def _get(peer: StrictPeer, request_id: int, **criteria: Any) -> tuple[str, list[dict[str, Any]]]:
    """GetDisplayMessages: its status, and the NotifyDisplayMessages pages of the request."""
    status = (await ok(peer, "GetDisplayMessages", {"requestId": request_id, **criteria}))["status"]
    if status != "Accepted":
        return status, []
    pages = await peer.wait(lambda: [p for p in _reports(peer, request_id) if not p.get("tbc")]
                            and _reports(peer, request_id), f"the report of request {request_id}")
    return status, pages


def _reports(peer: StrictPeer, request_id: int) -> list[dict[str, Any]]:
    return [c["params"] for c in peer.calls("NotifyDisplayMessages", requestId=request_id)]


def _ids(pages: list[dict[str, Any]]) -> list[int]:
    return sorted(m["id"] for page in pages for m in page.get("messageInfo", []))


async def test_tc_o_display_messages_set_get_clear_and_their_refusals(
        peer: StrictPeer, daemon: Daemon) -> None:
    # TC_O_03_CS: none configured: Unknown, and no report follows.
    assert await _get(peer, 1) == ("Unknown", [])

    # TC_O_01_CS: a message is accepted and shown.
    assert await _set(peer, 1, content="Welcome") == "Accepted"
    await peer.wait(lambda: _shown(daemon) == ["Welcome"], "the display shows it")

    # TC_O_19_CS / TC_O_17_CS / TC_O_18_CS: what this station's display cannot show is refused.
    assert await _set(peer, 2, fmt="HTML", content="<b>x</b>") == "NotSupportedMessageFormat"
    engine = daemon.display_messages
    engine.capabilities = dataclasses.replace(  # a display without "always in front" nor a faulted state
        engine.capabilities, priorities=frozenset({Priority.IN_FRONT, Priority.NORMAL_CYCLE}),
        states=frozenset({State.IDLE, State.CHARGING, State.UNAVAILABLE}))
    assert await _set(peer, 2, "AlwaysFront") == "NotSupportedPriority"
    assert await _set(peer, 2, state="Faulted") == "NotSupportedState"
    variables = (await ok(peer, "GetVariables", {"getVariableData": [
        {"component": {"name": "DisplayMessageCtrlr"}, "variable": {"name": name}}
        for name in ("SupportedPriorities", "SupportedFormats", "DisplayMessages", "Enabled")]}))
    values = {r["variable"]["name"]: r.get("attributeValue") for r in variables["getVariableResult"]}
    assert values == {"SupportedPriorities": "InFront,NormalCycle", "SupportedFormats": "ASCII,UTF8",
                      "DisplayMessages": "1", "Enabled": "true"}

    # TC_O_10_CS: a transaction the station does not know.
    assert await _set(peer, 2, transactionId="no-such-transaction") == "UnknownTransaction"

    # TC_O_12_CS: the same id replaces; TC_O_22_CS: in-front messages go before the cycle, cycled.
    assert await _set(peer, 1, content="Welcome again") == "Accepted"
    for mid in (2, 3):
        assert await _set(peer, mid, "InFront", state="Idle") == "Accepted"
    for mid in range(4, 8):
        assert await _set(peer, mid, state="Charging") == "Accepted"
    await peer.wait(lambda: _shown(daemon) == ["message 2", "message 3"], "the in-front ones, cycled")

    # TC_O_02_CS: all seven, reported in pages (tbc on all but the last) with the request's id.
    status, pages = await _get(peer, 2)
    assert status == "Accepted" and _ids(pages) == list(range(1, 8))
    assert [p.get("tbc", False) for p in pages] == [True, False]
    first = next(m for p in pages for m in p["messageInfo"] if m["id"] == 1)
    assert first == {"id": 1, "priority": "NormalCycle",
                     "message": {"format": "UTF8", "language": "en", "content": "Welcome again"}}
    # TC_O_07_CS / TC_O_08_CS / TC_O_09_CS: by id, priority, state; criteria combine.
    assert _ids((await _get(peer, 3, id=[3, 5]))[1]) == [3, 5]
    assert _ids((await _get(peer, 4, priority="InFront"))[1]) == [2, 3]
    assert _ids((await _get(peer, 5, state="Charging"))[1]) == [4, 5, 6, 7]
    # TC_O_11_CS / TC_O_34_CS / TC_O_35_CS: nothing matches: Unknown.
    assert await _get(peer, 6, id=[99]) == ("Unknown", [])
    assert await _get(peer, 7, id=[4], state="Idle") == ("Unknown", [])
    assert await _get(peer, 8, id=[2], priority="NormalCycle") == ("Unknown", [])

    # TC_O_04_CS / TC_O_05_CS: clear, then the id is unknown.
    assert await ok(peer, "ClearDisplayMessage", {"id": 2}) == {"status": "Accepted"}
    assert await ok(peer, "ClearDisplayMessage", {"id": 2}) == {"status": "Unknown"}
    await peer.wait(lambda: _shown(daemon) == ["message 3"], "the cleared one is no longer shown")

    # The local surfaces (the dashboard's state, `chargepoint status`): each message, its priority,
    # state, validity and whether it is shown.
    status = daemon.service.status()["display"]
    assert status["state"] == "idle" and status["showing"] == [3]
    three = next(m for m in status["messages"] if m["id"] == 3)
    assert three == {"id": 3, "priority": "in_front", "text": "message 3", "format": "utf8", "language": "en",
                     "state": "idle", "start": None, "end": None, "transaction": None, "shown": True}
    view = _status_view(daemon.service.status())
    assert "  display    1 of 6 message(s) shown (station idle)" in view
    assert '  shown      #3 "message 3" (in front, idle only)' in view
    assert '  message    #4 "message 4" (normal cycle, charging only)' in view
    assert [r["params"]["requestId"] for r in peer.calls("NotifyDisplayMessages")] == [2, 2, 3, 4, 5]


async def test_tc_o_06_and_tc_o_14_a_transaction_message_and_an_end_time_remove_messages(
        peer: StrictPeer, daemon: Daemon) -> None:
    world = daemon.hardware.worlds[1]
    world.plug_in()
    world.card_reader.tap(CARD)
    started = (await peer.wait_call("TransactionEvent", eventType="Started"))[0]["params"]
    tx_id = started["transactionInfo"]["transactionId"]

    # TC_O_06_CS: a message for the running transaction, shown while it runs.
    assert await _set(peer, 11, content="Enjoy your charge", transactionId=tx_id) == "Accepted"
    await peer.wait(lambda: _shown(daemon) == ["Enjoy your charge"], "shown during the transaction")
    status, pages = await _get(peer, 21, id=[11])
    assert status == "Accepted" and pages[0]["messageInfo"][0]["transactionId"] == tx_id

    # TC_O_14_CS: a message whose end time passes is removed (5 simulated seconds).
    assert await _set(peer, 12, "InFront", content="Short", endDateTime=_at(daemon, 5)) == "Accepted"
    await peer.wait(lambda: _shown(daemon) == ["Short"], "the in-front message")
    short = next(m for m in daemon.service.status()["display"]["messages"] if m["id"] == 12)
    assert short["shown"] and short["end"] is not None and "until " in _status_view(daemon.service.status())
    await peer.wait(lambda: [m.id for m in daemon.display_messages.all()] == [11], "removed at its end")
    assert await _get(peer, 22, id=[12]) == ("Unknown", [])

    # The transaction ends: its message goes with it.
    assert (await ok(peer, "RequestStopTransaction", {"transactionId": tx_id}))["status"] == "Accepted"
    await peer.wait_call("TransactionEvent", eventType="Ended")
    await peer.wait(lambda: daemon.display_messages.all() == [], "the transaction's message removed")
    assert await _get(peer, 23) == ("Unknown", [])
    await peer.wait(lambda: _shown(daemon) == [], "the idle screen")
