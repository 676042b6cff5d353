"""Security profiles 0, 1 and 2 against real servers: Basic auth, TLS, key changes by the CSMS.

Certificates are made in the test (``cryptography``); servers listen on
127.0.0.1; the station is the in-process daemon on the sim hal.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.config import ConfigError, parse
from tests.integration.conftest import running, station_config, until
from tests.integration.peers import Authority, RawCsms, TcpProxy, server_tls

IDENTITY = "CP-TEST-1"
#: 20 octets, some of them not printable and not UTF-8: the password is the octets.
KEY = "00ff10e2c3a4b5c6d7e8f90a1b2c3d4e5f607182"
#: 16 octets, the shortest key OCPP allows.
OTHER_KEY = "0123456789abcdeffedcba9876543210"


def basic(key_hex: str, identity: str = IDENTITY) -> str:
    """The header the CSMS expects, computed here independently of the product."""
    return "Basic " + base64.b64encode(identity.encode() + b":" + bytes.fromhex(key_hex)).decode()


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The CSMS's CA and certificates, and an unrelated CA."""
    directory = tmp_path_factory.mktemp("pki")
    ca = Authority.create("chargepoint test CA")
    stranger = Authority.create("some other CA")
    good = ca.issue_server(directory, ["localhost"], ["127.0.0.1"])
    (directory / "other").mkdir()
    other_name = ca.issue_server(directory / "other", ["csms.example"])
    return {
        "ca_bundle": ca.write(directory / "ca.pem"),
        "stranger_bundle": stranger.write(directory / "stranger.pem"),
        "good": server_tls(*good),
        "other_name": server_tls(*other_name),
    }


def config(url: str, tmp_path: Path, **ocpp: Any) -> dict[str, Any]:
    return station_config(url, str(tmp_path / "state"), ocpp=ocpp)


async def booted(csms: RawCsms, connection: int = 1, timeout: float = 10.0) -> None:
    await csms.wait_for("BootNotification", connection=connection, timeout=timeout)
    await csms.wait_for("StatusNotification", connection=connection, timeout=timeout)


@pytest.fixture
async def tls_csms(pki: dict[str, Any]) -> AsyncIterator[RawCsms]:
    async with RawCsms(authorization=basic(KEY), ssl_context=pki["good"]) as csms:
        yield csms


# ------------------------------------------------------------- profile 2: TLS


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_profile_2_with_the_right_ca_connects_and_sends_the_key_octets(pki, tmp_path, host):
    async with RawCsms(authorization=basic(KEY), ssl_context=pki["good"], host=host) as csms:
        cfg = config(csms.url, tmp_path, security_profile=2, authorization_key=KEY,
                     ca_bundle=pki["ca_bundle"])
        async with running(cfg) as daemon:
            await booted(csms)
            assert daemon.link.connections == 1
        assert csms.url.startswith("wss://")
        first = csms.handshakes[0]
        assert first.accepted
        assert first.authorization == basic(KEY)
        assert first.path == f"/ocpp/{IDENTITY}"
        assert first.subprotocols == "ocpp2.1, ocpp2.0.1, ocpp1.6"  # all offered, the CSMS chose 1.6
        assert all(h.accepted for h in csms.handshakes)


async def refused_tls(pki: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture,
                      server_context: Any, ca_bundle: str, host: str = "127.0.0.1") -> str:
    """Run a profile 2 station against a TLS server it must not trust; returns the log."""
    caplog.set_level(logging.WARNING, logger="chargepoint.connection")
    async with RawCsms(authorization=basic(KEY), ssl_context=server_context) as csms, \
            TcpProxy(csms.port) as proxy:
        # The proxy only counts TCP connections: TLS is between the station and the server.
        url = f"wss://{host}:{proxy.port}/ocpp"
        cfg = config(url, tmp_path, security_profile=2, authorization_key=KEY, ca_bundle=ca_bundle)
        async with running(cfg) as daemon:
            await until(lambda: proxy.accepted >= 3, 15, "three connection attempts")
            assert daemon.link.connections == 0
            assert not daemon.link.connected.is_set()
        assert csms.handshakes == [], "no HTTP request (and no key) may reach an untrusted server"
        assert csms.sockets == [] and csms.calls == []
    return caplog.text


async def test_profile_2_refuses_a_server_signed_by_another_ca(pki, tmp_path, caplog):
    text = await refused_tls(pki, tmp_path, caplog, pki["good"], pki["stranger_bundle"])
    assert "TLS certificate not trusted" in text


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_profile_2_refuses_a_certificate_for_another_host_name(pki, tmp_path, caplog, host):
    # Signed by the trusted CA, but for csms.example while the station dials 127.0.0.1 / localhost.
    text = await refused_tls(pki, tmp_path, caplog, pki["other_name"], pki["ca_bundle"], host)
    assert "TLS certificate not trusted" in text and "mismatch" in text


