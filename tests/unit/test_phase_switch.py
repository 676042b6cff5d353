"""The safety loop's phase switching (chargepoint/safety/phases.py), step by step on a ManualClock.

Every rule of the module docstring has a test here: the phase contactor never moves with
KM1 closed, the EV is paused before and after for the stated times, a request while charging
runs pause -> KM1 open -> switch -> wait -> offer again, a station without the contactor
refuses, and a fault during the switch leaves KM1 open and KM2 released.
"""

from __future__ import annotations

import pytest

from chargepoint.safety.evse import EvseConfig, EvseController, EvseFault
from chargepoint.safety.iec61851 import CpState
from chargepoint.safety.limits import LimitClaims
from chargepoint.safety.phases import PhaseTiming
from hal.clock import ManualClock
from tests.unit.test_evse import TICK, FakeContactor, FakeFaults, FakePilot

TIMING = PhaseTiming()


class FakePhaseContactor:
    """KM2's relay: records every command with the time and KM1's state at that moment."""

    def __init__(self, clock: ManualClock, km1: FakeContactor) -> None:
        self.clock = clock
        self.km1 = km1
        self.three = False
        #: (time, three, KM1 commanded, KM1's aux contact) per command.
        self.log: list[tuple[float, bool, bool, bool | None]] = []

    def set_three_phase(self, three: bool) -> None:
        self.three = three
        self.log.append((self.clock.monotonic(), three, self.km1.commanded, self.km1.feedback()))

    def close(self) -> None:
        self.three = False


class Rig:
    def __init__(self, *, with_km2: bool = True, settle_s: float = 0.03) -> None:
        self.clock = ManualClock()
        self.pilot = FakePilot(self.clock)
        self.contactor = FakeContactor(self.clock, settle_s)
        self.km2 = FakePhaseContactor(self.clock, self.contactor) if with_km2 else None
        self.faults = FakeFaults()
        self.limits = LimitClaims()
        self.limits.set("station", 16.0)
        self.evse = EvseController(self.pilot, self.contactor, self.faults, self.clock, self.limits,
                                   EvseConfig(tick_s=TICK), phase_contactor=self.km2)
        #: (time, event) for the ordering checks: pwm off/on, km1 open/close, km2 1/3.
        self.events: list[tuple[float, str]] = []

    def step(self) -> None:
        before = (self.evse.status.pwm_duty < 100.0, self.contactor.commanded,
                  None if self.km2 is None else self.km2.three)
        self.clock.advance(TICK)
        self.evse.step()
        after = (self.evse.status.pwm_duty < 100.0, self.contactor.commanded,
                 None if self.km2 is None else self.km2.three)
        now = self.clock.monotonic()
        for name, was, isnow in zip(("pwm", "km1", "km2"), before, after, strict=True):
            if was != isnow:
                word = {"pwm": ("off", "on"), "km1": ("open", "close"), "km2": ("1", "3")}[name]
                self.events.append((now, f"{name} {word[bool(isnow)]}"))
        # KM2 never moves with KM1 commanded or shown closed.
        if self.km2 is not None and self.km2.log:
            _, _, km1_commanded, km1_aux = self.km2.log[-1]
            assert not km1_commanded and not km1_aux, self.km2.log[-1]

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / TICK)):
            self.step()

    def run_until(self, done, limit_s: float) -> float:
        for _ in range(round(limit_s / TICK)):
            self.step()
            if done():
                return self.clock.monotonic()
        raise AssertionError(f"not done within {limit_s} s")

    def charge(self) -> Rig:
        """Start-up switch to three phases done, EV plugged, allowed, charging."""
        self.run_until(lambda: self.evse.status.phases == 3 and not self.evse.phases.switching, 10.0)
        self.pilot.change(CpState.B)
        self.evse.allow()
        self.run(0.3)
        self.pilot.change(CpState.C)
        self.run_until(lambda: self.evse.status.contactor_closed, 1.0)
        self.run(1.0)
        self.events.clear()
        return self


def test_a_station_with_km2_starts_on_three_phases_after_the_pause():
    rig = Rig()
    assert rig.evse.status.phases == 1  # de-energised at power-up
    switched = rig.run_until(lambda: rig.km2.three, 10.0)
    assert switched == pytest.approx(TIMING.before_s, abs=2 * TICK), switched
    assert rig.evse.status.phases == 3


def test_refused_without_a_phase_contactor():
    rig = Rig(with_km2=False)
    refusal = rig.evse.phases.request(1)
    assert refusal is not None and "no phase contactor configured" in refusal
    rig.run(1.0)
    assert rig.evse.status.phases is None
    assert not rig.evse.phases.switching


def test_only_one_or_three_phases():
    rig = Rig()
    assert "1 or 3" in (rig.evse.phases.request(2) or "")
    assert rig.evse.phases.target == 3


