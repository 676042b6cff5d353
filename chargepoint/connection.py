"""The link to the CSMS: connect, check the subprotocol, keep alive, reconnect.

The ``ocpp`` library has no reconnect; this module owns it. A connection that
closes, fails to open, or goes silent (no pong within the ping timeout) is
replaced after an exponential backoff with jitter, so a fleet of stations does
not reconnect in lockstep after a CSMS outage. What happens on an open
connection is the protocol adapter's business.
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import websockets
from websockets.asyncio.client import ClientConnection, connect

log = logging.getLogger(__name__)


class Session(Protocol):
    async def run(self) -> None: ...


SessionFactory = Callable[[ClientConnection], Session]


@dataclass(frozen=True)
class LinkSettings:
    url: str
    identity: str
    subprotocol: str
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 300.0
    ping_interval_s: float | None = 20.0
    ping_timeout_s: float | None = 20.0
    open_timeout_s: float = 10.0
    ssl_context: ssl.SSLContext | None = None
    headers: tuple[tuple[str, str], ...] = ()


def endpoint(url: str, identity: str) -> str:
    """The CSMS URL with the charge point identity as the last path segment."""
    return url.rstrip("/") + "/" + identity


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
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self.session_factory = session_factory
        self.sleep = sleep
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
            finally:
                self.connected.clear()
                self._ws = None
            delay = self.backoff.next_delay()
            log.info("reconnecting in %.1f s", delay)
            await self.sleep(delay)

    async def _serve_once(self, url: str) -> None:
        s = self.settings
        async with connect(
            url,
            subprotocols=[s.subprotocol],  # type: ignore[list-item]
            additional_headers=list(s.headers) or None,
            ssl=s.ssl_context,
            proxy=None,
            open_timeout=s.open_timeout_s,
            ping_interval=s.ping_interval_s,
            ping_timeout=s.ping_timeout_s,
        ) as ws:
            if ws.subprotocol != s.subprotocol:
                raise ConnectionError(
                    f"CSMS did not agree to subprotocol {s.subprotocol} (got {ws.subprotocol!r})")
            log.info("connected to %s (%s)", url, ws.subprotocol)
            self._ws = ws
            self.connections += 1
            self.backoff.reset()
            self.connected.set()
            await self.session_factory(ws).run()

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, websockets.exceptions.ConnectionClosed):
        return f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
    if isinstance(exc, asyncio.TimeoutError):
        return "no answer in time"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__

