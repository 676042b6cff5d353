"""The close code the CSMS sees when the station ends the connection on purpose.

A reset the CSMS asked for ends with 1000 (normal closure) and a daemon that
stops with 1001 (going away); 1011 (internal error) would tell the CSMS the
station failed. Recorded by a real websockets server on loopback.
"""

from __future__ import annotations

import asyncio

from ocpp.v16 import call
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.server import ServerConnection, serve

from chargepoint.connection import Credentials, Link, LinkSettings
from tests.integration.conftest import until


async def closed_code(ws: ServerConnection) -> int | None:
    await asyncio.wait_for(ws.wait_closed(), 10)
    return ws.close_code


async def test_a_reset_the_csms_asked_for_closes_with_1000(csms, station):
    async with station() as daemon:
        await csms.wait_for("StatusNotification")
        assert (await csms.call(call.Reset(type="Soft"))).status == "Accepted"
        await until(lambda: daemon.restart_requested == "soft")
        assert await closed_code(csms.sockets[0]) == 1000


async def test_a_stopping_daemon_closes_with_1001(csms, station):
    async with station():
        await csms.wait_for("StatusNotification")
    assert await closed_code(csms.sockets[0]) == 1001


class Reader:
    """A session that reads until the connection closes, as the OCPP sessions do."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def run(self) -> None:
        async for _ in self.ws:
            pass


async def test_a_stopped_link_closes_with_its_code_and_connects_no_more():
    sockets: asyncio.Queue[ServerConnection] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        await sockets.put(ws)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        link = Link(LinkSettings(f"ws://127.0.0.1:{port}/ocpp", "CP-1", "ocpp1.6", reconnect_min_s=0.1),
                    Reader, credentials=lambda: Credentials(0, ""))
        running = asyncio.ensure_future(link.run())
        ws = await asyncio.wait_for(sockets.get(), 5)
        await link.stop(1001, "the station is stopping")
        await asyncio.wait_for(running, 5)  # the link ends by itself: no reconnect
        assert await closed_code(ws) == 1001
        assert sockets.empty()
