"""What the link offers with security profile 3, and how it names a refused connection."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import websockets
from websockets.datastructures import Headers
from websockets.http11 import Response

from chargepoint.connection import (
    WHITEPAPER_CIPHERS,
    Credentials,
    Link,
    LinkSettings,
    Session,
    StationCertificateError,
    security_event,
    tls_context,
)
from chargepoint.core.security.certificates import CertificateStore, RootKind
from chargepoint.core.security.security_log import SecurityEvent
from tests.pki import DAY, Ca, pem

NOW = time.time()


def _pair(tmp_path: Path, **kw: float) -> tuple[CertificateStore, Ca]:
    root = Ca.root("CSMS CA", days=365, start=NOW - 100 * DAY)
    store = CertificateStore(tmp_path, lambda: NOW - 50 * DAY)  # accepted back then
    store.install(RootKind.CSMS, pem(root.certificate), 20)
    assert store.accept_signed(root.sign_csr(store.new_signing_request("CP-1", "O"), **kw), 10_000) is None
    return store, root


def test_profile_3_offers_the_whitepaper_suites_and_the_stations_certificate(tmp_path):
    store, root = _pair(tmp_path, start=NOW - 60 * DAY, days=365)
    creds = Credentials(
        3, "", client_certificate=str(store.pair_path), csms_roots=pem(root.certificate), now=NOW
    )
    context = tls_context("", creds)
    tls12 = {c["name"] for c in context.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == set(WHITEPAPER_CIPHERS.split(":"))
    assert context.minimum_version.name == "TLSv1_2"
    # Profile 2 keeps the default TLS 1.2 suites (what existing installations connect with).
    default = tls_context("", Credentials(2, "", csms_roots=pem(root.certificate))).get_ciphers()
    assert {c["name"] for c in default if c["protocol"] == "TLSv1.2"} - tls12


@pytest.mark.parametrize("case", ["expired", "missing"])
def test_profile_3_without_a_usable_certificate_refuses_to_connect_and_names_the_event(tmp_path, case):
    if case == "expired":
        store, _ = _pair(tmp_path, start=NOW - 60 * DAY, days=30)
        path = str(store.pair_path)
    else:
        path = str(tmp_path / "none.pem")
    with pytest.raises(StationCertificateError) as caught:
        tls_context("", Credentials(3, "", client_certificate=path, now=NOW))
    assert security_event(caught.value)[0] is SecurityEvent.INVALID_STATION_CERTIFICATE  # type: ignore[index]


async def test_profile_3_sends_no_password():
    def no_session(ws: object) -> Session:
        raise AssertionError("no connection is made here")

    link = Link(
        LinkSettings("ws://csms.example/ocpp", "CP-1", "ocpp1.6"),
        no_session,
        credentials=lambda: Credentials(3, "00" * 16),
    )
    assert (await link._connect_options())["additional_headers"] is None
    link.credentials = lambda: Credentials(2, "00" * 16)
    assert (await link._connect_options())["additional_headers"] is not None


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_handshake_is_a_failed_authentication(status):
    refused = websockets.exceptions.InvalidStatus(Response(status, "Unauthorized", Headers()))
    assert security_event(refused) == (
        SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS,
        f"HTTP {status} at connect",
    )
    assert security_event(websockets.exceptions.InvalidStatus(Response(500, "Oops", Headers()))) is None
    assert security_event(ConnectionRefusedError()) is None
