"""The station's signing requests left without a certificate: how long it waits, how often it asks again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from chargepoint.config import parse
from chargepoint.core.security.certificates import RootKind
from chargepoint.core.security.services import Security
from chargepoint.core.settings import Settings
from hal.clock import ManualClock
from tests.pki import Ca, pem

NOW = time.time()


def _security(tmp_path: Path, clock: ManualClock) -> Security:
    settings = Settings(parse({"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://csms.example"}}))
    return Security(settings, clock, str(tmp_path), "CP-1")  # type: ignore[arg-type]


def test_the_wait_doubles_and_the_repeats_follow_the_settings(tmp_path: Path) -> None:
    security = _security(tmp_path, ManualClock(wall_start=NOW))
    assert [security.signing_wait(n) for n in (1, 2, 3)] == [60.0, 120.0, 240.0]  # defaults: 60 s, 3 times
    assert [security.may_repeat_signing(n) for n in (1, 2, 3, 4)] == [True, True, True, False]
    security.settings.set("cert_signing_wait_minimum_s", "5")
    security.settings.set("cert_signing_repeat_times", "0")
    assert security.signing_wait(2) == 10.0 and not security.may_repeat_signing(1)


async def test_the_wait_ends_when_the_certificate_comes_or_its_time_is_up(tmp_path: Path) -> None:
    clock = ManualClock(wall_start=NOW)
    security = _security(tmp_path, clock)
    root = Ca.root("CSMS root", start=NOW - 3600, days=365)
    await security.install_root(RootKind.CSMS, pem(root.certificate))
    csr = await security.signing_request()
    waiting = asyncio.ensure_future(security.certificate_within(60))
    await asyncio.sleep(0.01)  # the wait has begun
    clock.advance(59)
    await asyncio.sleep(0.01)
    assert not waiting.done()
    clock.advance(1)
    assert await waiting is False  # no certificate within the wait
    waiting = asyncio.ensure_future(security.certificate_within(60))
    await asyncio.sleep(0.01)
    assert await security.accept_certificate(root.sign_csr(csr, days=60))
    assert await asyncio.wait_for(waiting, 1) is True  # at once, not at the end of the wait
    await security.signing_request()
    assert await asyncio.wait_for(asyncio.ensure_future(_advance_then(clock, security)), 1) is False


async def _advance_then(clock: ManualClock, security: Security) -> bool:
    """A new request forgets the certificate of the one before: its own wait runs out."""
    waiting = asyncio.ensure_future(security.certificate_within(30))
    await asyncio.sleep(0.01)
    clock.advance(30)
    return await waiting
