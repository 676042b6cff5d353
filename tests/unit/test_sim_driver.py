"""The simulated meter's register file: kept across restarts, written only when it changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hal.clock import ManualClock
from hal.sim.driver import MeterRegisterFile
from hal.sim.world import SimEV, SimWorld


class CountingFile(MeterRegisterFile):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.saves: list[float] = []

    def save(self, energy_wh: float) -> None:
        self.saves.append(energy_wh)
        super().save(energy_wh)


class SteppedClock(ManualClock):
    """A manual clock that tells the test when a sleeper has gone back to sleep.

    A keeper that re-enters ``sleep`` has finished everything the last step of
    time caused (its save in a worker thread included), so "nothing was written"
    is a fact about that step, not about how long the test waited.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sleeps_begun = 0
        self._changed = asyncio.Condition()

    async def sleep(self, seconds: float) -> None:
        async with self._changed:
            self.sleeps_begun += 1
            self._changed.notify_all()
        await super().sleep(seconds)

    async def sleeper_waiting(self, after: int) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.sleeps_begun > after), 30)

    async def step(self, seconds: float) -> None:
        """Advance, then wait until the sleeper has acted on it and sleeps again."""
        before = self.sleeps_begun
        self.advance(seconds)
        await self.sleeper_waiting(before)


async def test_an_idle_register_is_written_once_and_a_moving_one_every_interval(tmp_path: Path) -> None:
    clock = SteppedClock()
    world = SimWorld(clock, ev=SimEV(), meter_start_wh=500.0)
    register = CountingFile(tmp_path / "sim-meter-1.txt")
    keeper = asyncio.ensure_future(register.keep(world, clock, 1.0))
    try:
        await clock.sleeper_waiting(0)
        for _ in range(5):
            await clock.step(1.0)
        assert register.saves == [500.0]  # idle: the first value only
        assert MeterRegisterFile(register.path).load() == 500.0
        world.plug_in()
        world.pilot.set_pwm(26.7)
        clock.advance(0.3)
        world.contactor.set_closed(True)
        for _ in range(3):
            await clock.step(1.0)
        assert len(register.saves) == 4 and register.saves[-1] > register.saves[-2] > 500.0
        assert MeterRegisterFile(register.path).load() == round(register.saves[-1], 3)
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


# --- a sped-up clock across restarts -------------------------------------------------------


def test_a_restarted_fast_simulation_never_stamps_before_what_it_stamped_last_run(tmp_path: Path) -> None:
    """Run 1 at 100x ran far ahead of the real time (here: 5000 s ahead) and queued a message;
    run 2 resumes at the floor run 1 saved, so the message's age is not negative."""
    from chargepoint.core.events import MeterSample, ReadingContext
    from chargepoint.core.storage.outbox import Outbox
    from hal.clock import ScaledClock
    from hal.interfaces import MeterReading
    from hal.sim.driver import SimClockFile

    real_now = 1_800_000_000.0
    run1 = ScaledClock(100.0, wall_start=real_now + 5000.0)
    file = SimClockFile(tmp_path / "sim-clock.txt")
    file.save(run1.time() + file.lead_s(run1))  # what the keeper writes
    stamped = run1.time()
    outbox = Outbox()
    asyncio.run(outbox.put(MeterSample(1, "tx", MeterReading(stamped, 1.0), ReadingContext.PERIODIC)))

    fresh = ScaledClock(100.0, wall_start=real_now + 3.0)  # how a restart began before: the real time
    age_before = outbox.oldest_age(fresh.time())
    assert age_before is not None and age_before < -4000  # the "-2312 s old" of the field report

    run2 = file.clock(100.0, now=real_now + 3.0)
    age = outbox.oldest_age(run2.time())
    assert age is not None and 0 <= age <= file.lead_s(run1) + 1.0
    # Once the real time has passed the floor, a restart starts at the real time.
    later = file.clock(100.0, now=real_now + 10_000.0)
    assert later.time() >= real_now + 10_000.0


class WatchedClockFile:
    """A SimClockFile that records what it saved and the clock's time at that moment,
    and lets the test wait for a save instead of polling the file."""

    @staticmethod
    def make(path: Path, clock: object) -> tuple[object, list[tuple[float, float]], asyncio.Event]:
        from hal.sim.driver import SimClockFile

        loop = asyncio.get_running_loop()
        saved = asyncio.Event()
        saves: list[tuple[float, float]] = []

        class Watched(SimClockFile):
            def save(self, floor: float) -> None:
                super().save(floor)
                saves.append((floor, clock.time()))  # type: ignore[attr-defined]
                loop.call_soon_threadsafe(saved.set)

        return Watched(path), saves, saved


async def test_the_clock_keeper_saves_the_exact_time_when_the_daemon_stops(tmp_path: Path) -> None:
    from hal.clock import ScaledClock
    from hal.sim.driver import SimClockFile

    clock = ScaledClock(50.0)
    file, saves, saved = WatchedClockFile.make(tmp_path / "sim-clock.txt", clock)
    keeper = asyncio.ensure_future(file.keep(clock))  # type: ignore[attr-defined]
    await asyncio.wait_for(saved.wait(), 30)  # the floor saved at start
    stopped_at = clock.time()
    keeper.cancel()
    await asyncio.gather(keeper, return_exceptions=True)
    floor = file.load()  # type: ignore[attr-defined]
    exact, clock_then = saves[-1]
    assert floor == round(exact, 3)
    assert stopped_at <= exact <= clock_then  # stopped in order: the exact time, not the floor ahead
    assert SimClockFile(tmp_path / "absent.txt").load() is None


async def test_the_clock_keeper_saves_a_floor_ahead_of_the_clock_while_running(tmp_path: Path) -> None:
    from hal.clock import ScaledClock

    clock = ScaledClock(50.0)
    file, saves, saved = WatchedClockFile.make(tmp_path / "sim-clock.txt", clock)
    keeper = asyncio.ensure_future(file.keep(clock))  # type: ignore[attr-defined]
    try:
        await asyncio.wait_for(saved.wait(), 30)
        floor, clock_at_save = saves[0]
        lead = file.lead_s(clock)  # type: ignore[attr-defined]
        # The floor is taken from the clock before the save, so it lies at most the
        # save's own duration before clock_at_save + lead, and never after it.
        assert floor <= clock_at_save + lead
        assert floor > clock_at_save  # ahead of the clock, whatever the machine's speed
        assert file.load() == round(floor, 3)  # type: ignore[attr-defined]
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