def test_a_request_while_charging_pauses_opens_switches_waits_and_offers_again():
    rig = Rig().charge()
    t0 = rig.clock.monotonic()
    assert rig.evse.phases.request(1) is None
    rig.step()
    assert rig.evse.status.pwm_duty == 100.0, "the EV is paused on the step after the request"
    assert rig.contactor.commanded, "KM1 waits for the EV to leave C"
    # The EV answers the pause within its 3 s: C -> B.
    rig.run(2.0)
    ev_left = rig.pilot.change(CpState.B)
    rig.run_until(lambda: not rig.contactor.commanded, 0.2)
    km1_open = rig.contactor.last_command(False)
    assert km1_open - ev_left <= 0.1
    switched = rig.run_until(lambda: not rig.km2.three, 5.0)
    assert switched - km1_open == pytest.approx(TIMING.before_s, abs=2 * TICK)
    offered = rig.run_until(lambda: rig.evse.status.pwm_duty < 100.0, 5.0)
    assert offered - switched == pytest.approx(TIMING.after_s, abs=2 * TICK)
    rig.pilot.change(CpState.C)
    rig.run_until(lambda: rig.contactor.commanded, 1.0)
    assert [e for _, e in rig.events] == ["pwm off", "km1 open", "km2 1", "pwm on", "km1 close"]
    assert rig.evse.status.phases == 1 and rig.evse.status.faults == frozenset()
    assert offered - t0 == pytest.approx(2.0 + TIMING.before_s + TIMING.after_s, abs=0.1)


def test_an_ev_that_stays_in_c_is_opened_by_the_six_second_rule_before_the_switch():
    rig = Rig().charge()
    rig.evse.phases.request(1)
    rig.step()
    paused = rig.clock.monotonic()
    switched = rig.run_until(lambda: not rig.km2.three, 15.0)
    km1_open = rig.contactor.last_command(False)
    assert km1_open - paused <= 6.0, "KM1 forced open within the standard's 6 s after PWM off"
    assert switched - km1_open == pytest.approx(TIMING.before_s, abs=2 * TICK)
    assert not rig.contactor.commanded


def test_km2_waits_for_km1_s_auxiliary_contact_to_show_open():
    rig = Rig(settle_s=0.15).charge()
    rig.evse.phases.request(1)
    rig.run(0.5)
    rig.pilot.change(CpState.B)
    rig.run(TIMING.before_s + 0.5)
    time, three, km1_commanded, km1_aux = rig.km2.log[-1]
    assert not three and not km1_commanded and km1_aux is False


def test_a_request_back_before_the_switch_cancels_it_and_charging_resumes():
    rig = Rig().charge()
    rig.evse.phases.request(1)
    rig.run(0.5)
    rig.evse.phases.request(3)
    offered = rig.run_until(lambda: rig.evse.status.pwm_duty < 100.0, 1.0)
    assert offered and rig.km2.three and rig.evse.phases.switches == 1  # only the start-up switch


def test_a_fault_during_the_switch_leaves_everything_open():
    rig = Rig().charge()
    rig.evse.phases.request(1)
    rig.run(0.5)
    rig.pilot.change(CpState.B)
    rig.run(TIMING.before_s + 0.5)  # switched to one phase; now in the pause after
    assert not rig.km2.three and rig.evse.phases.switching
    rig.evse.phases.request(3)
    rig.faults.trip("rcd")
    rig.run(TIMING.before_s + TIMING.after_s + 1.0)
    status = rig.evse.status
    assert EvseFault.RCD in status.faults
    assert not rig.contactor.commanded and not rig.km2.three and status.phases == 1
    assert status.pwm_duty == 100.0


def test_a_fault_while_charging_on_three_phases_releases_km2_with_km1():
    rig = Rig().charge()
    assert rig.km2.three
    rig.faults.trip("rcd")
    rig.step()
    assert not rig.contactor.commanded and rig.km2.three, "KM2 holds until KM1 is open"
    released = rig.run_until(lambda: not rig.km2.three, 1.0)
    assert released - rig.contactor.last_command(False) == pytest.approx(TIMING.km1_release_s, abs=2 * TICK)
    assert rig.evse.status.phases == 1


def test_after_the_fault_is_cleared_the_target_is_reached_again_with_its_pauses():
    rig = Rig().charge()
    rig.faults.trip("rcd")
    rig.run(0.5)
    rig.faults.release("rcd")
    assert rig.evse.clear_faults()
    cleared = rig.clock.monotonic()
    switched = rig.run_until(lambda: rig.km2.three, 10.0)
    assert switched - cleared >= TIMING.before_s - 0.5 - TICK
    assert not rig.contactor.commanded


def test_close_releases_km2():
    rig = Rig().charge()
    rig.evse.close()
    assert not rig.contactor.commanded and not rig.km2.three


def test_a_welded_km1_keeps_km2_where_it_is():
    rig = Rig().charge()
    rig.contactor.welded = True
    rig.evse.phases.request(1)
    rig.run(10.0)
    assert EvseFault.WELDED in rig.evse.status.faults
    assert rig.km2.three, "KM2 does not move while KM1's mirror contact shows closed"
