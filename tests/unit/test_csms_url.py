"""Where the identity goes in the CSMS URL: appended as OCPP-J says, or where ``{identity}`` stands."""

from __future__ import annotations

import asyncio

import pytest
from websockets.asyncio.server import ServerConnection, serve

from chargepoint.config import ConfigError, parse
from chargepoint.config.csms_url import url_problem
from chargepoint.connection import Credentials, Link, LinkSettings, endpoint
from chargepoint.core.security.network_profiles import NetworkProfile, NetworkProfiles
from chargepoint.core.settings import Settings


@pytest.mark.parametrize("url, identity, wanted", [
    ("ws://h:9000/ocpp/", "CP-1", "ws://h:9000/ocpp/CP-1"),
    ("wss://h", "CP-1", "wss://h/CP-1"),
    ("ws://h/ocpp/{identity}/", "CP-1", "ws://h/ocpp/CP-1/"),
    ("ws://h/ocpp?station={identity}&v=2", "CP-1", "ws://h/ocpp?station=CP-1&v=2"),
    ("ws://h/ocpp", "Hall 3/CP#1", "ws://h/ocpp/Hall%203%2FCP%231"),
    ("ws://h/{identity}/", "Hall 3/CP#1", "ws://h/Hall%203%2FCP%231/"),
])
def test_the_identity_is_appended_or_put_where_the_placeholder_stands(url, identity, wanted):
    assert endpoint(url, identity) == wanted


@pytest.mark.parametrize("url, words", [
    ("ws://h/ocpp/{id}", "'{id}' is not a placeholder this station knows: the only one is {identity}"),
    ("ws://h/ocpp/{identity", "'{identity' is not a placeholder"),
    ("ws://{identity}.example/ocpp", "not in the host"),
    ("http://h/ocpp", "is not a ws:// or wss:// URL"),
])
def test_check_config_explains_a_bad_placeholder(url, words):
    assert words in str(url_problem(url))
    with pytest.raises(ConfigError) as caught:
        parse({"station": {"identity": "CP-1"}, "ocpp": {"csms_url": url}})
    assert "ocpp.csms_url" in str(caught.value) and words in str(caught.value)


def test_a_network_profile_url_is_checked_alike():
    settings = Settings(parse({"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://h/ocpp"}}))
    profiles = NetworkProfiles(settings)
    bad = NetworkProfile(1, "ws://h/ocpp/{station}", 0, 30)
    assert "'{station}' is not a placeholder" in str(profiles.refusal(bad))
    assert profiles.refusal(NetworkProfile(1, "ws://h/ocpp/{identity}/", 0, 30)) is None


class Idle:
    """A session that only waits: the link keeps the connection open around it."""

    async def run(self) -> None:
        await asyncio.Event().wait()


async def test_the_station_connects_to_the_path_the_placeholder_makes():
    paths: asyncio.Queue[str] = asyncio.Queue()

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        await paths.put(ws.request.path)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.6"]) as server:
        port = server.sockets[0].getsockname()[1]
        settings = LinkSettings(f"ws://127.0.0.1:{port}/ocpp/{{identity}}/?token=a", "CP 1", "ocpp1.6")
        link = Link(settings, lambda ws: Idle(), credentials=lambda: Credentials(0, ""))
        running = asyncio.ensure_future(link.run())
        try:
            assert await asyncio.wait_for(paths.get(), 5) == "/ocpp/CP%201/?token=a"
        finally:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