# ------------------------------------------------------------ profiles 0 and 1


async def test_profile_1_sends_basic_auth_over_ws(tmp_path):
    async with RawCsms(authorization=basic(KEY)) as csms:
        async with running(config(csms.url, tmp_path, security_profile=1, authorization_key=KEY)):
            await booted(csms)
        assert csms.url.startswith("ws://")
        assert csms.handshakes[0].authorization == basic(KEY)
        assert csms.handshakes[0].accepted


async def test_profile_1_with_a_wrong_key_gets_401_and_no_session(tmp_path):
    async with RawCsms(authorization=basic(KEY)) as csms:
        cfg = config(csms.url, tmp_path, security_profile=1, authorization_key=OTHER_KEY)
        async with running(cfg) as daemon:
            await until(lambda: len(csms.handshakes) >= 2, 15, "a second attempt")
            assert daemon.link.connections == 0
            assert not daemon.link.connected.is_set()
        assert all(h.authorization == basic(OTHER_KEY) and not h.accepted for h in csms.handshakes)
        assert csms.sockets == [] and csms.calls == []


async def test_profile_0_sends_no_authorization(tmp_path):
    async with RawCsms() as csms:
        async with running(config(csms.url, tmp_path)):
            await booted(csms)
        assert [h.authorization for h in csms.handshakes] == [None]


async def test_profile_0_with_a_key_configured_still_sends_none(tmp_path):
    async with RawCsms() as csms:
        async with running(config(csms.url, tmp_path, authorization_key=KEY)):
            await booted(csms)
        assert [h.authorization for h in csms.handshakes] == [None]


# -------------------------------------------------- SecurityProfile by the CSMS


async def test_security_profile_cannot_be_lowered_or_set_to_3(tmp_path):
    async with RawCsms(authorization=basic(KEY)) as csms:
        async with running(config(csms.url, tmp_path, security_profile=1, authorization_key=KEY)) as daemon:
            await booted(csms)
            assert await csms.change_configuration("SecurityProfile", "0") == "Rejected"
            assert await csms.change_configuration("SecurityProfile", "3") == "Rejected"
            # profile 2 needs a wss:// URL; this station has ws://
            assert await csms.change_configuration("SecurityProfile", "2") == "Rejected"
            answer = await csms.call("GetConfiguration", {"key": ["SecurityProfile"]})
            assert answer[2]["configurationKey"] == [
                {"key": "SecurityProfile", "readonly": False, "value": "1"}]
            assert daemon.link.connections == 1 and csms.connection == 1
        assert all(h.authorization == basic(KEY) for h in csms.handshakes)


async def test_security_profile_1_needs_a_key_first(tmp_path):
    async with RawCsms() as csms:
        async with running(config(csms.url, tmp_path)) as daemon:
            await booted(csms)
            assert await csms.change_configuration("SecurityProfile", "1") == "Rejected"
            assert daemon.link.connections == 1
            assert await csms.change_configuration("AuthorizationKey", KEY) == "Accepted"
            csms.authorization = basic(KEY)
            assert await csms.change_configuration("SecurityProfile", "1") == "Accepted"
            # raising the profile takes effect on a new connection, with Basic auth
            await booted(csms, connection=2)
            assert daemon.link.connections == 2
        assert [h.authorization for h in csms.handshakes] == [None, basic(KEY)]
        assert csms.handshakes[-1].accepted


async def test_security_profile_raised_to_2_reconnects_over_tls(pki, tmp_path, tls_csms):
    csms = tls_csms
    cfg = config(csms.url, tmp_path, security_profile=1, authorization_key=KEY, ca_bundle=pki["ca_bundle"])
    async with running(cfg) as daemon:
        await booted(csms)
        assert await csms.change_configuration("SecurityProfile", "2") == "Accepted"
        await booted(csms, connection=2)
        assert int(daemon.settings.get("security_profile")) == 2
        answer = await csms.call("GetConfiguration", {"key": ["SecurityProfile"]})
        assert answer[2]["configurationKey"][0]["value"] == "2"
        assert await csms.change_configuration("SecurityProfile", "1") == "Rejected"
    assert [h.authorization for h in csms.handshakes] == [basic(KEY), basic(KEY)]


# ------------------------------------------------------- AuthorizationKey


def _mentions_key(text: str, key_hex: str) -> bool:
    lowered = text.lower()
    return key_hex.lower() in lowered or basic(key_hex).split()[1] in text


