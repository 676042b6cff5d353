"""The dashboard against hostile clients: parallel password guesses, foreign Host names, stream hogs,
a password set while the daemon runs, and bodies that are not JSON.

A real aiohttp server (aiohttp's test server on loopback) in front of a real station service (the sim
daemon, not started); time for sessions and the login throttle is a ManualClock. Passwords are hashed at
a low scrypt cost so that many guesses stay fast.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from click.testing import CliRunner

from chargepoint.app.daemon import Daemon
from chargepoint.cli.web_commands import web_group
from chargepoint.config import ConfigError, parse
from chargepoint.web import auth, limits, passwords, server
from chargepoint.web.access import CSRF_HEADER, check_exposure
from chargepoint.web.server import WebServer, load_assets
from hal.clock import ManualClock

PASSWORD = "correct horse battery"
LOW_COST = 2**4


def config(tmp_path: Path, **web: object) -> object:
    return parse({"station": {"identity": "CP-WEB", "state_dir": str(tmp_path / "state")},
              "ocpp": {"csms_url": "ws://127.0.0.1:9"},
              "web": {"enabled": True, **web}}, str(tmp_path / "station.toml"))


def set_password(cfg: object, password: str = PASSWORD) -> None:
    passwords.write_hash(cfg.station.state_dir, passwords.hash_password(password, cost=LOW_COST))


class Rig:
    """A web server on loopback; ``start(password=...)`` opens a client to it."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.clock = ManualClock()
        self.daemons: list[Daemon] = []

    async def start(self, *, password: bool = True, **web: object) -> TestClient:
        cfg = config(self.tmp_path, **web)
        if password:
            set_password(cfg)
        daemon = Daemon(cfg)
        self.daemons.append(daemon)
        web_server = WebServer(daemon.service, daemon.messages, protected=check_exposure(cfg),
                           assets=load_assets(), clock=self.clock)
        client = TestClient(TestServer(web_server.app))
        await client.start_server()
        client.web = web_server
        return client

    def close(self) -> None:
        for daemon in self.daemons:
            for connector in daemon.hardware.connectors:
                connector.evse.close()


@pytest.fixture
async def rig(tmp_path):
    made = Rig(tmp_path)
    yield made
    made.close()


@pytest.fixture
def checked(monkeypatch) -> list[str]:
    """Every password the server runs scrypt on, in order."""
    seen: list[str] = []
    real = passwords.verify_password

    def counting(password: str, stored: str) -> bool:
        seen.append(password)
        return real(password, stored)

    monkeypatch.setattr(passwords, "verify_password", counting)
    return seen


class _Peer:
    """A transport whose peer is ``address`` (what aiohttp reads request.remote from)."""

    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.address, 50000) if name == "peername" else default


def from_address(address: str) -> object:
    return make_mocked_request("POST", "/api/login", transport=_Peer(address))


# ---------------------------------------------------------------- login throttle
async def test_parallel_guesses_are_counted_before_the_password_is_checked(rig, checked):
    client = await rig.start()
    async with client:
        guesses = [f"guess-{n:03d}-wrong" for n in range(149)] + [PASSWORD]

        async def attempt(password: str) -> int:
            async with client.post("/api/login", json={"password": password}) as response:
                return response.status

        statuses = await asyncio.gather(*(attempt(p) for p in guesses))
    assert len(checked) == auth.MAX_FAILURES and PASSWORD not in checked
    assert statuses.count(401) == auth.MAX_FAILURES
    assert statuses.count(429) == len(guesses) - auth.MAX_FAILURES
    assert statuses[-1] == 429  # the right password, sent while locked out, is refused unchecked


async def test_a_success_releases_its_reservation_and_clears_the_address(rig, checked):
    client = await rig.start()
    async with client:
        for _ in range(auth.MAX_FAILURES - 1):
            assert (await client.post("/api/login", json={"password": "wrong-wrong"})).status == 401
        assert (await client.post("/api/login", json={"password": PASSWORD})).status == 200
        for _ in range(auth.MAX_FAILURES):
            assert (await client.post("/api/login", json={"password": "wrong-wrong"})).status == 401
        assert (await client.post("/api/login", json={"password": PASSWORD})).status == 429


