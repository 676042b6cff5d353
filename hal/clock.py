"""Injectable clocks.

Logic that has deadlines (the 100 ms contactor rule, heartbeat intervals, the
simulated EV's battery) takes a clock instead of calling ``time`` directly, so
tests can run it in simulated time, deterministically, and the demo can run the
physics faster than real time.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol


class Clock(Protocol):
    """What logic needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for deadlines)."""
        ...

    def time(self) -> float:
        """Wall-clock seconds since the epoch (for timestamps in messages)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time without blocking the event loop."""
        ...

    def sleep_blocking(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time in a thread (the safety loop)."""
        ...


class RealClock:
    """The system clock: what the daemon uses on a station."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def sleep_blocking(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


class ScaledClock:
    """A clock that runs ``speed`` times faster than real time.

    Used by the simulation and the demo so that minutes of charging pass in
    seconds. Wall time starts at ``wall_start`` (default: the real time of
    creation) and then runs fast, so timestamps stay plausible.

    Its wall time runs ahead of the real one, so a simulation that restarts at
    the real time would go back in time: what the last run stamped (queued
    messages, sessions) would lie in the future, and their ages would be
    negative. A restarted simulation therefore starts where the last one said
    it would not go back behind (:func:`hal.sim.driver.SimClockFile`).
    """

    def __init__(self, speed: float, wall_start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._real_start = time.monotonic()
        self._wall_start = time.time() if wall_start is None else wall_start

    @classmethod
    def from_anchor(cls, speed: float, real_start: float, wall_start: float) -> ScaledClock:
        """The same clock as another process's (same machine: CLOCK_MONOTONIC is shared)."""
        clock = cls(speed, wall_start)
        clock._real_start = real_start
        return clock

    def anchor(self) -> tuple[float, float, float]:
        """(speed, real monotonic start, wall start): what ``from_anchor`` needs."""
        return self.speed, self._real_start, self._wall_start

    def monotonic(self) -> float:
        return (time.monotonic() - self._real_start) * self.speed

    def time(self) -> float:
        return self._wall_start + self.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)

    def sleep_blocking(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """A clock that moves only when told to: for deterministic tests.

    ``advance`` moves time forward; sleepers (async or threaded) whose deadline
    has passed are released. Nothing here reads the system clock.
    """

    def __init__(self, start: float = 0.0, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._cond = threading.Condition()

    def monotonic(self) -> float:
        with self._cond:
            return self._now

    def time(self) -> float:
        return self.monotonic() + self._wall_offset

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    async def sleep(self, seconds: float) -> None:
        deadline = self.monotonic() + seconds
        while self.monotonic() < deadline:
            await asyncio.sleep(0)
            await asyncio.sleep(0.001)

    def sleep_blocking(self, seconds: float) -> None:
        with self._cond:
            deadline = self._now + seconds
            while self._now < deadline:
                self._cond.wait(0.05)
