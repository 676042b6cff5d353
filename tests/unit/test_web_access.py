"""The dashboard's guards: exposure at start, logins, CSRF, the login throttle, who reads /metrics.

A real aiohttp server (aiohttp's test server on loopback) in front of a real
station service (the sim daemon, not started: the guards do not need it
running); time for sessions and the throttle is a ManualClock.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from prometheus_client.parser import text_string_to_metric_families

from chargepoint.app.daemon import Daemon
from chargepoint.config import ConfigError, parse
from chargepoint.web import passwords
from chargepoint.web.access import CSRF_HEADER, check_exposure
from chargepoint.web.auth import FAILURE_WINDOW_S, MAX_FAILURES
from chargepoint.web.server import WebServer, load_assets
from hal.clock import ManualClock

PASSWORD = "correct horse battery"


def config(tmp_path: Path, **web: object) -> object:
    return parse({"station": {"identity": "CP-WEB", "state_dir": str(tmp_path / "state")},
                  "ocpp": {"csms_url": "ws://127.0.0.1:9"},
                  "web": {"enabled": True, **web}}, str(tmp_path / "station.toml"))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def client(tmp_path, clock):
    cfg = config(tmp_path, metrics="loopback")
    passwords.write_hash(cfg.station.state_dir, passwords.hash_password(PASSWORD))
    daemon = Daemon(cfg)
    server = WebServer(daemon.service, daemon.messages, protected=check_exposure(cfg), assets=load_assets(),
                       clock=clock)
    async with TestClient(TestServer(server.app)) as test_client:
        test_client.web = server
        yield test_client
    for connector in daemon.hardware.connectors:
        connector.evse.close()


async def login(client: TestClient, password: str = PASSWORD) -> str:
    response = await client.post("/api/login", json={"password": password})
    assert response.status == 200, await response.text()
    return (await response.json())["csrf"]


def test_password_file_is_a_salted_scrypt_hash_readable_by_the_owner_only(tmp_path):
    first = passwords.hash_password(PASSWORD)
    second = passwords.hash_password(PASSWORD)
    assert first != second and first.startswith("scrypt$")  # a fresh salt each time
    assert PASSWORD not in first
    path = passwords.write_hash(tmp_path / "state", first)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    stored = passwords.read_hash(tmp_path / "state")
    assert passwords.verify_password(PASSWORD, stored)
    assert not passwords.verify_password(PASSWORD + "!", stored)
    assert not passwords.verify_password(PASSWORD, "scrypt$1$1$1$!!$!!")


def test_listening_beyond_loopback_needs_a_password(tmp_path):
    cfg = config(tmp_path, listen="0.0.0.0")
    with pytest.raises(ConfigError) as refused:
        check_exposure(cfg)
    assert refused.value.key == "web.listen" and "chargepoint web passwd" in refused.value.reason
    assert str(tmp_path / "station.toml") in str(refused.value)
    assert check_exposure(config(tmp_path)) is False  # loopback without a password: allowed, view-only
    passwords.write_hash(cfg.station.state_dir, passwords.hash_password(PASSWORD))
    assert check_exposure(cfg) is True


@pytest.mark.parametrize(("web", "key"), [
    ({"listen": "station.local"}, "web.listen"),
    ({"metrics": "public"}, "web.metrics"),
    ({"tls_cert": "/nonexistent.pem", "tls_key": "/nonexistent.key"}, "web.tls_cert"),
    ({"tls_cert": "/etc/hostname"}, "web.tls_key"),
    ({"port": 0}, "web.port"),
])
def test_bad_web_config_names_the_key(tmp_path, web, key):
    with pytest.raises(ConfigError) as refused:
        config(tmp_path, **web)
    assert refused.value.key == key


async def test_nothing_is_shown_or_done_without_a_login(client):
    session = await (await client.get("/api/session")).json()
    assert session == {"identity": "CP-WEB", "protected": True, "logged_in": False, "csrf": None,
                       "actions": [], "modes": ["off", "pv", "minpv", "fast"], "standalone": False}
    assert (await client.get("/api/state")).status == 401
    assert (await client.get("/api/live")).status == 401
    response = await client.post("/api/action/stop", json={"connector": 1}, headers={CSRF_HEADER: "x"})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "login_required"
    page = await client.get("/")
    assert page.status == 200 and "default-src 'self'" in page.headers["Content-Security-Policy"]


async def test_login_sets_a_strict_httponly_cookie_and_actions_need_the_csrf_token(client):
    response = await client.post("/api/login", json={"password": PASSWORD})
    assert response.status == 200
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    csrf = (await response.json())["csrf"]
    assert (await client.get("/api/state")).status == 200
    body = {"connector": 1, "operative": False}
    missing = await client.post("/api/action/availability", json=body)
    assert missing.status == 403 and (await missing.json())["error"]["code"] == "csrf"
    wrong = await client.post("/api/action/availability", json=body, headers={CSRF_HEADER: csrf[:-1] + "x"})
    assert wrong.status == 403
    foreign = await client.post("/api/action/availability", json=body,
                                headers={CSRF_HEADER: csrf, "Origin": "http://evil.example"})
    assert foreign.status == 403 and (await foreign.json())["error"]["code"] == "bad_origin"
    assert client.web.service.station.view(1).operative is True  # none of those changed anything
    done = await client.post("/api/action/availability", json=body, headers={CSRF_HEADER: csrf})
    assert done.status == 200, await done.text()
    assert (await done.json())["result"]["operative"] is False
    assert client.web.service.station.view(1).operative is False
    refused = await client.post("/api/action/stop", json={"connector": 1}, headers={CSRF_HEADER: csrf})
    assert refused.status == 409 and "no session" in (await refused.json())["error"]["message"]
    assert (await client.post("/api/action/unlock", json={}, headers={CSRF_HEADER: csrf})).status == 404


async def test_wrong_passwords_are_rate_limited_per_client_on_the_clock(client, clock):
    for _ in range(MAX_FAILURES):
        response = await client.post("/api/login", json={"password": "guess-guess"})
        assert response.status == 401
    limited = await client.post("/api/login", json={"password": PASSWORD})  # even the right one
    assert limited.status == 429 and int(limited.headers["Retry-After"]) > 0
    assert (await limited.json())["error"]["code"] == "rate_limited"
    clock.advance(FAILURE_WINDOW_S - 1)
    assert (await client.post("/api/login", json={"password": PASSWORD})).status == 429
    clock.advance(1)
    await login(client)


async def test_sessions_expire_and_logout_ends_them(client, clock):
    csrf = await login(client)
    assert (await client.get("/api/state")).status == 200
    out = await client.post("/api/logout", json={}, headers={CSRF_HEADER: csrf})
    assert out.status == 200
    assert (await client.get("/api/state")).status == 401
    await login(client)
    clock.advance(client.web.access.sessions.idle_s + 1)
    assert (await client.get("/api/state")).status == 401


async def test_metrics_only_for_loopback_by_default_and_parseable(client):
    response = await client.get("/metrics")  # the test client is on loopback
    assert response.status == 200
    families = {f.name: f for f in text_string_to_metric_families(await response.text())}
    for name in ("chargepoint_energy_import_wh", "chargepoint_power_w", "chargepoint_current_a",
                 "chargepoint_connector_status", "chargepoint_safety_tick_seconds",
                 "chargepoint_meter_read_failures", "chargepoint_ocpp_messages", "chargepoint_outbox_length",
                 "chargepoint_csms_reconnects", "chargepoint_uptime_seconds"):
        assert name in families, name
    request = make_mocked_request("GET", "/metrics", transport=_Peer("192.0.2.7"))
    with pytest.raises(Exception) as refused:
        await client.web.metrics(request)
    assert refused.value.status == 403


class _Peer:
    """A transport whose peer is ``address`` (what aiohttp reads request.remote from)."""

    def __init__(self, address: str) -> None:
        self.address = address

    def get_extra_info(self, name: str, default: object = None) -> object:
        return (self.address, 50000) if name == "peername" else default
