"""The link to the CSMS: connect, authenticate, keep alive, reconnect.

The ``ocpp`` library has no reconnect; this module owns it. A connection that
closes, fails to open, or goes silent (no pong within the ping timeout, or the
session reports CALLs left unanswered) is replaced after an exponential backoff
with jitter, so a fleet of stations does not reconnect in lockstep after a CSMS
outage. What happens on an open connection is the protocol adapter's business.

Security profiles (OCPP 1.6 security whitepaper): 0 no authentication, 1 HTTP
Basic auth over ws://, 2 Basic auth over TLS with the CSMS's certificate and
host name checked, 3 TLS with the station's client certificate (no Basic auth)
and only the whitepaper's cipher suites. The CSMS's certificate must lead to
an installed CSMS root certificate (or, before the CSMS has installed one, to
``ca_bundle`` or the system's CA store). The Basic password and the client
certificate are read at every connect, so a key or a certificate the CSMS
changed is used from the next connection on.

A connection that fails for a reason the security log records (the CSMS
refused our credentials, its certificate is not trusted, no common TLS
version or cipher suite) is reported through ``on_failure`` with the
exception and the event (``security_event``). A TLS server that refuses a
handshake often just resets the connection, without saying why; then a
diagnostic handshake (``tls_probe``: any version, any cipher suite, nothing
verified, nothing sent) finds out what the server would have spoken: a TLS
version below 1.2, or under TLS 1.2 a suite outside the whitepaper's; if it
would speak what we offer, a profile 3 connection was refused for our
certificate.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlparse

import websockets
from websockets.asyncio.client import ClientConnection, connect

from chargepoint.core.pki import CertificateError, check_valid_at, parse_pem_chain
from chargepoint.core.security_log import SecurityEvent

log = logging.getLogger(__name__)


#: How often the keepalive looks at the ping interval setting (seconds).
KEEPALIVE_CHECK_S = 0.25


class Session(Protocol):
    async def run(self) -> None: ...


class Pinger(Protocol):
    """What the keepalive needs of a connection: a ping whose pong can be awaited."""

    async def ping(self) -> Awaitable[object]: ...


SessionFactory = Callable[[ClientConnection], Session]
#: Told of a failed connection attempt: the exception and the security event it is (or None).
FailureHook = Callable[[BaseException, "tuple[SecurityEvent, str] | None"], None]


@dataclass(frozen=True)
class LinkSettings:
    url: str
    identity: str
    subprotocol: str
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 300.0
    ping_timeout_s: float = 20.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    ca_bundle: str = ""


@dataclass(frozen=True)
class Credentials:
    """What the station presents at connect time."""

    security_profile: int
    authorization_key: str  # the password's octets in hex, as OCPP carries it
    #: Profile 3: the file holding the station's certificate chain and its key.
    client_certificate: str = ""
    #: The installed CSMS root certificates (PEM); "" before the CSMS installed any.
    csms_roots: str = ""
    #: Wall-clock now (the station's clock), to refuse presenting an expired certificate.
    now: float | None = None


#: The OCPP security whitepaper's TLS 1.2 cipher suites (OpenSSL names), the only ones offered
#: with profile 3: ECDHE-ECDSA with AES-GCM for EC keys, RSA key exchange with AES-GCM for RSA keys.
WHITEPAPER_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                      "AES128-GCM-SHA256:AES256-GCM-SHA384")


class StationCertificateError(ConnectionError):
    """Profile 3 without a usable certificate of our own: nothing to present."""


def endpoint(url: str, identity: str) -> str:
    """The CSMS URL with the charge point identity as the last path segment."""
    return url.rstrip("/") + "/" + identity


def basic_auth_header(identity: str, authorization_key: str) -> str:
    """HTTP Basic credentials: the identity and the authorization key's octets."""
    secret = identity.encode() + b":" + bytes.fromhex(authorization_key)
    return "Basic " + base64.b64encode(secret).decode("ascii")


def tls_context(ca_bundle: str, credentials: Credentials | None = None) -> ssl.SSLContext:
    """Verify the CSMS's certificate and host name against the installed CSMS roots, else
    ``ca_bundle``, else the system's CA store; TLS 1.2 at least, as the whitepaper asks.

    Profile 3 adds the station's certificate and key, and offers the whitepaper's
    cipher suites only (TLS 1.3, when both sides have it, has its own fixed set of
    AEAD suites, which Python cannot narrow further).
    """
    creds = credentials or Credentials(0, "")
    if creds.csms_roots:
        context = ssl.create_default_context(cadata=creds.csms_roots)
    else:
        context = ssl.create_default_context(cafile=ca_bundle or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if creds.security_profile >= 3:
        context.set_ciphers(WHITEPAPER_CIPHERS)
        _check_own_certificate(creds)
        context.load_cert_chain(creds.client_certificate)
    return context


def _check_own_certificate(creds: Credentials) -> None:
    """StationCertificateError unless the station has a certificate that is valid now."""
    if not creds.client_certificate:
        raise StationCertificateError("security profile 3 but the station has no certificate and key")
    try:
        with open(creds.client_certificate, "rb") as f:
            certificate = parse_pem_chain(f.read())[0]
        if creds.now is not None:
            check_valid_at(certificate, creds.now)
    except (OSError, CertificateError) as exc:
        raise StationCertificateError(f"the station's certificate cannot be used: {exc}") from None


class Backoff:
    """Exponential backoff with full jitter between ``low`` and ``high``."""

    def __init__(self, low: float, high: float, rng: random.Random | None = None) -> None:
        self.low = low
        self.high = high
        self.attempt = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.high, self.low * (2 ** self.attempt))
        self.attempt += 1
        return self.rng.uniform(self.low, max(self.low, ceiling))

    def reset(self) -> None:
        self.attempt = 0


class Link:
    """Keeps one WebSocket connection to the CSMS open, for as long as it runs."""

    def __init__(self, settings: LinkSettings, session_factory: SessionFactory,
                 credentials: Callable[[], Credentials],
                 ping_interval: Callable[[], float] = lambda: 20.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 monotonic: Callable[[], float] | None = None,
                 on_failure: FailureHook | None = None,
                 on_connected: Callable[[], None] | None = None) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.credentials = credentials
        #: Read before every ping, so a changed ping interval applies at once.
        self.ping_interval = ping_interval
        #: Waits of the link (backoff, keepalive checks, ping timeout) and the clock the
        #: keepalive reads: injectable together, so tests can run the keepalive in
        #: simulated time. None: the event loop's clock, the one ``asyncio.sleep`` runs on.
        self.sleep = sleep
        self.monotonic = monotonic
        #: Told of every failed connection attempt (the security log, the profile fallback).
        self.on_failure = on_failure
        #: Told when a connection is up and its subprotocol agreed.
        self.on_connected = on_connected
        self.backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self.connected = asyncio.Event()
        self.connections = 0
        self._ws: ClientConnection | None = None

    async def run(self) -> None:
        url = endpoint(self.settings.url, self.settings.identity)
        while True:
            try:
                await self._serve_once(url)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                log.warning("connection to %s lost: %s", url, _describe(exc))
                if self.on_failure is not None and not self.connected.is_set():
                    self.on_failure(exc, await self._security_event(exc))
            finally:
                self.connected.clear()
                self._ws = None
            delay = self.backoff.next_delay()
            log.info("reconnecting in %.1f s", delay)
            await self.sleep(delay)

    async def _connect_options(self) -> dict[str, object]:
        """What ``connect`` is given: subprotocol, credentials, TLS and timeouts.

        The TLS context is built in a worker thread: loading the CA bundle is
        blocking file I/O and parsing, which must not stall the event loop that
        also runs the station (card taps, meter polling, the OCPP session).
        """
        s = self.settings
        creds = self.credentials()
        headers = []
        if creds.security_profile in (1, 2):  # profile 3 authenticates with the client certificate
            headers.append(("Authorization", basic_auth_header(s.identity, creds.authorization_key)))
        secure = s.url.startswith("wss://")
        context = await asyncio.to_thread(tls_context, s.ca_bundle, creds) if secure else None
        return {
            "subprotocols": [s.subprotocol],
            "additional_headers": headers or None,
            "ssl": context,
            "proxy": None,
            "open_timeout": s.open_timeout_s,
            "close_timeout": s.close_timeout_s,
            # Pings are ours (keepalive below), so their interval can change live.
            "ping_interval": None,
        }

    async def _serve_once(self, url: str) -> None:
        s = self.settings
        async with connect(url, **await self._connect_options()) as ws:  # type: ignore[arg-type]
            if ws.subprotocol != s.subprotocol:
                raise ConnectionError(
                    f"CSMS did not agree to subprotocol {s.subprotocol} (got {ws.subprotocol!r})")
            log.info("connected to %s (%s)", url, ws.subprotocol)
            self._ws = ws
            self.connections += 1
            self.backoff.reset()
            self.connected.set()
            if self.on_connected is not None:
                self.on_connected()
            session = asyncio.ensure_future(self.session_factory(ws).run())
            keepalive = asyncio.ensure_future(self._keepalive(ws))
            try:
                done, _ = await asyncio.wait({session, keepalive}, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
            finally:
                for task in (session, keepalive):
                    task.cancel()
                await asyncio.gather(session, keepalive, return_exceptions=True)

    async def _security_event(self, exc: BaseException) -> tuple[SecurityEvent, str] | None:
        """The security event a failed attempt is: from the error, or from a diagnostic handshake."""
        event = security_event(exc)
        if event is not None or not self.settings.url.startswith("wss://") or not _cut_off(exc):
            return event
        url = urlparse(self.settings.url)
        spoken = await asyncio.to_thread(tls_probe, url.hostname or "", url.port or 443,
                                         self.settings.open_timeout_s)
        if spoken is None:
            return None
        version, cipher = spoken
        if version in ("SSLv3", "TLSv1", "TLSv1.1"):
            return SecurityEvent.INVALID_TLS_VERSION, f"the CSMS speaks {version}"
        profile = self.credentials().security_profile
        if profile >= 3 and version == "TLSv1.2" and cipher not in WHITEPAPER_CIPHERS.split(":"):
            return SecurityEvent.INVALID_TLS_CIPHER_SUITE, f"the CSMS offers {cipher}"
        if profile >= 3:
            return SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS, "the CSMS closed TLS after our certificate"
        return None

    def _now(self) -> float:
        """The keepalive's clock: the injected one, or the event loop's."""
        return self.monotonic() if self.monotonic is not None else asyncio.get_running_loop().time()

    async def _keepalive(self, ws: Pinger) -> None:
        """Ping every ping interval (the setting); no pong in time means a dead link.

        The setting is looked at every quarter second, so a new interval (or
        switching pings off and on) applies at once, not after the old one.
        While it is 0 no ping is sent; once it is on again, the first ping
        comes one interval later.
        """
        last_ping = self._now()
        while True:
            await self.sleep(KEEPALIVE_CHECK_S)
            interval = self.ping_interval()
            if interval <= 0:
                last_ping = self._now()
                continue
            if self._now() - last_ping < interval:
                continue
            last_ping = self._now()
            await self._await_pong(await ws.ping())

    async def _await_pong(self, pong: Awaitable[object]) -> None:
        """Wait at most the ping timeout for ``pong``; raise ConnectionError if none came.

        The pong is looked for every KEEPALIVE_CHECK_S, with ``self.sleep`` on the
        keepalive's clock (a pong noticed a little late costs nothing), so the
        timeout follows the injected clock like every other wait of the keepalive
        and only one wait runs at a time. Neither ``asyncio.timeout`` (the loop's
        clock only) nor ``wait_for`` (can swallow a cancellation on 3.11).
        """
        answer = asyncio.ensure_future(pong)
        deadline = self._now() + self.settings.ping_timeout_s
        try:
            while not answer.done():
                remaining = deadline - self._now()
                if remaining <= 0:
                    raise ConnectionError(
                        f"no pong within {self.settings.ping_timeout_s:g} s: connection is dead")
                await self.sleep(min(KEEPALIVE_CHECK_S, remaining))
        finally:
            answer.cancel()  # nothing if the pong came; otherwise it is not waited for any more
        answer.result()  # a connection closed meanwhile raises here

    async def reconnect(self) -> None:
        """Close the current connection so the next one uses new settings."""
        if self._ws is not None:
            await self._ws.close(1000, "reconnecting with new settings")


#: OpenSSL reasons: no TLS version both sides accept.
_VERSION_REASONS = {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"}
#: ... no cipher suite both sides accept.
_CIPHER_REASONS = {"NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "SSLV3_ALERT_HANDSHAKE_FAILURE",
                   "NO_SUITABLE_SIGNATURE_ALGORITHM"}
#: ... the CSMS refused our certificate.
_CLIENT_CERT_REASONS = {"SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA",
                        "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
                        "TLSV13_ALERT_CERTIFICATE_REQUIRED", "TLSV1_ALERT_ACCESS_DENIED",
                        "SSLV3_ALERT_CERTIFICATE_REVOKED"}
#: OpenSSL verify codes of a certificate that does not name the host connected to.
_NAME_MISMATCH = {62, 64}


def security_event(exc: BaseException) -> tuple[SecurityEvent, str] | None:
    """The security event a failed connection attempt is, with its detail; None for a plain failure."""
    if isinstance(exc, websockets.exceptions.InvalidStatus) and exc.response.status_code in (401, 403):
        return SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS, f"HTTP {exc.response.status_code} at connect"
    if isinstance(exc, StationCertificateError):
        return SecurityEvent.INVALID_STATION_CERTIFICATE, str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        kind = SecurityEvent.CSMS_FAILED_TO_AUTHENTICATE if exc.verify_code in _NAME_MISMATCH \
            else SecurityEvent.INVALID_CSMS_CERTIFICATE
        return kind, str(exc.verify_message)
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if reason in _VERSION_REASONS:
            return SecurityEvent.INVALID_TLS_VERSION, reason
        if reason in _CIPHER_REASONS:
            return SecurityEvent.INVALID_TLS_CIPHER_SUITE, reason
        if reason in _CLIENT_CERT_REASONS:
            return SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS, f"TLS alert {reason}"
    return None


def _cut_off(exc: BaseException) -> bool:
    """Whether a connection attempt ended by the server closing during the TLS or HTTP handshake."""
    while exc is not None:
        if isinstance(exc, ConnectionResetError | EOFError | ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def tls_probe(host: str, port: int, timeout: float) -> tuple[str, str] | None:
    """(TLS version, cipher suite) the server at host:port negotiates when anything is allowed;
    None if even that fails. Nothing is verified and no byte of application data is sent."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            version, cipher = tls.version(), tls.cipher()
    except (OSError, ssl.SSLError):
        return None
    return (version or "", cipher[0] if cipher else "")


def _describe(exc: BaseException) -> str:
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        return f"refused by the CSMS with HTTP {exc.response.status_code}"
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        return f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
