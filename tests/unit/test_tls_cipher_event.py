"""A CSMS that offers only cipher suites the station refuses is reported as InvalidTLSCipherSuite.

Such a server often just resets the handshake (an asyncio TLS server does), so
the station learns what it speaks from its diagnostic handshake; a suite the
station does not offer is the whitepaper's InvalidTLSCipherSuite with any
security profile, not only with profile 3. A real TLS server on loopback,
limited to TLS 1.2 with a SHA-1 suite that Python's client never offers.
"""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path
from typing import Any

import websockets

from chargepoint.connection import Credentials, Link, LinkSettings
from chargepoint.connection.tls import offered_suites, probe_event
from chargepoint.core.security.security_log import SecurityEvent
from tests.pki import Ca, pem, server_context

REFUSED_SUITE = "ECDHE-ECDSA-AES128-SHA"


async def test_a_csms_with_no_suite_the_station_accepts_is_an_invalid_tls_cipher_suite(
        tmp_path: Path) -> None:
    assert REFUSED_SUITE not in offered_suites(2)
    authority = Ca.root("CSMS CA")
    context = server_context(*authority.server(tmp_path))
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(REFUSED_SUITE)

    async def never(ws: Any) -> None:
        raise AssertionError("no handshake should complete")

    reported: list[tuple[SecurityEvent, str] | None] = []
    failed = asyncio.Event()

    def on_failure(exc: BaseException, event: tuple[SecurityEvent, str] | None) -> None:
        reported.append(event)
        failed.set()

    async with websockets.serve(never, "127.0.0.1", 0, ssl=context) as server:
        port = server.sockets[0].getsockname()[1]  # type: ignore[index]
        link = Link(LinkSettings(url=f"wss://127.0.0.1:{port}", identity="CP-TLS", subprotocol="ocpp1.6",
                                 reconnect_min_s=3600, reconnect_max_s=3600, open_timeout_s=5),
                    lambda ws: None,  # type: ignore[arg-type,return-value]
                    credentials=lambda: Credentials(2, "00" * 16, csms_roots=pem(authority.certificate)),
                    on_failure=on_failure)
        task = asyncio.ensure_future(link.run())
        try:
            await asyncio.wait_for(failed.wait(), 10)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert reported == [(SecurityEvent.INVALID_TLS_CIPHER_SUITE,
                         f"the CSMS offers {REFUSED_SUITE}, which the station does not")]


def test_what_the_diagnostic_handshake_found_is_named_for_each_profile() -> None:
    assert probe_event("TLSv1.1", "AES128-SHA", 2) == (SecurityEvent.INVALID_TLS_VERSION,
                                                       "the CSMS speaks TLSv1.1")
    assert probe_event("TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", 2) is None
    whitepaper_only = probe_event("TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305", 3)
    assert whitepaper_only is not None and whitepaper_only[0] is SecurityEvent.INVALID_TLS_CIPHER_SUITE
    certificate_refused = probe_event("TLSv1.3", "TLS_AES_128_GCM_SHA256", 3)
    assert certificate_refused is not None
    assert certificate_refused[0] is SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS
