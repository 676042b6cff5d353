"""The link's keepalive in simulated time: WebSocketPingInterval off, on and shorter; dead links.

That no ping is sent while the interval is 0 can only be shown by letting time
pass. Here it passes on a ManualClock that moves by exactly what the keepalive
sleeps, so a thousand simulated seconds take no wall time, and the times of the
pings are exact whatever the speed of the machine. The fake connection records
the simulated time of every ping and answers with a pong at once, later, or never.
The real-socket side (pings reach a CSMS, the setting changes live) is in
tests/integration/test_v16_robustness.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from chargepoint.connection import KEEPALIVE_CHECK_S, Credentials, Link, LinkSettings, Session
from hal.clock import ManualClock

#: When a test's run of the keepalive ends (simulated seconds).
END_S = 1100.0


class TimeIsUp(Exception):
    """Raised by the clock's sleep when the simulated run is over."""


class SleepingMovesTime(ManualClock):
    """A ManualClock that moves forward by whatever is slept, up to ``end_s``.

    The keepalive is the only sleeper, so time passes exactly as its waits say;
    each sleep also yields once to the event loop so other tasks (a pong on its
    way) get to run in between.
    """

    def __init__(self, end_s: float = END_S) -> None:
        super().__init__()
        self.end_s = end_s

    async def sleep(self, seconds: float) -> None:
        if self.monotonic() + seconds > self.end_s:
            raise TimeIsUp
        self.advance(seconds)
        await asyncio.sleep(0)


class FakeConnection:
    """Records the simulated time of each ping; pongs after ``pong_after_s`` (None: never)."""

    def __init__(self, clock: ManualClock, pong_after_s: float | None = 0.0) -> None:
        self.clock = clock
        self.pong_after_s = pong_after_s
        self.pings: list[float] = []

    async def ping(self) -> asyncio.Future[float]:
        self.pings.append(self.clock.monotonic())
        if self.pong_after_s is None:
            return asyncio.get_running_loop().create_future()  # never answered
        return asyncio.ensure_future(self._pong(self.clock.monotonic() + self.pong_after_s))

    async def _pong(self, due: float) -> float:
        while self.clock.monotonic() < due:
            await asyncio.sleep(0)  # let the keepalive's sleeps move the clock
        return 0.0


def interval_schedule(clock: ManualClock, *steps: tuple[float, float]) -> Callable[[], float]:
    """WebSocketPingInterval as the keepalive reads it: ``(from_s, interval_s)`` steps in time."""
    def current() -> float:
        now = clock.monotonic()
        return [interval for start, interval in steps if start <= now][-1]
    return current


def make_link(clock: SleepingMovesTime, ping_interval: Callable[[], float],
              ping_timeout_s: float = 20.0) -> Link:
    settings = LinkSettings(url="ws://csms.invalid/ocpp", identity="CP-UNIT", subprotocol="ocpp1.6",
                            ping_timeout_s=ping_timeout_s)

    def no_session(ws: object) -> Session:
        raise AssertionError("the keepalive runs no session")

    return Link(settings, no_session, credentials=lambda: Credentials(0, ""),
                ping_interval=ping_interval, sleep=clock.sleep, monotonic=clock.monotonic)


async def keep_alive_until_time_is_up(link: Link, ws: FakeConnection) -> None:
    """Run the keepalive to the end of simulated time; any other end fails the test."""
    with pytest.raises(TimeIsUp):
        await link._keepalive(ws)


def between(pings: list[float], start: float, end: float) -> list[float]:
    return [t for t in pings if start <= t < end]


async def test_no_ping_while_the_interval_is_0_and_pings_resume_at_the_new_interval():
    clock = SleepingMovesTime()
    ws = FakeConnection(clock)
    # every second until 10 s, off for 990 s (hundreds of the old intervals), then every 3 s
    link = make_link(clock, interval_schedule(clock, (0, 1), (10, 0), (1000, 3)))
    await keep_alive_until_time_is_up(link, ws)
    assert between(ws.pings, 0, 10) == [float(t) for t in range(1, 10)]
    assert between(ws.pings, 10, 1000) == [], "pings while WebSocketPingInterval is 0"
    # The new interval counts from the last check that saw 0 (at 1000 - KEEPALIVE_CHECK_S).
    first = 1000 - KEEPALIVE_CHECK_S + 3
    assert between(ws.pings, 1000, END_S) == [first + 3 * k for k in range(33)]


async def test_a_shorter_interval_applies_without_waiting_out_the_old_one():
    clock = SleepingMovesTime(end_s=20)
    ws = FakeConnection(clock)
    link = make_link(clock, interval_schedule(clock, (0, 60), (5, 1)))
    await keep_alive_until_time_is_up(link, ws)
    # 5 s have passed since the start, more than the new interval: a ping at once, not at 60 s
    assert ws.pings[0] == 5.0
    assert ws.pings == [float(t) for t in range(5, 21)]


async def test_a_pong_within_the_timeout_keeps_the_link():
    clock = SleepingMovesTime(end_s=100)
    ws = FakeConnection(clock, pong_after_s=15)
    link = make_link(clock, interval_schedule(clock, (0, 30)), ping_timeout_s=20)
    await keep_alive_until_time_is_up(link, ws)
    # each pong took 15 s of the 20 allowed; the interval counts from the ping
    assert ws.pings == [30.0, 60.0, 90.0]


async def test_no_pong_within_the_ping_timeout_means_a_dead_link():
    clock = SleepingMovesTime()
    ws = FakeConnection(clock, pong_after_s=None)
    link = make_link(clock, interval_schedule(clock, (0, 10)), ping_timeout_s=20)
    with pytest.raises(ConnectionError, match="no pong within 20 s"):
        await link._keepalive(ws)
    assert ws.pings == [10.0]
    assert clock.monotonic() == 30.0, "given up exactly when the ping timeout ran out"


async def test_a_pong_just_too_late_is_a_dead_link():
    clock = SleepingMovesTime()
    ws = FakeConnection(clock, pong_after_s=20.25)
    link = make_link(clock, interval_schedule(clock, (0, 10)), ping_timeout_s=20)
    with pytest.raises(ConnectionError, match="no pong"):
        await link._keepalive(ws)
    assert clock.monotonic() == 30.0