async def test_a_remote_flood_meets_the_global_limit_and_the_owner_on_loopback_still_logs_in(rig, checked):
    client = await rig.start()
    access = client.web.access
    async with client:
        for n in range(auth.MAX_FAILURES_ALL):  # one guess each from many addresses
            with pytest.raises(web.HTTPException) as wrong:
                await access.login(from_address(f"198.51.100.{n + 1}"), "wrong-wrong")
            assert wrong.value.status == 401
        with pytest.raises(web.HTTPException) as limited:
            await access.login(from_address("203.0.113.9"), PASSWORD)  # a new address, the right password
        assert limited.value.status == 429 and int(limited.value.headers["Retry-After"]) > 0
        assert len(checked) == auth.MAX_FAILURES_ALL
        assert (await access.login(from_address("127.0.0.1"), PASSWORD)).client == "127.0.0.1"
        rig.clock.advance(auth.FAILURE_WINDOW_S)
        assert (await access.login(from_address("203.0.113.9"), PASSWORD)).client == "203.0.113.9"


async def test_ipv6_addresses_of_one_network_share_a_budget(rig, checked):
    client = await rig.start()
    async with client:
        for n in range(auth.MAX_FAILURES):
            with pytest.raises(web.HTTPException):
                await client.web.access.login(from_address(f"2001:db8:1:2::{n + 1:x}"), "wrong-wrong")
        with pytest.raises(web.HTTPException) as limited:
            await client.web.access.login(from_address("2001:db8:1:2::99"), PASSWORD)
        assert limited.value.status == 429
        assert (await client.web.access.login(from_address("2001:db8:1:3::1"), PASSWORD)) is not None


# ---------------------------------------------------------------- Host allow-list
@pytest.mark.parametrize("password", [False, True])
async def test_a_foreign_host_name_is_refused_on_every_route(rig, password):
    client = await rig.start(password=password, metrics="open")
    async with client:
        for method, path in (("GET", "/api/state"), ("GET", "/metrics"), ("GET", "/api/live"),
                         ("GET", "/"), ("GET", "/api/session"), ("POST", "/api/login")):
            response = await client.request(method, path, headers={"Host": "evil.example:8080"},
                                        json={"password": PASSWORD} if method == "POST" else None)
            assert response.status == 421, (path, await response.text())
            assert "evil.example" in await response.text()
        assert (await client.get("/metrics", headers={"Host": "127.0.0.1:8080"})).status == 200


async def test_the_listen_address_loopback_names_and_configured_names_are_served(rig):
    client = await rig.start(password=False, allowed_hosts=["station.example", "CP-7.lan"])
    async with client:
        for host in ("127.0.0.1", "localhost:8080", "[::1]:8080", "station.example", "cp-7.lan:80",
                 "LOCALHOST", "192.0.2.44:8080"):
            response = await client.get("/api/state", headers={"Host": host})
            assert response.status == 200, (host, await response.text())
        for host in ("station.example.evil.example", "example", "localhost.evil.example", ""):
            assert (await client.get("/api/state", headers={"Host": host})).status == 421, host


def test_allowed_hosts_must_be_host_names(tmp_path):
    assert config(tmp_path, allowed_hosts=["station.example"]).web.allowed_hosts == ("station.example",)
    for bad in (["http://station.example/"], ["a b"], "station.example", [3]):
        with pytest.raises(ConfigError) as refused:
            config(tmp_path, allowed_hosts=bad)
        assert refused.value.key == "web.allowed_hosts"


# ---------------------------------------------------------------- live streams
async def _open_stream(url: str, source: str, streams: list[aiohttp.ClientResponse],
                   sessions: list[aiohttp.ClientSession]) -> int:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))
    sessions.append(session)
    response = await session.get(url, headers={"Host": "127.0.0.1"})
    if response.status == 200:
        assert (await response.content.readuntil(b"\n\n")).startswith(b"event: full")
        streams.append(response)
    else:
        response.release()
    return response.status


