"""CALLs from the CSMS go through a bounded queue; a burst cannot starve the event loop.

A CSMS may send CALLs faster than the station handles them (a broken or hostile
one sent 15,000 GetConfiguration at once). The common peer keeps a few in a
queue, handled one per loop turn in order, and answers the rest at once with a
GenericError saying it is busy; the reader lets the loop turn every few frames.
The loop test counts loop turns against frames answered on a real websockets
connection: no clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from ocpp import v201
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibChargePoint
from ocpp.v16 import call_result
from websockets.asyncio.client import connect
from websockets.asyncio.server import serve

from chargepoint.protocol.common.intake import FRAMES_PER_TURN, CallIntake
from chargepoint.protocol.common.peer import RobustPeer
from tests.unit.test_robust_peer import Wire

#: What a GetConfiguration answers here: big enough that building it costs real work.
KEYS = [{"key": f"ConfigurationKey{n}", "readonly": False, "value": str(n)} for n in range(40)]


class Peer(RobustPeer, LibChargePoint):
    """A 1.6 peer with a small queue; Reset waits until the test lets it answer."""

    call_results = call_result
    call_queue_max = 4

    def __init__(self, connection: Any) -> None:
        super().__init__("CP", connection, response_timeout=5)
        self.release = asyncio.Event()
        self.handled: list[str] = []

    @on("Reset", skip_schema_validation=True)
    async def on_reset(self, type: str) -> Any:
        await self.release.wait()
        return call_result.Reset(status="Accepted")

    @on("GetConfiguration", skip_schema_validation=True)
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        return call_result.GetConfiguration(configuration_key=KEYS)


class Peer201(RobustPeer, v201.ChargePoint):
    """The same on the 2.0.1 library peer: the queue is the common peer's, for every version."""

    call_results = v201.call_result
    call_queue_max = 4

    def __init__(self, connection: Any) -> None:
        super().__init__("CP", connection, response_timeout=5)
        self.release = asyncio.Event()

    @on("Reset", skip_schema_validation=True)
    async def on_reset(self, type: str, evse_id: int | None = None) -> Any:
        await self.release.wait()
        return v201.call_result.Reset(status="Accepted")


@pytest.mark.parametrize("peer_class", [Peer, Peer201], ids=["1.6", "2.0.1"])
async def test_a_burst_beyond_the_queue_is_answered_busy_at_once_and_the_rest_in_order(caplog, peer_class):
    caplog.set_level(logging.INFO, logger="chargepoint.protocol")
    wire = Wire()
    peer = peer_class(wire)
    reader = asyncio.ensure_future(peer.start())
    try:
        for n in range(20):
            wire.incoming.put_nowait(json.dumps([2, f"c{n:02}", "Reset", {"type": "Soft"}]))
        # While the first Reset is held, every CALL beyond the queue is answered at once.
        busy = [await asyncio.wait_for(wire.sent.get(), 1) for _ in range(20 - 1 - Peer.call_queue_max)]
        assert all(frame[0] == 4 and frame[2] == "GenericError" for frame in busy), busy
        assert busy[0][3] == f"busy: {Peer.call_queue_max} requests waiting"
        assert wire.sent.empty()
        peer.release.set()
        handled = [await asyncio.wait_for(wire.sent.get(), 1) for _ in range(1 + Peer.call_queue_max)]
        assert all(frame[0] == 3 for frame in handled), handled
        ids = [frame[1] for frame in handled]
        assert ids == sorted(ids) and ids[:Peer.call_queue_max] == ["c00", "c01", "c02", "c03"]
        assert sorted(ids + [frame[1] for frame in busy]) == [f"c{n:02}" for n in range(20)]
        # The connection is still served: a later CALL is handled.
        wire.incoming.put_nowait(json.dumps([2, "later", "Reset", {"type": "Hard"}]))
        assert await asyncio.wait_for(wire.sent.get(), 1) == [3, "later", {"status": "Accepted"}]
        assert not reader.done()
    finally:
        reader.cancel()
        await peer.stop_handling()
        await asyncio.gather(reader, return_exceptions=True)
    lines = [r for r in caplog.records if "busy" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].levelno == logging.WARNING
    assert f"{20 - 1 - Peer.call_queue_max} CALLs" in lines[0].getMessage()


async def test_a_burst_of_calls_on_a_real_connection_lets_the_loop_turn_every_few_frames():
    calls = 3000
    answers: list[list[Any]] = []
    finished = asyncio.Event()

    async def csms(ws: Any) -> None:
        for n in range(calls):
            await ws.send(json.dumps([2, f"f{n}", "GetConfiguration", {}]))
        async for frame in ws:
            answers.append(json.loads(frame))
            if len(answers) == calls:
                finished.set()

    async with serve(csms, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}", subprotocols=["ocpp1.6"]) as ws:
            peer = Peer(Counting(ws))
            reader = asyncio.ensure_future(peer.start())
            turns: list[int] = []  # frames the peer had sent when the loop came round to this coroutine

            async def ticker() -> None:  # stands for the watchdog's pinger: it runs once per loop turn
                while True:
                    turns.append(peer._connection.sent)
                    await asyncio.sleep(0)

            tick = asyncio.ensure_future(ticker())
            try:
                await asyncio.wait_for(finished.wait(), 60)
            finally:
                tick.cancel()
                reader.cancel()
                await peer.stop_handling()
                await asyncio.gather(tick, reader, return_exceptions=True)
            assert not ws.close_code, "the connection stays open"
    per_turn = max(b - a for a, b in zip(turns, turns[1:], strict=False))
    # The reader answers at most FRAMES_PER_TURN frames (a busy answer each), the queue one CALL.
    assert per_turn <= FRAMES_PER_TURN + 1, per_turn
    results = [frame for frame in answers if frame[0] == 3]
    assert len(results) >= 1 + Peer.call_queue_max
    assert all(frame[2] == {"configurationKey": KEYS} for frame in results)
    assert [int(frame[1][1:]) for frame in results] == sorted(int(frame[1][1:]) for frame in results)
    assert all(frame[:3] == [4, frame[1], "GenericError"] for frame in answers if frame[0] != 3)


class Counting:
    """The websocket, counting the frames the peer sends."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.sent = 0

    async def recv(self) -> Any:
        return await self.ws.recv()

    async def send(self, text: str) -> None:
        self.sent += 1
        await self.ws.send(text)


async def test_a_flood_that_does_not_stop_is_counted_once_a_minute(caplog):
    caplog.set_level(logging.INFO, logger="chargepoint.protocol")
    clock = Clock()
    answered: list[tuple[str, str]] = []
    held = asyncio.Event()

    async def handle(raw: str | bytes) -> None:
        await held.wait()

    async def refuse(unique_id: str, description: str) -> None:
        answered.append((unique_id, description))

    intake = CallIntake(handle, refuse, limit=2, monotonic=clock)
    for n in range(3):  # one handled (held), two waiting
        await intake.offer(f"c{n}", "[]")
    await asyncio.sleep(0)
    for n in range(100):
        clock.now = n  # one busy answer a second
        await intake.offer(f"b{n}", "[]")
    assert len(answered) == 100 and answered[0][1] == "busy: 2 requests waiting"
    lines = [r.getMessage() for r in caplog.records if "busy" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("answered 61 CALLs from the CSMS busy"), lines
    await intake.close()
    lines = [r.getMessage() for r in caplog.records if "busy" in r.getMessage()]
    assert len(lines) == 2 and lines[1].startswith("answered 39 CALLs"), lines
    assert lines[1].endswith("the connection closed")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now
