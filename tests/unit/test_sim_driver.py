"""The simulated meter's register file: kept across restarts, written only when it changes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from hal.clock import ManualClock
from hal.sim import SimEV, SimWorld
from hal.sim_driver import MeterRegisterFile


class CountingFile(MeterRegisterFile):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.saves: list[float] = []

    def save(self, energy_wh: float) -> None:
        self.saves.append(energy_wh)
        super().save(energy_wh)


async def test_an_idle_register_is_written_once_and_a_moving_one_every_interval(tmp_path: Path) -> None:
    clock = ManualClock()
    world = SimWorld(clock, ev=SimEV(), meter_start_wh=500.0)
    register = CountingFile(tmp_path / "sim-meter-1.txt")
    keeper = asyncio.ensure_future(register.keep(world, clock, 1.0))

    async def tick(seconds: int) -> None:
        for _ in range(seconds):
            clock.advance(1.0)
            for _ in range(20):  # let the keeper's sleep see the time and its save run
                await asyncio.sleep(0.001)

    try:
        await tick(5)
        assert register.saves == [500.0]  # idle: the first value only
        assert MeterRegisterFile(register.path).load() == 500.0
        world.plug_in()
        world.pilot.set_pwm(26.7)
        clock.advance(0.3)
        world.contactor.set_closed(True)
        for _ in range(50):  # a save goes through a worker thread: allow for a slow machine
            await tick(1)
            if len(register.saves) >= 3:
                break
        assert len(register.saves) >= 3 and register.saves[-1] > 500.0
        assert MeterRegisterFile(register.path).load() == round(register.saves[-1], 3)
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)


# --- a sped-up clock across restarts -------------------------------------------------------


def test_a_restarted_fast_simulation_never_stamps_before_what_it_stamped_last_run(tmp_path: Path) -> None:
    """Run 1 at 100x ran far ahead of the real time (here: 5000 s ahead) and queued a message;
    run 2 resumes at the floor run 1 saved, so the message's age is not negative."""
    from chargepoint.core.events import MeterSample, ReadingContext
    from chargepoint.core.outbox import Outbox
    from hal.clock import ScaledClock
    from hal.interfaces import MeterReading
    from hal.sim_driver import SimClockFile

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


async def test_the_clock_keeper_saves_the_exact_time_when_the_daemon_stops(tmp_path: Path) -> None:
    from hal.clock import ScaledClock
    from hal.sim_driver import SimClockFile

    clock = ScaledClock(50.0)
    file = SimClockFile(tmp_path / "sim-clock.txt")
    keeper = asyncio.ensure_future(file.keep(clock))
    try:
        for _ in range(500):
            if file.load() is not None:
                break
            await asyncio.sleep(0.01)
    finally:
        stopped_at = clock.time()
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    floor = file.load()
    assert floor is not None and stopped_at <= floor <= clock.time()  # stopped in order: the exact time
    assert SimClockFile(tmp_path / "absent.txt").load() is None


async def test_the_clock_keeper_saves_a_floor_ahead_of_the_clock_while_running(tmp_path: Path) -> None:
    from hal.clock import ScaledClock
    from hal.sim_driver import SimClockFile

    clock = ScaledClock(50.0)
    file = SimClockFile(tmp_path / "sim-clock.txt")
    keeper = asyncio.ensure_future(file.keep(clock))
    try:
        for _ in range(500):
            floor = file.load()
            if floor is not None:
                break
            await asyncio.sleep(0.01)
        assert floor is not None and floor >= clock.time() + file.lead_s(clock) - 50.0 * 5
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
