"""Signed firmware, the security log and the profile switch: real files, real keys, simulated time."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from chargepoint.config import parse
from chargepoint.core.security import security_log as security_log_module
from chargepoint.core.security.certificates import CertificateStore, RootKind
from chargepoint.core.security.firmware_signature import (
    INVALID_CERTIFICATE,
    INVALID_SIGNATURE,
    SignatureVerifier,
)
from chargepoint.core.security.security_log import SecurityEvent, SecurityLog
from chargepoint.core.security.security_profile import ProfileSwitch
from chargepoint.core.security.services import RENEWAL_RETRY_S, Security
from chargepoint.core.settings import Settings
from chargepoint.core.storage.store import Store
from hal.clock import ManualClock
from tests.pki import DAY, Ca, pem, sign_package

NOW = time.time()
PACKAGE = b"\x7fELF firmware image " * 5000


@dataclass
class Request:
    """What a firmware request carries for the verifier (the firmware manager's request, duck-typed)."""

    signature: str | None
    signing_certificate: str | None


@pytest.fixture
def manufacturer(tmp_path: Path) -> tuple[CertificateStore, Ca, SecurityLog]:
    store = CertificateStore(tmp_path, lambda: NOW)
    root = Ca.root("Manufacturer root")
    store.install(RootKind.MANUFACTURER, pem(root.certificate), 20)
    return store, root, SecurityLog(lambda: NOW)


@pytest.mark.parametrize("rsa_key", [False, True])
async def test_a_package_signed_under_the_manufacturer_root_may_run(manufacturer, tmp_path, rsa_key):
    store, root, events = manufacturer
    signer = root.intermediate("Firmware signing CA")
    if rsa_key:
        from cryptography.hazmat.primitives.asymmetric import rsa
        certificate, key = signer.leaf("firmware signer", key=rsa.generate_private_key(65537, 2048))
    else:
        certificate, key = signer.leaf("firmware signer")
    package = tmp_path / "fw.bin"
    package.write_bytes(PACKAGE)
    request = Request(sign_package(key, PACKAGE), pem(certificate) + signer.chain_pem())
    assert await SignatureVerifier(store, events).verify(package, request) is None
    assert await events.unsent() == []


@pytest.mark.parametrize("case", ["tampered", "other key", "not base64", "no signature"])
async def test_a_package_whose_signature_fails_never_runs_and_is_reported(manufacturer, tmp_path, case):
    store, root, events = manufacturer
    certificate, key = root.leaf("firmware signer")
    package = tmp_path / "fw.bin"
    signature = sign_package(key, PACKAGE)
    package.write_bytes(PACKAGE[:-1] + b"!" if case == "tampered" else PACKAGE)
    if case == "other key":
        signature = sign_package(root.leaf("someone")[1], PACKAGE)
    request = Request({"not base64": "%%%", "no signature": None}.get(case, signature), pem(certificate))
    refusal = await SignatureVerifier(store, events).verify(package, request)
    assert refusal is not None and refusal.status == INVALID_SIGNATURE  # type: ignore[attr-defined]
    assert [e.kind for e in await events.unsent()] == [SecurityEvent.INVALID_FIRMWARE_SIGNATURE]


@pytest.mark.parametrize("case", ["unknown signer", "expired signer", "deleted root", "none"])
async def test_a_package_from_an_untrusted_signer_never_runs_and_is_reported(manufacturer, tmp_path, case):
    store, root, events = manufacturer
    issuer = Ca.root("someone else") if case == "unknown signer" else root
    certificate, key = issuer.leaf("signer", start=NOW - 40 * DAY if case == "expired signer" else None)
    if case == "deleted root":
        store.delete(store.installed()[0].hash_data())
    package = tmp_path / "fw.bin"
    package.write_bytes(PACKAGE)
    request = Request(sign_package(key, PACKAGE), None if case == "none" else pem(certificate))
    refusal = await SignatureVerifier(store, events).verify(package, request)
    assert refusal is not None and refusal.status == INVALID_CERTIFICATE  # type: ignore[attr-defined]
    assert [e.kind for e in await events.unsent()] == [SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE]


# ------------------------------------------------------------------ the security log


async def test_the_log_persists_is_bounded_and_keeps_unsent_events_across_a_restart(tmp_path, monkeypatch):
    monkeypatch.setattr(security_log_module, "LOG_MAX", 5)
    clock = ManualClock()
    log = SecurityLog(clock.time)
    log.record(SecurityEvent.STARTUP_OF_THE_DEVICE)  # before the store: kept in memory, then written
    store = await Store.open(tmp_path)
    try:
        await log.attach(store)
        for n in range(6):
            clock.advance(10)
            log.record(SecurityEvent.INVALID_MESSAGES, f"frame {n}")
        rows = await log.entries()
        assert [r.info for r in rows] == [f"frame {n}" for n in range(1, 6)]
        await log.mark_sent(rows[0])
    finally:
        await store.close()
    store = await Store.open(tmp_path)
    try:
        again = SecurityLog(clock.time)
        await again.attach(store)
        assert again.recorded.is_set()  # unsent rows wake the sender after a restart
        assert [r.info for r in await again.unsent()] == [f"frame {n}" for n in range(2, 6)]
        path = tmp_path / "security.log"
        window = rows[1].at, rows[3].at
        assert await again.export(path, *window) == 3
        lines = path.read_text().splitlines()
        assert len(lines) == 3 and "invalid_messages: frame 2" in lines[0]
        await again.clear("the technician")
        [only] = await again.entries()
        assert only.kind is SecurityEvent.SECURITY_LOG_WAS_CLEARED and only.critical
    finally:
        await store.close()


# ------------------------------------------------------------------ the profile switch


def _settings(url: str = "wss://csms.example/ocpp", profile: int = 2) -> Settings:
    return Settings(parse({"station": {"identity": "CP-1"},
                           "ocpp": {"csms_url": url, "security_profile": profile,
                                    "authorization_key": "00" * 16}}))


def test_the_profile_only_goes_up_and_only_with_what_it_needs():
    settings, events = _settings(), SecurityLog(time.time)
    has_certificate = [False]
    switch = ProfileSwitch(settings, "wss://csms.example/ocpp", events, lambda: has_certificate[0])
    assert "downgrading" in str(switch.refusal(1))
    assert "own certificate" in str(switch.refusal(3))
    has_certificate[0] = True
    assert switch.refusal(3) is None
    assert settings.set("security_profile", "3").value == "accepted"
    assert "wss" in str(ProfileSwitch(_settings("ws://h", 1), "ws://h", events, lambda: True).refusal(3))


async def test_a_raised_profile_that_does_not_connect_falls_back_and_says_so():
    settings, events = _settings(), SecurityLog(time.time)
    switch = ProfileSwitch(settings, "wss://csms.example/ocpp", events, lambda: True)
    switch.connected()
    settings.set("security_profile", "3")
    assert [switch.failed() for _ in range(3)] == [False, False, True]
    assert settings.get("security_profile") == 2
    infos = [e.info for e in await events.unsent()]
    assert infos == ["security_profile = 3",
                     "security profile 3 failed to connect 3 times; back to profile 2"]
    assert switch.failed() is False  # profile 2 connected before: nothing further to fall back to


async def test_a_raised_profile_that_connected_is_the_new_floor():
    settings, events = _settings(), SecurityLog(time.time)
    switch = ProfileSwitch(settings, "wss://csms.example/ocpp", events, lambda: True)
    settings.set("security_profile", "3")
    switch.connected()
    assert [switch.failed() for _ in range(5)] == [False] * 5
    assert settings.get("security_profile") == 3


async def test_renewal_is_asked_for_ahead_of_expiry_and_again_a_day_later(tmp_path):
    clock = ManualClock(wall_start=NOW)
    settings = _settings()
    security = Security(settings, clock, str(tmp_path), "CP-1")  # type: ignore[arg-type]
    root = Ca.root("CSMS root", start=NOW - 3600, days=365)
    await security.install_root(RootKind.CSMS, pem(root.certificate))
    assert await security.accept_certificate(root.sign_csr(await security.signing_request(), days=60))
    wanted: list[float] = []
    security.renewal_listeners.append(lambda: wanted.append(clock.time()))
    await security.check_expiry()
    assert wanted == []  # 60 days left, renewal 30 days ahead
    clock.advance(31 * DAY)
    await security.check_expiry()
    await security.check_expiry()
    assert len(wanted) == 1  # asked once; not again at once
    clock.advance(RENEWAL_RETRY_S)
    await security.check_expiry()
    assert len(wanted) == 2


def test_a_start_is_logged_at_info_and_an_attack_as_a_warning(caplog):
    caplog.set_level("INFO", logger="chargepoint.core.security.security_log")
    log = SecurityLog(lambda: NOW)
    log.record(SecurityEvent.STARTUP_OF_THE_DEVICE)
    log.record(SecurityEvent.INVALID_CSMS_CERTIFICATE, "expired")
    levels = {r.getMessage(): r.levelname for r in caplog.records}
    assert levels == {"security event startup_of_the_device": "INFO",
                      "security event invalid_csms_certificate: expired": "WARNING"}
    assert [e.kind for e in log._memory] == [SecurityEvent.STARTUP_OF_THE_DEVICE,
                                             SecurityEvent.INVALID_CSMS_CERTIFICATE], "both kept for the CSMS"