async def test_authorization_key_is_write_only_and_used_from_the_next_connection(tmp_path):
    async with RawCsms(authorization=basic(KEY)) as csms:
        cfg = config(csms.url, tmp_path, security_profile=1, authorization_key=KEY)
        async with running(cfg) as daemon:
            await booted(csms)
            # not a key: too short, odd length, not hexadecimal
            for bad in ["1234", OTHER_KEY[:-1], "zz" * 16, OTHER_KEY + "0" * 10]:
                assert await csms.change_configuration("AuthorizationKey", bad) == "Rejected", bad
            assert await csms.change_configuration("AuthorizationKey", OTHER_KEY) == "Accepted"

            every = await csms.call("GetConfiguration", {})
            assert every[0] == 3
            for entry in every[2].get("configurationKey", []):
                assert entry["key"] != "AuthorizationKey" or "value" not in entry
            named = await csms.call("GetConfiguration", {"key": ["AuthorizationKey"]})
            assert named[0] == 3
            for entry in named[2].get("configurationKey", []):
                assert entry == {"key": "AuthorizationKey", "readonly": False}
            for answer in csms.answers:
                assert not _mentions_key(answer.raw, OTHER_KEY), answer.raw
                assert not _mentions_key(answer.raw, KEY), answer.raw

            # The current connection stays; the next one must use the new key.
            assert daemon.link.connections == 1
            csms.authorization = basic(OTHER_KEY)
            await csms.sockets[0].close()
            await booted(csms, connection=2)
            assert daemon.link.connections == 2
        assert [h.authorization for h in csms.handshakes] == [basic(KEY), basic(OTHER_KEY)]

        # A restarted station keeps the key the CSMS set (the file still says KEY).
        async with running(cfg) as daemon:
            await booted(csms, connection=3)
        assert csms.handshakes[-1].authorization == basic(OTHER_KEY)
        assert all(h.accepted for h in csms.handshakes)


# ------------------------------------------------------- configuration file


def _ocpp_config(**ocpp: Any) -> dict[str, Any]:
    return {"station": {"identity": IDENTITY}, "ocpp": ocpp}


@pytest.mark.parametrize(("ocpp", "key", "reason"), [
    ({"csms_url": "ws://csms.example/ocpp", "security_profile": 2, "authorization_key": KEY},
     "ocpp.csms_url", "wss://"),
    ({"csms_url": "ws://csms.example/ocpp", "security_profile": 1},
     "ocpp.authorization_key", "required"),
    ({"csms_url": "wss://csms.example/ocpp", "security_profile": 2},
     "ocpp.authorization_key", "required"),
    ({"csms_url": "ws://csms.example/ocpp", "security_profile": 1, "authorization_key": "abc"},
     "ocpp.authorization_key", "hex"),
    ({"csms_url": "ws://csms.example/ocpp", "security_profile": 1, "authorization_key": "00" * 15},
     "ocpp.authorization_key", "32 to 40"),
    ({"csms_url": "ws://csms.example/ocpp", "security_profile": 1, "authorization_key": "00" * 21},
     "ocpp.authorization_key", "32 to 40"),
    ({"csms_url": "ws://csms.example/ocpp", "security_profile": 4, "authorization_key": KEY},
     "ocpp.security_profile", ""),
    ({"csms_url": "ws://csms.example/ocpp", "security_profile": 3},
     "ocpp.csms_url", "wss:// with security_profile 3"),
    ({"csms_url": "wss://csms.example/ocpp", "security_profile": 2, "authorization_key": KEY,
      "ca_bundle": "/nonexistent/ca.pem"},
     "ocpp.ca_bundle", "not found"),
])
def test_config_rejects_inconsistent_security_settings(ocpp, key, reason):
    with pytest.raises(ConfigError) as caught:
        parse(_ocpp_config(**ocpp), "/etc/chargepoint/station.toml")
    error = caught.value
    assert error.file == "/etc/chargepoint/station.toml"
    assert error.key == key
    assert reason in error.reason
    assert str(error).startswith(f"/etc/chargepoint/station.toml: {key}: ")


def test_config_accepts_consistent_security_settings(tmp_path):
    bundle = tmp_path / "ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    cfg = parse(_ocpp_config(csms_url="wss://csms.example/ocpp", security_profile=2,
                             authorization_key=KEY.upper(), ca_bundle=str(bundle)), "<test>")
    assert cfg.ocpp.security_profile == 2 and cfg.ocpp.ca_bundle == str(bundle)
    cfg = parse(_ocpp_config(csms_url="ws://csms.example/ocpp", security_profile=1,
                             authorization_key=OTHER_KEY), "<test>")
    assert cfg.ocpp.security_profile == 1
