"""The link to the CSMS (see the package's doc): connect, authenticate, keep alive, reconnect."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import Protocol
from urllib.parse import urlparse

import websockets
from websockets.asyncio.client import ClientConnection, connect

from chargepoint.config.csms_url import endpoint
from chargepoint.connection.settings import Backoff, LinkSettings, NoCommonVersion, Outage, basic_auth_header
from chargepoint.connection.tls import (
    Credentials,
    closed_in_handshake,
    probe_event,
    security_event,
    tls_context,
    tls_probe,
)
from chargepoint.core.security.security_log import SecurityEvent

#: The link's lines keep the package's name: what a technician greps for in the journal.
log = logging.getLogger("chargepoint.connection")


#: How often the keepalive looks at the ping interval setting (seconds).
KEEPALIVE_CHECK_S = 0.25
#: Longest frame read from the CSMS (bytes). The station handles frames up to 1 MiB (the OCPP
#: layer's limit, BytesPerMessage in 2.0.1); one between that and this is still read, so that
#: a CALL in it can be refused with an answer rather than by a closed connection, which a CSMS
#: meets by sending the same CALL again after reconnecting. A longer frame closes the
#: connection with 1009 (message too big).
READ_MAX_BYTES = 8 << 20


class Session(Protocol):
    async def run(self) -> None: ...


class Pinger(Protocol):
    """What the keepalive needs of a connection: a ping whose pong can be awaited."""

    async def ping(self) -> Awaitable[object]: ...


SessionFactory = Callable[[ClientConnection], Session]
#: Told of a failed connection attempt: the exception and the security event it is (or None).
FailureHook = Callable[[BaseException, "tuple[SecurityEvent, str] | None"], None]


class Link:
    """Keeps one WebSocket connection to the CSMS open, for as long as it runs."""

    def __init__(self, settings: LinkSettings, session_factory: SessionFactory,
                 credentials: Callable[[], Credentials],
                 ping_interval: Callable[[], float] = lambda: 20.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 monotonic: Callable[[], float] | None = None,
                 on_failure: FailureHook | None = None,
                 on_connected: Callable[[], None] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
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
        #: The wall clock of the outage record (the network's time is real, whatever the station's).
        self.wall = wall
        self.backoff = Backoff(settings.reconnect_min_s, settings.reconnect_max_s)
        self.connected = asyncio.Event()
        self.connections = 0
        self.outage = Outage()
        self._ws: ClientConnection | None = None
        #: Set when the current attempt got a connection (a later failure is a loss, not a retry).
        self._got_through = False
        #: Set by ``retry_now``: end the wait before the next attempt.
        self._wake = asyncio.Event()
        self._skip_wait = False
        #: Why the station itself closed the connection (new settings, an operator's retry), if it did.
        self._closing: str | None = None
        #: Set by ``stop``: the close code and reason; the link connects no more.
        self._stopping: tuple[int, str] | None = None

    async def run(self) -> None:
        url = endpoint(self.settings.url, self.settings.identity)
        while not self._stopping:
            self._got_through = False
            self._closing = None
            error = "closed by the CSMS"
            try:
                await self._serve_once(url)
            except asyncio.CancelledError:
                raise
            except NoCommonVersion as exc:
                error = f"refused the CSMS: {exc}"
            except Exception as exc:  # noqa: BLE001 - any failure means: reconnect
                error = _describe(exc, self.settings.offered)
                if self.on_failure is not None and not self.connected.is_set():
                    self.on_failure(exc, await self._security_event(exc))
            finally:
                self.connected.clear()
                self._ws = None
            if self._stopping:
                if self._got_through:
                    log.info("connection to %s closed: %s", url, self._closing)
                return
            delay = 0.0 if self._skip_wait else self.backoff.next_delay()
            self._skip_wait = False
            self._record_failure(url, error, delay)
            await self._wait(delay)

    def _record_failure(self, url: str, error: str, delay: float) -> None:
        """Log the failure as what it is (a loss, a first failure, a retry) and keep the record."""
        o = self.outage
        when = f"next attempt in {delay:.1f} s"
        if self._got_through and self._closing is not None:  # not a failure: the station closed it
            self.outage = o = Outage(since=self.wall())
            log.info("connection to %s closed: %s; %s", url, self._closing, when)
        elif self._got_through or o.since is None:
            lost = self._got_through
            self.outage = o = Outage(since=self.wall(), last_error=error, repeats=1,
                                     attempts=0 if lost else 1)
            log.warning("%s %s: %s; %s", "connection to" if lost else "cannot connect to",
                        url + (" lost" if lost else ""), error, when)
        else:
            o.attempts += 1
            if error == o.last_error:
                o.repeats += 1
                log.info("reconnect attempt %d failed (the same error, %d times in a row); %s",
                         o.attempts, o.repeats, when)
            else:
                o.last_error, o.repeats = error, 1
                log.warning("reconnect attempt %d failed: %s; %s", o.attempts, error, when)
        o.next_attempt = self._now() + delay

    async def _wait(self, delay: float) -> None:
        """The backoff wait, on the link's clock; ``retry_now`` ends it early."""
        self._wake.clear()
        if delay <= 0:
            return
        sleeper = asyncio.ensure_future(self.sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, waker):
                task.cancel()
            await asyncio.gather(sleeper, waker, return_exceptions=True)
        self._skip_wait = False  # a retry asked for during the wait has had its effect
        if self.outage.next_attempt is not None:
            self.outage.next_attempt = self._now()

    def next_attempt_in(self) -> float | None:
        """Seconds until the next attempt to connect, while offline; None while connected."""
        due = self.outage.next_attempt
        return None if due is None or self.connected.is_set() else max(0.0, due - self._now())

    async def retry_now(self) -> bool:
        """Connect again now: end the wait of an offline link, or replace a connected one.

        True if the link was connected (and is being replaced).
        """
        self._skip_wait = True
        self._wake.set()
        ws = self._ws
        if ws is not None:
            self._closing = "a reconnect was asked for"
            await ws.close(1000, "reconnect asked for by the station's operator")
            return True
        return False

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
            "subprotocols": list(s.offered),
            "additional_headers": headers or None,
            "ssl": context,
            "proxy": None,
            "open_timeout": s.open_timeout_s,
            "close_timeout": s.close_timeout_s,
            # Pings are ours (keepalive below), so their interval can change live.
            "ping_interval": None,
            "max_size": READ_MAX_BYTES,
        }

    async def _serve_once(self, url: str) -> None:
        s = self.settings
        async with connect(url, **await self._connect_options()) as ws:  # type: ignore[arg-type]
            if ws.subprotocol not in s.offered:
                raise NoCommonVersion(
                    f"it selected {'no subprotocol' if ws.subprotocol is None else repr(ws.subprotocol)}, "
                    f"none of the offered OCPP versions ({', '.join(s.offered)})")
            outage = self.outage
            if outage.since is None:
                log.info("connected to %s (%s)", url, ws.subprotocol)
            else:
                log.info("connected to %s (%s) again after %d failed attempt(s), offline %.0f s", url,
                         ws.subprotocol, outage.attempts, max(0.0, self.wall() - outage.since))
            self.outage = Outage()
            self._got_through = True
            self._skip_wait = False
            self._ws = ws
            self.connections += 1
            self.backoff.reset()
            if self._stopping is not None:  # stopped while this connection was opening
                self._closing = self._stopping[1]
                await ws.close(*self._stopping)
                return
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
        if event is not None or not self.settings.url.startswith("wss://") or not closed_in_handshake(exc):
            return event
        url = urlparse(self.settings.url)
        spoken = await asyncio.to_thread(tls_probe, url.hostname or "", url.port or 443,
                                         self.settings.open_timeout_s)
        if spoken is None:
            return None
        return probe_event(*spoken, self.credentials().security_profile)

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

    async def stop(self, code: int, reason: str) -> None:
        """Close the connection with ``code`` and connect no more: the station is going away.

        Cancelling the link instead would leave websockets to close with 1011
        (internal error), which a CSMS logs as a fault of the station: a stop or a
        reset it asked for is 1000 (normal closure), a daemon going down 1001.
        """
        self._stopping = (code, reason)
        self._wake.set()
        ws = self._ws
        if ws is not None:
            self._closing = reason
            await ws.close(code, reason)
        # A connection still opening closes as soon as it is up (``_serve_once``).

    async def reconnect(self) -> None:
        """Close the current connection so the next one uses new settings."""
        if self._ws is not None:
            self._closing = "reconnecting with new settings"
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
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
