"""Frames past the size the station handles, over a real WebSocket on loopback.

Up to 1 MiB a frame is handled. A longer CALL (read up to 8 MiB) is answered GenericError
naming the limit and the connection stays open, so a CSMS does not meet it with the same
CALL again after a reconnect; a frame longer than 8 MiB closes the connection with 1009.
"""

from __future__ import annotations

import asyncio
import json

import ocpp.v16
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from chargepoint.connection import Credentials, Link, LinkSettings, Session
from chargepoint.protocol.common.peer import FRAME_MAX, RobustPeer


class Peer(RobustPeer, ocpp.v16.ChargePoint):
    call_results = ocpp.v16.call_result


class PeerSession:
    def __init__(self, ws: object) -> None:
        self.peer = Peer("CP-BIG", ws)

    async def run(self) -> None:
        await self.peer.start()


def big_call(unique_id: str, size: int) -> str:
    """A DataTransfer CALL padded to ``size`` characters."""
    head = f'[2,"{unique_id}","DataTransfer",{{"vendorId":"x","data":"'
    return head + "a" * (size - len(head) - 3) + '"}]'


async def test_a_long_call_is_answered_and_a_frame_past_the_read_limit_closes_with_1009():
    seen: asyncio.Queue[tuple[str, object]] = asyncio.Queue()

    async def csms(ws: ServerConnection) -> None:
        await ws.send(big_call("big-1", 5 * 1024 * 1024))
        await seen.put(("answer", json.loads(await ws.recv())))
        await ws.send(big_call("fits", FRAME_MAX))  # at the limit: handled (no handler: NotImplemented)
        await seen.put(("answer", json.loads(await ws.recv())))
        try:
            await ws.send(big_call("huge", 9 * 1024 * 1024))
            await ws.recv()
        except ConnectionClosed as exc:
            await seen.put(("closed", exc.rcvd.code if exc.rcvd else None))

    def session(ws: object) -> Session:
        return PeerSession(ws)  # type: ignore[return-value]

    async with serve(csms, "127.0.0.1", 0, subprotocols=["ocpp1.6"], max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        link = Link(LinkSettings(f"ws://127.0.0.1:{port}/ocpp", "CP-BIG", "ocpp1.6", reconnect_min_s=60),
                    session, credentials=lambda: Credentials(0, ""))
        task = asyncio.ensure_future(link.run())
        try:
            kind, refused = await asyncio.wait_for(seen.get(), 10)
            assert kind == "answer" and refused[:3] == [4, "big-1", "GenericError"], refused
            assert str(FRAME_MAX) in refused[3]
            kind, handled = await asyncio.wait_for(seen.get(), 10)
            assert kind == "answer" and handled[:3] == [4, "fits", "NotImplemented"], handled
            assert await asyncio.wait_for(seen.get(), 10) == ("closed", 1009)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
