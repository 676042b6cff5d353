"""The link builds its TLS context off the event loop.

``tls_context`` reads and parses the CA bundle: blocking file I/O that would
stall everything else on the loop (the station, the OCPP session) while it
runs, on an SD card possibly for long. Connecting must therefore build it in a
worker thread. Whether the context then verifies the CSMS properly is shown
against real TLS servers in tests/integration/test_v16_security.py.
"""

from __future__ import annotations

import ssl
import threading

import pytest

from chargepoint.connection import Credentials, Link, LinkSettings, Session
from chargepoint.connection import link as connection


def make_link(url: str) -> Link:
    settings = LinkSettings(url=url, identity="CP-UNIT", subprotocol="ocpp1.6", ca_bundle="")

    def no_session(ws: object) -> Session:
        raise AssertionError("no connection is made here")

    return Link(settings, no_session, credentials=lambda: Credentials(0, ""))


class RecordingTlsContext:
    """Stands in for ``tls_context``: notes the thread it runs in and the context it made."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.made: list[ssl.SSLContext] = []
        self._real = connection.tls_context

    def __call__(self, ca_bundle: str, credentials: object = None) -> ssl.SSLContext:
        self.threads.append(threading.current_thread())
        self.made.append(self._real(ca_bundle, credentials))
        return self.made[-1]


@pytest.fixture
def recording(monkeypatch: pytest.MonkeyPatch) -> RecordingTlsContext:
    recorder = RecordingTlsContext()
    monkeypatch.setattr(connection, "tls_context", recorder)
    return recorder


async def test_the_tls_context_is_built_in_a_worker_thread(recording: RecordingTlsContext) -> None:
    loop_thread = threading.current_thread()
    options = await make_link("wss://csms.example/ocpp")._connect_options()
    assert len(recording.threads) == 1
    assert recording.threads[0] is not loop_thread, "the CA bundle was read on the event loop"
    assert options["ssl"] is recording.made[0]


async def test_a_plain_connection_builds_no_tls_context(recording: RecordingTlsContext) -> None:
    options = await make_link("ws://csms.example/ocpp")._connect_options()
    assert options["ssl"] is None
    assert recording.threads == []
