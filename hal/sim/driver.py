"""A simulated driver and a simulated meter's memory, for unattended runs.

The physical simulation (``hal.sim.world``) waits to be told when an EV arrives.
For soak and crash tests, and for a station left running on a bench, a driver
comes and goes by itself: plugs in, charges for a while, unplugs, comes back.
And a real meter keeps its energy register through a power cut; the simulated
one keeps it in a small file so that a restarted daemon sees the same meter.
Likewise a sped-up simulation keeps its clock from going back in time across
restarts (:class:`SimClockFile`).
"""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

from hal.clock import Clock, ScaledClock
from hal.sim.world import SimWorld

log = logging.getLogger(__name__)


async def drive_cycles(world: SimWorld, clock: Clock, *, charge_s: float, idle_s: float,
                       card: str | None = None) -> None:
    """Plug in, optionally tap ``card``, charge ``charge_s``, unplug, wait ``idle_s``; repeat."""
    while True:
        await clock.sleep(idle_s)
        world.plug_in()
        if card:
            await clock.sleep(0.5)
            world.card_reader.tap(card)
        await clock.sleep(charge_s)
        if card:
            world.card_reader.tap(card)
            await clock.sleep(1.0)
        world.unplug()


class MeterRegisterFile:
    """Keeps a simulated meter's energy register in a file across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> float:
        """The register as last saved (0 for a new meter or an unreadable file)."""
        try:
            return max(0.0, float(self.path.read_text()))
        except (OSError, ValueError):
            return 0.0

    def save(self, energy_wh: float) -> None:
        """Write atomically: a crash leaves the old value or the new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(f"{energy_wh:.3f}")
        os.replace(temporary, self.path)

    async def keep(self, world: SimWorld, clock: Clock, interval_s: float) -> None:
        """Save the register every ``interval_s`` while it changes (in a thread: it is file I/O).

        An idle meter's register does not move, and then nothing is written: no
        wake-up of a worker thread and no write to the SD card every second.
        """
        saved: float | None = None
        while True:
            await clock.sleep(interval_s)
            energy_wh = world.meter.energy_wh
            if energy_wh != saved:
                await asyncio.to_thread(self.save, energy_wh)
                saved = energy_wh


class SimClockFile:
    """Keeps a sped-up simulation's wall time from going back across restarts.

    A :class:`~hal.clock.ScaledClock` runs ahead of the real time; started
    afresh at the real time, a restarted simulation would stamp its messages
    earlier than the ones it stamped before, and the age of what it queued then
    would come out negative. So the running simulation writes a floor ahead of
    its own time (now plus two save intervals, saved every interval, and once at
    start): whatever it stamped before a crash lies below the floor, and the next
    run starts at the floor, or at the real time if that is later. A daemon that
    stops in order (its jobs are cancelled after its last messages) saves its
    exact time instead, so a restart continues where it stopped. While the
    daemon is down, simulated time stands still.
    """

    #: Seconds of real time between saves: a few writes a minute, and after a crash the
    #: clock resumes at most two of these (of its own time) ahead.
    SAVE_EVERY_S = 10.0

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> float | None:
        """The saved floor (epoch seconds), or None for a new or unreadable file."""
        try:
            return float(self.path.read_text())
        except (OSError, ValueError):
            return None

    def clock(self, speed: float, now: float) -> ScaledClock:
        """A clock of ``speed`` starting at the saved floor, or at ``now`` (the real time) if later."""
        floor = self.load()
        return ScaledClock(speed, wall_start=now if floor is None else max(now, floor))

    def save(self, floor: float) -> None:
        """Write atomically: a crash leaves the old value or the new one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(f"{floor:.3f}")
        os.replace(temporary, self.path)

    def lead_s(self, clock: ScaledClock) -> float:
        """How far ahead of the clock the floor is written: two save intervals of its time."""
        return 2 * self.SAVE_EVERY_S * clock.speed

    async def keep(self, clock: ScaledClock) -> None:
        """Save the floor now and then every SAVE_EVERY_S of real time (in a thread: file I/O);
        when cancelled (the daemon stops), the exact time."""
        try:
            while True:
                await asyncio.to_thread(self.save, clock.time() + self.lead_s(clock))
                await clock.sleep(self.SAVE_EVERY_S * clock.speed)
        except asyncio.CancelledError:
            await asyncio.to_thread(self.save, clock.time())
            raise
