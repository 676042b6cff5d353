"""The safety loop's pace: ``tick_s`` whenever a rule has a deadline, ``idle_tick_s`` only with no EV.

An idle station (state A, contactor open and reading open, nothing timed
running) steps every ``idle_tick_s``: most of a station's life, and most of its
CPU. Every case with a deadline (an EV connected, a contactor reading closed, a
technician's output test, a shunt-trip pulse, a new pilot state awaiting its
confirming samples) keeps the fast pace. Driven step by step on the ManualClock
rig of test_evse, and once as the loop's own thread on a clock its sleeps move.
"""

from __future__ import annotations

import threading
from pathlib import Path

from chargepoint.config.step_budget import STEP_BUDGET_S
from chargepoint.safety.evse import EvseConfig, EvseController, EvseFault
from chargepoint.safety.iec61851 import CpState
from chargepoint.safety.limits import LimitClaims
from tests.unit.test_evse import TICK, FakeContactor, FakeFaults, FakePilot, Rig, SteppingClock, charging_rig

IDLE = EvseConfig().idle_tick_s


def test_an_idle_station_steps_at_the_idle_pace_and_a_plug_in_brings_the_fast_one_back() -> None:
    rig = Rig()
    rig.run(0.1)
    assert rig.evse.idle and rig.evse.pause_s() == IDLE > TICK
    rig.pilot.change(CpState.B)
    rig.clock.advance(IDLE)
    rig.evse.step()
    assert rig.evse.pause_s() == 0.0, "a new pilot state takes its confirming sample at once"
    rig.evse.step()
    assert rig.status.cp_state is CpState.B
    assert not rig.evse.idle and rig.evse.pause_s() == TICK


def test_charging_and_the_way_back_to_a_keep_the_fast_pace_until_the_contactor_reads_open() -> None:
    rig = charging_rig()
    assert rig.evse.pause_s() == TICK
    rig.pilot.change(CpState.A)
    rig.run_until(lambda: rig.status.cp_state is CpState.A, limit_s=0.1)
    assert not rig.status.contactor_closed
    # Commanded open, but the auxiliary contact still reads closed for its settle time.
    assert rig.contactor.feedback() is True and rig.evse.pause_s() == TICK
    rig.run_until(lambda: rig.evse.idle, limit_s=0.2)
    assert rig.contactor.feedback() is False and rig.evse.pause_s() == IDLE


def test_a_contactor_reading_closed_with_no_ev_keeps_the_fast_pace() -> None:
    rig = Rig()
    rig.run(0.1)
    rig.contactor.welded = True
    rig.run(0.01)
    assert rig.evse.pause_s() == TICK
    rig.run(0.3)
    assert EvseFault.WELDED in rig.status.faults and rig.evse.pause_s() == TICK


def test_an_output_test_keeps_the_fast_pace_and_its_end_brings_the_idle_one_back() -> None:
    rig = Rig()
    rig.run(0.1)
    assert rig.evse.begin_output_test(duty=50.0, hold_s=0.5) is None
    assert rig.evse.pause_s() == TICK
    rig.run(0.7)
    assert not rig.evse.output_test_active and rig.evse.pause_s() == IDLE


def test_the_idle_pace_is_never_faster_than_tick_s() -> None:
    rig = Rig(EvseConfig(tick_s=0.08, idle_tick_s=0.05))
    rig.run(0.1)
    assert rig.evse.idle and rig.evse.pause_s() == 0.08


def test_the_loop_thread_sleeps_the_idle_pace_while_nothing_is_connected() -> None:
    sleeps: list[float] = []
    enough = threading.Event()

    class RecordingClock(SteppingClock):
        def sleep_blocking(self, seconds: float) -> None:
            sleeps.append(seconds)
            if len(sleeps) >= 40:
                enough.set()
            super().sleep_blocking(seconds)

    clock = RecordingClock()
    limits = LimitClaims()
    limits.set("station", 16.0)
    evse = EvseController(FakePilot(clock), FakeContactor(clock), FakeFaults(), clock, limits,
                          EvseConfig(tick_s=TICK))
    evse.start()
    try:
        assert enough.wait(timeout=10.0), "the loop thread did not step"
    finally:
        evse.close()
    # The first step or two find the pilot's state (confirming, then A); then only the idle pace.
    assert set(sleeps[5:40]) == {IDLE}, sleeps[:40]


def test_hardware_md_states_the_idle_pace_and_it_keeps_the_pilot_gate_enabled() -> None:
    text = " ".join((Path(__file__).parents[2] / "hardware.md").read_text().split())
    assert f"the loop steps every {IDLE * 1000:g} ms instead" in text
    assert "a pulse of about 0.5 s" in text  # U13's: an idle step plus its conversions stays far inside
    assert IDLE + STEP_BUDGET_S < 0.5 / 4
