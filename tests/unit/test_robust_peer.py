"""The common peer keeps reading frames while a CSMS CALL is being handled.

An UnlockConnector with a transaction on the connector first stops the
transaction, which waits for the contactor to open; meanwhile the station's
own CALLs (the StopTransaction among them) need their answers read. With the
library's reader a handler that takes its time holds every frame up; the
common peer handles CSMS CALLs in a task of their own, one at a time, in order.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibChargePoint
from ocpp.v16 import call, call_result

from chargepoint.protocol.common.peer import RobustPeer


class Wire:
    """A connection the test feeds frames into and reads the station's frames from."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[str] = asyncio.Queue()
        self.sent: asyncio.Queue[list[Any]] = asyncio.Queue()

    async def recv(self) -> str:
        return await self.incoming.get()

    async def send(self, text: str) -> None:
        self.sent.put_nowait(json.loads(text))


class SlowPeer(RobustPeer, LibChargePoint):
    """A 1.6 peer whose Reset handler waits until the test lets it answer."""

    call_results = call_result

    def __init__(self, wire: Wire) -> None:
        super().__init__("CP", wire, response_timeout=5)
        self.release = asyncio.Event()
        self.order: list[str] = []

    @on("Reset", skip_schema_validation=True)
    async def on_reset(self, type: str) -> Any:
        self.order.append(f"reset {type} begins")
        await self.release.wait()
        self.order.append(f"reset {type} answers")
        return call_result.Reset(status="Accepted")


async def test_answers_to_own_calls_are_read_while_a_handler_waits():
    wire = Wire()
    peer = SlowPeer(wire)
    reader = asyncio.ensure_future(peer.start())
    try:
        wire.incoming.put_nowait(json.dumps([2, "csms-1", "Reset", {"type": "Soft"}]))
        await asyncio.wait_for(_until(lambda: peer.order == ["reset Soft begins"]), 1)
        # The station sends a CALL of its own while the handler still waits ...
        heartbeat = asyncio.ensure_future(peer.call(call.Heartbeat(), suppress=False))
        sent = await asyncio.wait_for(wire.sent.get(), 1)
        assert sent[2] == "Heartbeat"
        # ... and the CSMS's answer to it is read and delivered before the handler answers.
        wire.incoming.put_nowait(json.dumps([3, sent[1], {"currentTime": "2026-11-28T07:00:00Z"}]))
        result = await asyncio.wait_for(heartbeat, 1)
        assert result.current_time == "2026-11-28T07:00:00Z"
        assert peer.order == ["reset Soft begins"], "the handler has not answered yet"
        peer.release.set()
        answer = await asyncio.wait_for(wire.sent.get(), 1)
        assert answer == [3, "csms-1", {"status": "Accepted"}]
    finally:
        reader.cancel()
        await peer.stop_handling()
        await asyncio.gather(reader, return_exceptions=True)


async def test_csms_calls_are_handled_one_at_a_time_in_order():
    wire = Wire()
    peer = SlowPeer(wire)
    reader = asyncio.ensure_future(peer.start())
    try:
        wire.incoming.put_nowait(json.dumps([2, "a", "Reset", {"type": "Soft"}]))
        wire.incoming.put_nowait(json.dumps([2, "b", "Reset", {"type": "Hard"}]))
        await asyncio.wait_for(_until(lambda: peer.order == ["reset Soft begins"]), 1)
        for _ in range(10):
            await asyncio.sleep(0)  # let the second CALL's task run as far as it may
        assert peer.order == ["reset Soft begins"], "the second CALL waits for the first"
        peer.release.set()
        first, second = [await asyncio.wait_for(wire.sent.get(), 1) for _ in range(2)]
        assert (first[1], second[1]) == ("a", "b")
        assert peer.order == ["reset Soft begins", "reset Soft answers", "reset Hard begins",
                              "reset Hard answers"]
    finally:
        reader.cancel()
        await peer.stop_handling()
        await asyncio.gather(reader, return_exceptions=True)


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0)
