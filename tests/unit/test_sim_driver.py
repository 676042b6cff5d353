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
