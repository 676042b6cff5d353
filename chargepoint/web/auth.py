"""Logins to the dashboard: sessions with a CSRF token each, and a login throttle per client and pool.

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

    def end_all(self) -> None:
        """Everybody logs in again (the password changed)."""
        self._sessions.clear()

    def __len__(self) -> int:
        return len(self._sessions)

    def _expire(self) -> None:
        now = self.clock.monotonic()
        for token in [t for t, s in self._sessions.items() if now - s.last_used > self.idle_s]:
            del self._sessions[token]


def csrf_ok(session: Session, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf.encode(), presented.encode())  # type: ignore[union-attr]


#: Failed logins all clients of one pool together may make within ``FAILURE_WINDOW_S``: a guesser
#: with many addresses meets this limit. Loopback clients (the owner on the station, an SSH tunnel)
#: are a pool of their own, so a flood from the network never locks them out.
MAX_FAILURES_ALL = 30
#: The pools: clients on the network, and clients on this machine.
REMOTE, LOOPBACK = "remote", "loopback"


@dataclass(frozen=True)
class Attempt:
    """A login being checked: counted as a failure until it succeeds."""

    client: str
    pool: str
    at: float


@dataclass
class _Window:
    """Failure times within the window, oldest first; at most ``limit`` kept."""

    limit: int
    times: deque[float] = field(default_factory=deque)

    def wait(self, now: float, window_s: float) -> float:
        while self.times and now - self.times[0] >= window_s:
            self.times.popleft()
        if len(self.times) < self.limit:
            return 0.0
        return self.times[0] + window_s - now

    def discard(self, at: float) -> None:
        try:
            self.times.remove(at)
        except ValueError:
            pass  # already left the window or cleared


class LoginThrottle:
    """At most ``max_failures`` failed logins per client, and ``max_failures_all`` per pool, in ``window_s``.

    Each attempt is counted as a failure *before* its password is checked
    (``reserve``), so guesses sent in parallel cannot all pass the check while
    the first ones still wait for scrypt: once a client's (or its pool's)
    budget is reserved, further attempts are refused at once, without the
    scrypt cost, until the oldest failure leaves the window. A success
    releases its own reservation and clears the client's failures.
    """

    def __init__(self, clock: Clock, max_failures: int = MAX_FAILURES, window_s: float = FAILURE_WINDOW_S,
                 max_clients: int = MAX_CLIENTS, max_failures_all: int = MAX_FAILURES_ALL) -> None:
        self.clock = clock
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clients: dict[str, _Window] = {}
        self._pools = {pool: _Window(max_failures_all) for pool in (REMOTE, LOOPBACK)}

    def retry_after(self, client: str, pool: str = REMOTE) -> float:
        """Seconds until ``client`` may try again; 0 when it may now."""
        now = self.clock.monotonic()
        waits = [self._pools[pool].wait(now, self.window_s)]
        entry = self._clients.get(client)
        if entry is not None:
            waits.append(entry.wait(now, self.window_s))
            if not entry.times:
                del self._clients[client]
        return max(waits)

    def reserve(self, client: str, pool: str = REMOTE) -> Attempt | None:
        """Count an attempt as failed before it is checked; None if the client or pool has no budget left."""
        if self.retry_after(client, pool) > 0:
            return None
        attempt = Attempt(client, pool, self.clock.monotonic())
        entry = self._clients.pop(client, None) or _Window(self.max_failures)
        self._clients[client] = entry  # re-inserted: the dict's order is least recent first
        entry.times.append(attempt.at)
        self._pools[pool].times.append(attempt.at)
        while len(self._clients) > self.max_clients:
            del self._clients[next(iter(self._clients))]
        return attempt

    def succeeded(self, attempt: Attempt) -> None:
        self._pools[attempt.pool].discard(attempt.at)
        self._clients.pop(attempt.client, None)

    def release(self, attempt: Attempt) -> None:
        """The attempt was not a guess after all (no password set, an unreadable file): uncount it."""
        self._pools[attempt.pool].discard(attempt.at)
        entry = self._clients.get(attempt.client)
        if entry is not None:
            entry.discard(attempt.at)