async def test_one_client_cannot_take_every_live_stream_and_the_owner_keeps_a_slot(rig, monkeypatch):
    # 127.0.0.1 plays the owner on the station; 127.0.0.2-9 play clients on the network.
    monkeypatch.setattr(server, "from_loopback", lambda request: request.remote == "127.0.0.1")
    client = await rig.start(password=False)
    url = str(client.make_url("/api/live"))
    streams: list[aiohttp.ClientResponse] = []
    sessions: list[aiohttp.ClientSession] = []
    async with client:
        try:
            hog = await asyncio.gather(*(_open_stream(url, "127.0.0.2", streams, sessions)
                                         for _ in range(16)))
            assert hog.count(200) == limits.MAX_STREAMS_PER_CLIENT and set(hog) == {200, 429}
            others = [await _open_stream(url, f"127.0.0.{n}", streams, sessions)
                      for n in range(3, 10) for _ in range(limits.MAX_STREAMS_PER_CLIENT)]
            remote_slots = limits.MAX_STREAMS - limits.OWNER_STREAMS
            assert others.count(200) == remote_slots - limits.MAX_STREAMS_PER_CLIENT and 503 in others
            assert await _open_stream(url, "127.0.0.1", streams, sessions) == 200  # the owner still gets in
        finally:
            client.web.feed.close()  # ends the streams still open
            for response in streams:
                response.close()
            for session in sessions:
                await session.close()


# ---------------------------------------------------------------- password set at runtime
async def test_a_password_set_while_the_server_runs_protects_at_once(rig, tmp_path):
    client = await rig.start(password=False)
    cfg = client.web.config
    (tmp_path / "station.toml").write_text(
        f'[station]\nidentity = "CP-WEB"\nstate_dir = "{cfg.station.state_dir}"\n'
        '[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n')

    def passwd(password: str) -> None:
        result = CliRunner().invoke(web_group, ["passwd", "--config", str(tmp_path / "station.toml"),
                                            "--password-stdin"], input=password + "\n")
        assert result.exit_code == 0, result.output

    async with client:
        assert (await client.get("/api/state")).status == 200  # view-only without a password
        await asyncio.to_thread(passwd, PASSWORD)
        assert (await client.get("/api/state")).status == 401
        assert (await (await client.get("/api/session")).json())["protected"] is True
        assert (await client.get("/api/live")).status == 401
        csrf = (await (await client.post("/api/login", json={"password": PASSWORD})).json())["csrf"]
        assert (await client.get("/api/state")).status == 200
        await asyncio.to_thread(passwd, "another horse battery")  # changed: the old sessions end
        assert (await client.get("/api/state")).status == 401
        refused = await client.post("/api/action/stop", json={"connector": 1}, headers={CSRF_HEADER: csrf})
        assert refused.status == 401


# ---------------------------------------------------------------- bodies
@pytest.mark.parametrize(("body", "content_type"), [
    (b"[" * 12000, "application/json"),
    (b'{"password": ' + b"[" * 5000 + b"]" * 5000 + b"}", "application/json"),
    (b'{"password": ' + b"7" * 6000 + b"}", "application/json"),
    (b'{"password": "\xff\xfe"}', "application/json"),
    (b'{"password": "x"}', "application/json; charset=no-such-charset"),
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
])
async def test_a_body_that_is_not_a_json_object_answers_400(rig, body, content_type):
    client = await rig.start()
    async with client:
        response = await client.post("/api/login", data=body, headers={"Content-Type": content_type})
        assert response.status == 400, await response.text()
        assert (await response.json())["error"]["code"] == "bad_request"
        csrf = (await (await client.post("/api/login", json={"password": PASSWORD})).json())["csrf"]
        action = await client.post("/api/action/limit", data=body,
                                   headers={"Content-Type": content_type, CSRF_HEADER: csrf})
        assert action.status == 400, await action.text()
