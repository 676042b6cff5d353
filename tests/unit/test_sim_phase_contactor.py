"""The simulated phase contactor: the EV draws on the phases the station connects, the meter sees it."""

from __future__ import annotations

import asyncio

from hal.clock import ManualClock
from hal.sim.world import SimEV, SimWorld


def charging_world(three: bool) -> SimWorld:
    clock = ManualClock()
    world = SimWorld(clock, ev=SimEV(max_current_a=16.0, phases=3), phase_contactor=True)
    world.phase_contactor.set_three_phase(three)
    world.plug_in()
    clock.advance(1.0)
    world.pilot.set_pwm(16.0 / 0.6)
    clock.advance(1.0)
    world.contactor.set_closed(True)
    clock.advance(1.0)
    return world


def test_released_the_ev_draws_on_l1_alone_and_the_meter_sees_it():
    world = charging_world(three=False)
    reading = asyncio.run(world.meter.read())
    assert world.ev.phases == 1 and world.ev.onboard_phases == 3
    assert reading.currents_a == (16.0, 0.0, 0.0)
    assert reading.power_w == 16.0 * 230.0


def test_energised_all_three_phases():
    world = charging_world(three=True)
    reading = asyncio.run(world.meter.read())
    assert world.ev.phases == 3 and reading.currents_a == (16.0, 16.0, 16.0)


def test_a_switch_while_current_flows_is_counted_as_under_load():
    world = charging_world(three=True)
    world.phase_contactor.set_three_phase(False)
    assert world.phase_contactor.under_load == 1


def test_a_world_without_one_gives_the_ev_its_phases():
    world = SimWorld(ManualClock(), ev=SimEV(phases=3))
    assert world.phase_contactor is None and world.ev.phases == 3
