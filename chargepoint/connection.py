"""The link to the CSMS: connect, authenticate, keep alive, reconnect.

The ``ocpp`` library has no reconnect; this module owns it. A connection that
closes, fails to open, or goes silent (no pong within the ping timeout, or the
session reports CALLs left unanswered) is replaced after an exponential backoff
with jitter, so a fleet of stations does not reconnect in lockstep after a CSMS
outage. What happens on an open connection is the protocol adapter's business.

Security profiles (OCPP 1.6 security whitepaper): 0 no authentication, 1 HTTP
Basic auth over ws://, 2 Basic auth over TLS with the CSMS's certificate and
host name checked. The Basic password is the authorization key's octets, read
at every connect so a key the CSMS changed is used from the next connection on.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect

log = logging.getLogger(__name__)


#: How often the keepalive looks at the ping interval setting (seconds).
KEEPALIVE_CHECK_S = 0.25


class Session(Protocol):
    async def run(self) -> None: ...


class Pinger(Protocol):
    """What the keepalive needs of a connection: a ping whose pong can be awaited."""

    async def ping(self) -> Awaitable[object]: ...


SessionFactory = Callable[[ClientConnection], Session]


class NoCommonVersion(ConnectionError):
    """The CSMS selected none of the subprotocols (OCPP versions) the station offered."""


@dataclass(frozen=True)
class LinkSettings:
    url: str
    identity: str
    #: The subprotocol offered first (the preferred OCPP version).
    subprotocol: str
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 300.0
    ping_timeout_s: float = 20.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    ca_bundle: str = ""
    #: Every subprotocol offered, in order of preference (empty: ``subprotocol`` alone).
    subprotocols: tuple[str, ...] = ()

    @property
    def offered(self) -> tuple[str, ...]:
        return self.subprotocols or (self.subprotocol,)


@dataclass(frozen=True)
class Credentials:
    """What the station presents at connect time."""

    security_profile: int
    authorization_key: str  # the password's octets in hex, as OCPP carries it


def endpoint(url: str, identity: str) -> str:
    """The CSMS URL with the charge point identity as the last path segment."""
    return url.rstrip("/") + "/" + identity


def basic_auth_header(identity: str, authorization_key: str) -> str:
    """HTTP Basic credentials: the identity and the authorization key's octets."""
    secret = identity.encode() + b":" + bytes.fromhex(authorization_key)
    return "Basic " + base64.b64encode(secret).decode("ascii")


def tls_context(ca_bundle: str) -> ssl.SSLContext:
    """Verify the CSMS's certificate and host name against ``ca_bundle`` (or the
    system's CA store when empty); TLS 1.2 at least, as the whitepaper asks."""
    context = ssl.create_default_context(cafile=ca_bundle or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


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
                 monotonic: Callable[[], float] | None = None) -> None:
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
            except NoCommonVersion as exc:
                log.warning("refused the CSMS at %s: %s", url, exc)
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                log.warning("connection to %s lost: %s", url, _describe(exc, self.settings.offered))
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
        if creds.security_profile >= 1:
            headers.append(("Authorization", basic_auth_header(s.identity, creds.authorization_key)))
        secure = s.url.startswith("wss://")
        context = await asyncio.to_thread(tls_context, s.ca_bundle) if secure else None
        return {
            "subprotocols": list(s.offered),
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
            if ws.subprotocol not in s.offered:
                raise NoCommonVersion(
                    f"it selected {'no subprotocol' if ws.subprotocol is None else repr(ws.subprotocol)}, "
                    f"none of the offered OCPP versions ({', '.join(s.offered)})")
            log.info("connected to %s (%s)", url, ws.subprotocol)
            self._ws = ws
            self.connections += 1
            self.backoff.reset()
            self.connected.set()
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


def _describe(exc: BaseException, offered: tuple[str, ...] = ()) -> str:
    if isinstance(exc, websockets.exceptions.InvalidStatus):
        code = exc.response.status_code
        # A server that speaks none of the offered subprotocols refuses the upgrade with 400.
        hint = f" (it may speak none of the offered OCPP versions: {', '.join(offered)})" \
            if code == 400 and offered else ""
        return f"refused by the CSMS with HTTP {code}{hint}"
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        return f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
