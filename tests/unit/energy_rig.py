"""A house, its grid meter, simulated connectors, their safety loops and the energy manager: simulated time.

The parts are the product's: :class:`hal.sim.house.SimHouse` and its grid meter,
:class:`hal.sim.world.SimWorld` per connector (EV, contactor, pilot), the real
:class:`~chargepoint.safety.evse.EvseController` stepped once per tick, and the
real :class:`~chargepoint.core.energy.manager.EnergyManager` running its own loop as a
task. Time is a ``LoopClock`` (the station tests'): the manager's sleeps end
when the rig advances the clock, so a simulated day takes seconds and no test
waits on the wall clock. The only stand-in is :class:`WorldConnectors`, which
gives the manager each connector's own current as the station would (from the
simulated EV, capped by the offer, zero with the contactor open).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from chargepoint.backends.grid import station_currents
from chargepoint.config import parse
from chargepoint.core.energy.load_manager import ConnectorLoad, own_currents
from chargepoint.core.energy.manager import EnergyManager
from chargepoint.safety.evse import EvseConfig, EvseController
from chargepoint.safety.limits import LimitClaims
from hal.sim.house import SimGridMeter, SimHouse
from hal.sim.world import SimEV, SimWorld
from tests.unit.test_station import LoopClock

TICK = 1 / 16
VOLTAGE = 230.0


class WorldConnectors:
    """The simulated connectors as the energy manager's ``chargepoint.core.energy.manager.Connectors``."""

    def __init__(self, worlds: dict[int, SimWorld], evses: dict[int, EvseController],
                 limits: dict[int, LimitClaims]) -> None:
        self.worlds, self.evses, self._limits = worlds, evses, limits

    def ids(self) -> list[int]:
        return sorted(self.worlds)

    def loads(self) -> list[ConnectorLoad]:
        out = []
        for evse_id in self.ids():
            ev, status = self.worlds[evse_id].ev, self.evses[evse_id].status
            amps = ev.current_a
            measured = (amps, amps if ev.phases == 3 else 0.0, amps if ev.phases == 3 else 0.0)
            out.append(ConnectorLoad(evse_id, ev.plugged,
                                     own_currents(status.contactor_closed, status.offered_a, measured),
                                     phase_count=status.phases))
        return out

    def phase_switch(self, evse_id: int) -> Any:
        switch = self.evses[evse_id].phases
        return switch if switch.configured else None

    def limits(self, evse_id: int) -> LimitClaims:
        return self._limits[evse_id]

    def meter_wh(self, evse_id: int) -> float | None:
        return self.worlds[evse_id].meter.energy_wh

    def session(self, evse_id: int) -> None:
        """No transactions here: the rig has the safety loops and the energy manager, not the station."""
        return None

    async def refresh(self) -> None:
        """The simulated EVs' currents are read live (``loads``): there is no older reading to renew."""


class EnergyRig:
    def __init__(self, *, connectors: int = 1, ev_phases: int = 3, ev_max_a: float = 32.0,
                 load: dict[str, Any] | None = None, solar: dict[str, Any] | None = None,
                 house: dict[str, Any] | None = None, phase_contactor: bool = False) -> None:
        self.config = parse({
            "station": {"identity": "T"}, "ocpp": {"csms_url": "ws://127.0.0.1:9"},
            "load": {"enabled": True, **(load or {}), "meter": {"kind": "sim"}},
            "solar": solar or {}, "house": house or {}})
        self.clock = LoopClock()
        self.worlds: dict[int, SimWorld] = {}
        self.evses: dict[int, EvseController] = {}
        self.limits: dict[int, LimitClaims] = {}
        for evse_id in range(1, connectors + 1):
            world = SimWorld(self.clock, ev=SimEV(max_current_a=ev_max_a, phases=ev_phases, soc=0.1,
                                                 capacity_wh=500_000), phase_contactor=phase_contactor)
            limits = LimitClaims()
            limits.set("station", 32.0)
            self.worlds[evse_id], self.limits[evse_id] = world, limits
            self.evses[evse_id] = EvseController(world.pilot, world.contactor, world.faults, self.clock,
                                                 limits, EvseConfig(tick_s=TICK), name=f"connector-{evse_id}",
                                                 phase_contactor=world.phase_contactor)
        h = self.config.house
        self.house = SimHouse(self.clock, lambda: station_currents(self.worlds), base_load_w=h.base_load_w,
                              pv_peak_w=h.pv_peak_w, cloudiness=h.cloudiness, seed=h.seed,
                              day_start_h=h.day_start_h, time_factor=h.time_factor, voltage_v=VOLTAGE)
        self.energy = EnergyManager(WorldConnectors(self.worlds, self.evses, self.limits),
                                    SimGridMeter(self.house), self.config, self.clock)
        self._task: asyncio.Task[None] | None = None
        #: (time, evse_id, closed) at every contactor change.
        self.switches: list[tuple[float, int, bool]] = []

    def plug_all(self) -> None:
        for evse_id, world in self.worlds.items():
            world.plug_in()
            self.evses[evse_id].allow()

    async def run(self, seconds: float, every: Callable[[EnergyRig], None] | None = None) -> None:
        """Advance ``seconds`` of simulated time tick by tick; ``every`` sees each tick."""
        if self._task is None:
            self._task = asyncio.ensure_future(self.energy.run())
        for _ in range(round(seconds / TICK)):
            self.clock.advance(TICK)
            for _ in range(3):
                await asyncio.sleep(0)
            for evse_id, evse in self.evses.items():
                before = self.worlds[evse_id].contactor.commanded
                evse.step()
                after = self.worlds[evse_id].contactor.commanded
                if after != before:
                    self.switches.append((self.clock.monotonic(), evse_id, after))
            if every is not None:
                every(self)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def grid(self) -> tuple[float, float, float]:
        return self.house.grid_currents()

    def claim(self, evse_id: int, name: str) -> float | None:
        return self.limits[evse_id].get(name)
