"""Logins to the dashboard: sessions with a CSRF token each, and a per-client login throttle.

Both keep time on the injected clock (``monotonic``), so expiry and lockout
are tested in simulated time. Everything is in memory: a restarted daemon
forgets its sessions and everybody logs in again, which is the safe way round.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass, field

from hal.clock import Clock

#: A session unused for this long is gone (seconds).
SESSION_IDLE_S = 8 * 3600.0
#: Most sessions held at once; the oldest goes first (a login loop cannot grow memory).
MAX_SESSIONS = 64
#: Failed logins a client may make within ``FAILURE_WINDOW_S`` before it is locked out.
MAX_FAILURES = 5
FAILURE_WINDOW_S = 300.0
#: Clients whose failures are remembered at once; the least recent are forgotten first.
MAX_CLIENTS = 1024


@dataclass
class Session:
    token: str
    csrf: str
    client: str
    last_used: float


class Sessions:
    """Session cookies (random 256-bit tokens) and the CSRF token belonging to each."""

    def __init__(self, clock: Clock, idle_s: float = SESSION_IDLE_S,
                 max_sessions: int = MAX_SESSIONS) -> None:
        self.clock = clock
        self.idle_s = idle_s
        self.max_sessions = max_sessions
        self._sessions: dict[str, Session] = {}

    def create(self, client: str) -> Session:
        self._expire()
        while len(self._sessions) >= self.max_sessions:
            oldest = min(self._sessions.values(), key=lambda s: s.last_used)
            del self._sessions[oldest.token]
        session = Session(secrets.token_urlsafe(32), secrets.token_urlsafe(32), client,
                          self.clock.monotonic())
        self._sessions[session.token] = session
        return session

    def get(self, token: str | None) -> Session | None:
        """The live session of a cookie's token (its idle time starts again), or None."""
        if not token:
            return None
        session = self._sessions.get(token)
        if session is None:
            return None
        now = self.clock.monotonic()
        if now - session.last_used > self.idle_s:
            del self._sessions[token]
            return None
        session.last_used = now
        return session

    def end(self, token: str | None) -> None:
        if token:
            self._sessions.pop(token, None)

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        now = self.clock.monotonic()
        for token in [t for t, s in self._sessions.items() if now - s.last_used > self.idle_s]:
            del self._sessions[token]


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), presented.encode())  # type: ignore[union-attr]


@dataclass
class _Failures:
    times: deque[float] = field(default_factory=deque)


class LoginThrottle:
    """At most ``max_failures`` failed logins per client within ``window_s``.

    A locked-out client is refused before its password is even checked (the
    scrypt cost is not spent on it) until its oldest failure leaves the
    window. A success clears the client's failures.
    """

    def __init__(self, clock: Clock, max_failures: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S,
                 max_clients: int = MAX_CLIENTS) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clients: dict[str, _Failures] = {}

    def retry_after(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it may now."""
        entry = self._clients.get(client)
        if entry is None:
            return 0.0
        now = self.clock.monotonic()
        while entry.times and now - entry.times[0] >= self.window_s:
            entry.times.popleft()
        if not entry.times:
            del self._clients[client]
            return 0.0
        if len(entry.times) < self.max_failures:
            return 0.0
        return entry.times[0] + self.window_s - now

    def failed(self, client: str) -> None:
        entry = self._clients.pop(client, None) or _Failures()
        self._clients[client] = entry  # re-inserted: the dict's order is least recent first
        entry.times.append(self.clock.monotonic())
        while len(entry.times) > self.max_failures:
            entry.times.popleft()
        while len(self._clients) > self.max_clients:
            del self._clients[next(iter(self._clients))]

    def succeeded(self, client: str) -> None:
        self._clients.pop(client, None)
