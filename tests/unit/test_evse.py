"""The safety loop, driven step by step on a ManualClock.

Scripted fakes stand in for the hardware so every pilot voltage and feedback
level is chosen by the test. Safety tests measure on the clock how long a
reaction took and put the figure into the assertion message.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import pytest

from chargepoint.safety.evse import CABLE_CLAIM, EvseConfig, EvseController, EvseFault, EvseStatus
from chargepoint.safety.iec61851 import CpState, duty_for_current
from chargepoint.safety.limits import LimitClaims
from hal.clock import ManualClock
from hal.interfaces import PilotLevels
from hal.sim.world import SimEV, SimWorld

TICK = 0.01
NOMINAL_V = {
    CpState.A: 12.0, CpState.B: 9.0, CpState.C: 6.0, CpState.D: 3.0, CpState.E: 0.0, CpState.F: -12.0,
}


class FakePilot:
    """Pilot whose read-back the test scripts: the EV's state, or a raw voltage."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.ev_state = CpState.A
        self.volts: float | None = None  # overrides the EV's plateau (out-of-band readings)
        self.diode = True
        self.pp_ohms: float | None = 220.0
        self.duty = 0.0  # nothing driven yet
        self.log: list[tuple[float, float]] = []  # (time, duty) per command
        self.fail_reads = 0
        #: Reads of the negative plateau, and of PP.
        self.low_reads = 0
        self.pp_reads = 0

    def set_pwm(self, duty_percent: float) -> None:
        self.duty = duty_percent
        self.log.append((self.clock.monotonic(), duty_percent))

    def set_negative(self) -> None:
        raise AssertionError("the controller signals faults with 100 %, not -12 V")

    def read(self) -> PilotLevels:
        if self.fail_reads:
            self.fail_reads -= 1
            raise OSError("I2C read failed")
        high = NOMINAL_V[self.ev_state] if self.volts is None else self.volts
        if self.duty >= 100.0:
            return PilotLevels(high, high)
        plugged = self.ev_state is not CpState.A
        return PilotLevels(high, -high if plugged and not self.diode else -12.0)

    def read_high_v(self) -> float:
        return self.read().high_v

    def read_low_v(self) -> float:
        self.low_reads += 1
        return self.read().low_v

    def read_proximity_ohms(self) -> float | None:
        self.pp_reads += 1
        return self.pp_ohms

    def change(self, state: CpState) -> float:
        """Let the EV switch to ``state``; returns the time it happened."""
        self.ev_state = state
        return self.clock.monotonic()

    def last_change_to(self, duty_is_off: bool) -> float:
        return next(t for t, d in reversed(self.log) if (d == 100.0) == duty_is_off)


class FakeContactor:
    """Contactor whose auxiliary contact follows the coil after ``settle_s``, unless broken."""

    def __init__(self, clock: ManualClock, settle_s: float = 0.03, aux: bool = True) -> None:
        self.clock = clock
        self.settle_s = settle_s
        self.aux = aux
        self.commanded = False
        self.log: list[tuple[float, bool]] = []  # (time, closed) per command
        self.welded = False
        self.aux_stuck_open = False
        self._previous = False
        self._switched_at = -math.inf

    def set_closed(self, closed: bool) -> None:
        if closed != self.commanded:
            self._previous = self.commanded
            self._switched_at = self.clock.monotonic()
        self.commanded = closed
        self.log.append((self.clock.monotonic(), closed))

    def feedback(self) -> bool | None:
        if not self.aux:
            return None
        if self.welded:
            return True
        if self.aux_stuck_open:
            return False
        settled = self.clock.monotonic() - self._switched_at >= self.settle_s
        return self.commanded if settled else self._previous

    def last_command(self, closed: bool) -> float:
        return next(t for t, c in reversed(self.log) if c == closed)


class FakeFaults:
    """Fault inputs that latch like an RCD: active until released *and* reset."""

    def __init__(self) -> None:
        self.present: set[str] = set()
        self.latched: set[str] = set()
        self.callbacks: list[Callable[[str], None]] = []
        self.resets = 0

    def active(self) -> frozenset[str]:
        return frozenset(self.present | self.latched)

    def on_trip(self, callback: Callable[[str], None]) -> None:
        self.callbacks.append(callback)

    def self_test(self) -> bool:
        return True

    def reset(self) -> None:
        self.resets += 1
        self.latched.clear()

    def trip(self, name: str) -> None:
        self.present.add(name)
        self.latched.add(name)
        for callback in self.callbacks:
            callback(name)

    def release(self, name: str) -> None:
        self.present.discard(name)


class Rig:
    """A controller on fakes, plus helpers that move time in ticks."""

    def __init__(self, config: EvseConfig | None = None, station_a: float | None = 32.0,
                 aux: bool = True, contactor_settle_s: float = 0.03) -> None:
        self.clock = ManualClock()
        self.pilot = FakePilot(self.clock)
        self.contactor = FakeContactor(self.clock, contactor_settle_s, aux)
        self.faults = FakeFaults()
        self.limits = LimitClaims()
        self.limits.set("station", station_a)
        self.statuses: list[EvseStatus] = []
        self.evse = EvseController(self.pilot, self.contactor, self.faults, self.clock, self.limits,
                                   config or EvseConfig(tick_s=TICK), on_status=self.statuses.append)

    @property
    def status(self) -> EvseStatus:
        return self.evse.status

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / TICK)):
            self.clock.advance(TICK)
            self.evse.step()

    def run_until(self, done: Callable[[], bool], limit_s: float) -> float:
        """Step until ``done()``; returns the clock time then. Fails after ``limit_s``."""
        for _ in range(round(limit_s / TICK)):
            self.clock.advance(TICK)
            self.evse.step()
            if done():
                return self.clock.monotonic()
        raise AssertionError(f"not done within {limit_s} s")

    def charge(self) -> Rig:
        """Plug in, allow, EV goes to C, contactor closes."""
        self.pilot.change(CpState.B)
        self.evse.allow()
        self.run(0.3)
        self.pilot.change(CpState.C)
        self.run_until(lambda: self.status.contactor_closed, limit_s=1.0)
        self.run(0.5)
        assert self.status.faults == frozenset()
        return self


def charging_rig(**kwargs: object) -> Rig:
    return Rig(**kwargs).charge()  # type: ignore[arg-type]


# -- offering current -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("station_a", "pp_ohms", "duty", "offered_a", "binding", "cable_a"),
    [
        (32.0, 220.0, duty_for_current(32.0), 32.0, "cable", 32.0),  # tie: names break it
        (16.0, 220.0, duty_for_current(16.0), 16.0, "station", 32.0),
        (32.0, 680.0, duty_for_current(20.0), 20.0, "cable", 20.0),
        (32.0, 1500.0, duty_for_current(13.0), 13.0, "cable", 13.0),
        (100.0, None, 96.0, 80.0, "station", None),  # tethered: only the station limits; PWM tops at 80 A
        (70.0, 100.0, duty_for_current(63.0), 63.0, "cable", 63.0),
        (5.9, 220.0, 100.0, 0.0, "station", 32.0),  # below 6 A: no PWM
        (0.0, 220.0, 100.0, 0.0, "station", 32.0),
        (None, None, 100.0, 0.0, "", None),  # no claim at all: offer nothing rather than 80 A
    ],
)
def test_offered_current_is_the_binding_claim(station_a: float | None, pp_ohms: float | None, duty: float,
                                              offered_a: float, binding: str, cable_a: float | None) -> None:
    rig = Rig(station_a=station_a)
    rig.pilot.pp_ohms = pp_ohms
    rig.pilot.change(CpState.B)
    rig.evse.allow()
    rig.run(0.1)
    status = rig.status
    assert (status.pwm_duty, status.offered_a, status.binding_limit, status.cable_max_a) == (
        pytest.approx(duty), offered_a, binding, cable_a)
    assert rig.limits.get(CABLE_CLAIM) == cable_a


def test_a_limit_change_while_charging_changes_the_duty() -> None:
    rig = charging_rig()
    rig.limits.set("ocpp", 10.0)
    rig.run(TICK)
    assert (rig.status.pwm_duty, rig.status.offered_a) == (pytest.approx(duty_for_current(10.0)), 10.0)
    assert rig.status.binding_limit == "ocpp"
    assert rig.status.contactor_closed


@pytest.mark.parametrize(
    ("state", "ventilation", "pwm_on"),
    [
        (CpState.A, False, False),  # no EV: steady +12 V even when allowed
        (CpState.B, False, True),
        (CpState.C, False, True),
        (CpState.D, True, True),
        (CpState.D, False, False),  # ventilation fault
    ],
)
def test_pwm_only_when_an_ev_is_connected(state: CpState, ventilation: bool, pwm_on: bool) -> None:
    rig = Rig(EvseConfig(tick_s=TICK, ventilation_available=ventilation))
    rig.pilot.change(state)
    rig.evse.allow()
    rig.run(0.1)
    assert (rig.status.pwm_duty < 100.0) is pwm_on
    assert rig.pilot.duty == rig.status.pwm_duty


def test_without_permission_nothing_is_offered_even_in_c() -> None:
    rig = Rig()
    rig.pilot.change(CpState.C)
    rig.run(10.0)
    assert (rig.status.pwm_duty, rig.status.offered_a, rig.status.contactor_closed) == (100.0, 0.0, False)
    assert not any(closed for _, closed in rig.contactor.log)


# -- closing and opening --------------------------------------------------------------------


@pytest.mark.parametrize(("state", "ventilation"), [(CpState.C, False), (CpState.D, True)])
def test_contactor_closes_on_the_first_step_that_sees_the_ev_ready(state: CpState, ventilation: bool) -> None:
    rig = Rig(EvseConfig(tick_s=TICK, ventilation_available=ventilation))
    rig.pilot.change(CpState.B)
    rig.evse.allow()
    rig.run(0.5)
    changed_at = rig.pilot.change(state)
    closed_at = rig.run_until(lambda: rig.contactor.commanded, limit_s=3.0)
    took = closed_at - changed_at
    # two samples of debounce, one tick each
    assert took <= 2 * TICK + 1e-9, f"closed {took:.3f} s after B -> {state.value}"


@pytest.mark.parametrize("to_state", [CpState.B, CpState.A])
def test_contactor_opens_within_100_ms_when_the_ev_leaves_c(to_state: CpState) -> None:
    rig = charging_rig()
    changed_at = rig.pilot.change(to_state)
    rig.run(0.2)
    opened_at = rig.contactor.last_command(closed=False)
    took = opened_at - changed_at
    assert 0 < took <= 0.1, f"opened {took:.3f} s after C -> {to_state.value}"
    assert not rig.status.contactor_closed


def test_contactor_opens_within_100_ms_when_the_ev_leaves_d() -> None:
    rig = Rig(EvseConfig(tick_s=TICK, ventilation_available=True))
    rig.pilot.change(CpState.B)
    rig.evse.allow()
    rig.run(0.1)
    rig.pilot.change(CpState.D)
    rig.run(0.5)
    assert rig.contactor.commanded
    changed_at = rig.pilot.change(CpState.B)
    rig.run(0.2)
    took = rig.contactor.last_command(closed=False) - changed_at
    assert 0 < took <= 0.1, f"opened {took:.3f} s after D -> B"


def test_stop_switches_pwm_off_and_the_contactor_opens_when_the_ev_goes_to_b() -> None:
    rig = charging_rig()
    stopped_at = rig.clock.monotonic()
    rig.evse.stop()
    rig.run(TICK)
    pwm_off_took = rig.pilot.last_change_to(duty_is_off=True) - stopped_at
    assert pwm_off_took <= TICK + 1e-9, f"PWM off {pwm_off_took:.3f} s after stop()"
    assert rig.status.contactor_closed, "the EV may still draw current: wait for it to go to B"
    rig.run(0.3)
    changed_at = rig.pilot.change(CpState.B)
    rig.run(0.2)
    took = rig.contactor.last_command(closed=False) - changed_at
    assert took <= 0.1, f"opened {took:.3f} s after C -> B"
    assert not rig.status.charging_allowed


def test_contactor_is_forced_open_6_s_after_pwm_off_if_the_ev_stays_in_c() -> None:
    rig = charging_rig()
    rig.evse.stop()
    rig.run(10.0)
    pwm_off_at = rig.pilot.last_change_to(duty_is_off=True)
    took = rig.contactor.last_command(closed=False) - pwm_off_at
    assert 6.0 - 2 * TICK <= took <= 6.0, f"forced open {took:.3f} s after PWM off"
    assert rig.status.cp_state is CpState.C and rig.status.faults == frozenset()
    assert [closed for _, closed in rig.contactor.log].count(True) == 1, "must not close again without PWM"


def test_a_limit_below_6_a_while_charging_also_winds_down() -> None:
    rig = charging_rig()
    rig.limits.set("load_manager", 4.0)
    rig.run(10.0)
    took = rig.contactor.last_command(closed=False) - rig.pilot.last_change_to(duty_is_off=True)
    assert took <= 6.0, f"forced open {took:.3f} s after PWM off"
    rig.limits.set("load_manager", None)
    rig.run(0.1)
    assert rig.status.contactor_closed and rig.status.offered_a == 32.0


# -- pilot, diode, proximity and ventilation faults -----------------------------------------


def _break(rig: Rig, fault: EvseFault) -> None:
    pilot = rig.pilot
    if fault is EvseFault.PILOT:
        pilot.volts = 10.5
    elif fault is EvseFault.SHORT:
        pilot.change(CpState.E)
    elif fault is EvseFault.VENTILATION:
        pilot.change(CpState.D)
    elif fault is EvseFault.PROXIMITY:
        pilot.pp_ohms = 5000.0  # between every band (an open PP is a plug coming out instead)
    elif fault is EvseFault.DIODE:
        pilot.diode = False


@pytest.mark.parametrize(
    "fault",
    [EvseFault.PILOT, EvseFault.SHORT, EvseFault.VENTILATION, EvseFault.PROXIMITY, EvseFault.DIODE],
)
def test_a_pilot_side_fault_opens_at_once_and_stops_pwm(fault: EvseFault) -> None:
    rig = charging_rig()
    broken_at = rig.clock.monotonic()
    _break(rig, fault)
    rig.run(0.2)
    took = rig.contactor.last_command(closed=False) - broken_at
    assert took <= 0.1, f"{fault.value}: opened {took:.3f} s after the fault appeared"
    assert fault in rig.status.faults
    assert (rig.status.pwm_duty, rig.status.offered_a) == (100.0, 0.0)


def test_pilot_state_f_read_back_is_a_pilot_fault() -> None:
    rig = charging_rig()
    rig.pilot.change(CpState.F)
    rig.run(0.1)
    assert EvseFault.PILOT in rig.status.faults and not rig.contactor.commanded


@pytest.mark.parametrize(
    ("fault", "repair"),
    [
        (EvseFault.PILOT, lambda p: setattr(p, "volts", None)),
        (EvseFault.SHORT, lambda p: p.change(CpState.C)),
        (EvseFault.VENTILATION, lambda p: p.change(CpState.C)),
        (EvseFault.PROXIMITY, lambda p: setattr(p, "pp_ohms", 220.0)),
    ],
)
def test_a_condition_fault_clears_only_through_b(
    fault: EvseFault, repair: Callable[[FakePilot], None]
) -> None:
    """Back in C straight from the fault, charging must not resume; only after B."""
    rig = charging_rig()
    _break(rig, fault)
    rig.run(0.2)
    repair(rig.pilot)
    rig.pilot.change(CpState.C)
    rig.run(1.0)
    assert fault in rig.status.faults and not rig.contactor.commanded
    rig.pilot.change(CpState.B)
    rig.run(0.1)
    assert rig.status.faults == frozenset() and rig.status.pwm_duty < 100.0
    rig.pilot.change(CpState.C)
    rig.run(0.1)
    assert rig.contactor.commanded


def test_a_proximity_fault_holds_while_pp_is_out_of_band() -> None:
    rig = charging_rig()
    rig.pilot.pp_ohms = 2000.0
    rig.pilot.change(CpState.B)
    rig.run(0.5)
    assert EvseFault.PROXIMITY in rig.status.faults and rig.status.pwm_duty == 100.0


def test_an_empty_socket_is_not_a_proximity_fault() -> None:
    rig = Rig()
    rig.pilot.pp_ohms = math.inf
    rig.run(1.0)
    assert rig.status.faults == frozenset() and rig.status.cable_max_a is None


def test_diode_fault_holds_until_unplug() -> None:
    rig = charging_rig()
    rig.pilot.diode = False
    rig.run(0.1)
    rig.pilot.diode = True
    rig.pilot.change(CpState.B)
    rig.run(1.0)
    assert EvseFault.DIODE in rig.status.faults and rig.status.pwm_duty == 100.0
    rig.pilot.change(CpState.A)
    rig.run(0.1)
    assert rig.status.faults == frozenset()
    rig.pilot.change(CpState.B)
    rig.run(0.1)
    assert rig.status.pwm_duty < 100.0


def test_a_single_bad_diode_sample_is_not_a_fault() -> None:
    rig = charging_rig()
    rig.pilot.diode = False
    rig.run(TICK)
    rig.pilot.diode = True
    rig.run(1.0)
    assert rig.status.faults == frozenset() and rig.contactor.commanded


def test_diode_check_can_be_disabled() -> None:
    rig = Rig(EvseConfig(tick_s=TICK, diode_check=False))
    rig.pilot.diode = False
    rig.charge()
    assert rig.contactor.commanded


# -- RCD and emergency stop -----------------------------------------------------------------


def test_rcd_trip_opens_in_the_callback_before_any_step() -> None:
    rig = charging_rig()
    tripped_at = rig.clock.monotonic()
    rig.faults.trip("rcd")
    assert not rig.contactor.commanded and rig.pilot.duty == 100.0, "must not wait for the loop"
    took = rig.contactor.last_command(closed=False) - tripped_at
    assert took == 0.0, f"opened {took:.3f} s after the trip"
    rig.run(TICK)
    assert rig.status.faults == {EvseFault.RCD}


def test_rcd_seen_only_by_polling_is_latched_too() -> None:
    rig = charging_rig()
    tripped_at = rig.clock.monotonic()
    rig.faults.present.add("rcd")
    rig.run(0.1)
    took = rig.contactor.last_command(closed=False) - tripped_at
    assert took <= TICK + 1e-9, f"opened {took:.3f} s after the input went active"
    assert EvseFault.RCD in rig.status.faults


def test_rcd_needs_a_manual_clear_by_default() -> None:
    rig = charging_rig()
    rig.faults.trip("rcd")
    rig.run(1.0)
    assert rig.evse.clear_faults() is False, "refused while the RCD still trips"
    rig.faults.release("rcd")
    rig.pilot.change(CpState.A)
    rig.run(600.0)
    assert EvseFault.RCD in rig.status.faults, "no automatic reclose, not even after unplug"
    assert rig.evse.clear_faults() is True
    rig.pilot.change(CpState.B)
    rig.run(0.1)
    assert rig.status.faults == frozenset() and rig.status.pwm_duty < 100.0


def test_rcd_automatic_reclose_counts_its_attempts() -> None:
    rig = charging_rig(config=EvseConfig(tick_s=TICK, rcd_auto_reclose_attempts=2, rcd_reclose_delay_s=60.0))
    reclosed_after: list[float] = []
    for _ in range(2):
        rig.faults.trip("rcd")
        tripped_at = rig.clock.monotonic()
        rig.faults.release("rcd")
        reclosed_at = rig.run_until(lambda: not rig.status.faults, limit_s=61.0)
        reclosed_after.append(reclosed_at - tripped_at)
        rig.run(0.1)
        assert rig.contactor.commanded, "EV still in C: charging resumes"
    assert all(60.0 <= t <= 60.0 + 2 * TICK for t in reclosed_after), f"reclosed after {reclosed_after} s"
    rig.faults.trip("rcd")
    rig.faults.release("rcd")
    rig.run(600.0)
    assert EvseFault.RCD in rig.status.faults, "attempts exhausted: manual clear only"
    assert rig.evse.clear_faults() is True


def test_a_failed_reclose_attempt_counts_and_waits_another_delay() -> None:
    rig = charging_rig(config=EvseConfig(tick_s=TICK, rcd_auto_reclose_attempts=2, rcd_reclose_delay_s=10.0))
    rig.faults.trip("rcd")  # the condition persists through the first attempt
    rig.run(10.5)
    assert rig.faults.resets == 1 and EvseFault.RCD in rig.status.faults
    rig.faults.release("rcd")
    rig.run(9.0)
    assert EvseFault.RCD in rig.status.faults, "the next attempt waits a full delay"
    rig.run(1.0)
    assert rig.faults.resets == 2 and rig.status.faults == frozenset()


def test_emergency_stop_latches_until_released_and_cleared() -> None:
    rig = charging_rig()
    stopped_at = rig.clock.monotonic()
    rig.faults.trip("emergency_stop")
    assert rig.contactor.last_command(closed=False) == stopped_at
    rig.pilot.change(CpState.B)
    rig.run(1.0)
    assert rig.status.faults == {EvseFault.EMERGENCY_STOP}
    assert rig.evse.clear_faults() is False
    rig.faults.release("emergency_stop")
    assert rig.evse.clear_faults() is True
    rig.run(0.1)
    assert rig.status.faults == frozenset() and rig.status.pwm_duty < 100.0


def test_an_unknown_fault_input_is_treated_as_an_emergency_stop() -> None:
    rig = charging_rig()
    rig.faults.trip("overtemperature")
    rig.run(TICK)
    assert not rig.contactor.commanded and rig.status.faults == {EvseFault.EMERGENCY_STOP}


# -- contactor feedback ---------------------------------------------------------------------


def test_a_contactor_that_does_not_close_is_a_mismatch() -> None:
    rig = Rig()
    rig.contactor.aux_stuck_open = True
    rig.pilot.change(CpState.B)
    rig.evse.allow()
    rig.run(0.1)
    rig.pilot.change(CpState.C)
    closed_at = rig.run_until(lambda: rig.contactor.commanded, limit_s=1.0)
    faulted_at = rig.run_until(lambda: bool(rig.status.faults), limit_s=1.0)
    took = faulted_at - closed_at
    assert 0.2 <= took <= 0.2 + TICK + 1e-9, f"mismatch flagged {took:.3f} s after closing"
    assert rig.status.faults == {EvseFault.CONTACTOR_MISMATCH} and not rig.contactor.commanded
    assert rig.status.pwm_duty == 100.0


def test_feedback_within_the_settle_time_is_fine() -> None:
    rig = charging_rig(contactor_settle_s=0.15)
    rig.pilot.change(CpState.B)
    rig.run(1.0)
    assert rig.status.faults == frozenset() and rig.status.contactor_feedback is False


def test_a_contactor_that_drops_out_while_charging_is_a_mismatch() -> None:
    rig = charging_rig()
    rig.contactor.aux_stuck_open = True
    rig.run(TICK)
    assert rig.status.faults == {EvseFault.CONTACTOR_MISMATCH} and not rig.contactor.commanded


def test_welded_contactor_is_latched_and_never_cleared_automatically() -> None:
    rig = charging_rig()
    rig.contactor.welded = True
    changed_at = rig.pilot.change(CpState.B)
    detected_at = rig.run_until(lambda: bool(rig.status.faults), limit_s=1.0)
    took = detected_at - changed_at
    assert took <= 0.1 + 0.2 + TICK, f"weld detected {took:.3f} s after C -> B"
    assert rig.status.faults == {EvseFault.WELDED} and rig.status.pwm_duty == 100.0
    rig.pilot.change(CpState.A)
    rig.run(600.0)
    assert rig.status.faults == {EvseFault.WELDED}, "unplugging does not clear a weld"
    assert rig.evse.clear_faults() is False, "refused while the aux contact shows closed"
    rig.contactor.welded = False  # the technician replaced the contactor
    assert rig.evse.clear_faults() is True
    rig.run(TICK)
    assert rig.status.faults == frozenset()


def test_a_weld_is_detected_at_start_up() -> None:
    rig = Rig()
    rig.contactor.welded = True
    rig.run(0.3)
    assert rig.status.faults == {EvseFault.WELDED}


def test_without_an_aux_contact_the_feedback_check_is_skipped() -> None:
    rig = charging_rig(aux=False)
    assert rig.status.contactor_feedback is None
    rig.pilot.change(CpState.B)
    rig.run(1.0)
    assert rig.status.faults == frozenset()


# -- sessions, status, robustness -----------------------------------------------------------


def test_unplug_resets_the_session_but_not_latched_faults() -> None:
    rig = charging_rig()
    rig.pilot.diode = False
    rig.run(0.1)
    rig.faults.trip("rcd")
    rig.faults.release("rcd")
    rig.pilot.diode = True
    rig.pilot.change(CpState.A)
    rig.run(0.1)
    assert rig.status.faults == {EvseFault.RCD}
    assert rig.status.cp_state is CpState.A and rig.status.pwm_duty == 100.0


def test_on_status_is_called_on_changes_only() -> None:
    rig = Rig()
    rig.run(1.0)
    assert len(rig.statuses) == 1 and rig.statuses[0].cp_state is CpState.A
    rig.pilot.change(CpState.B)
    rig.run(1.0)
    assert [s.cp_state for s in rig.statuses] == [CpState.A, CpState.B]
    rig.evse.allow()
    rig.run(1.0)
    assert len(rig.statuses) == 3 and rig.statuses[-1].charging_allowed and rig.statuses[-1].pwm_duty < 100
    assert rig.statuses[-1].timestamp == pytest.approx(2.01)


def test_a_failing_on_status_callback_does_not_stop_the_loop() -> None:
    rig = Rig()

    def broken(status: EvseStatus) -> None:
        raise RuntimeError("subscriber bug")

    rig.evse.on_status = broken
    rig.pilot.change(CpState.B)
    rig.run(0.1)
    assert rig.status.cp_state is CpState.B


def test_an_exception_in_step_opens_the_contactor_and_the_loop_goes_on() -> None:
    rig = charging_rig()
    failed_at = rig.clock.monotonic() + TICK
    rig.pilot.fail_reads = 1
    rig.run(TICK)  # must not raise
    assert rig.contactor.last_command(closed=False) == pytest.approx(failed_at)
    assert rig.pilot.duty == 100.0 and rig.status.faults == {EvseFault.INTERNAL}
    assert rig.evse.last_step_monotonic == pytest.approx(failed_at)
    rig.run(1.0)
    assert rig.evse.last_step_monotonic == pytest.approx(failed_at + 1.0)
    assert not rig.contactor.commanded, "no re-close straight from C after an error"
    rig.pilot.change(CpState.B)
    rig.run(0.1)
    rig.pilot.change(CpState.C)
    rig.run(0.1)
    assert rig.status.faults == frozenset() and rig.contactor.commanded


def test_close_makes_the_outputs_safe_and_steps_do_nothing_after() -> None:
    rig = charging_rig()
    rig.evse.close()
    assert not rig.contactor.commanded and rig.pilot.duty == 100.0
    commands = len(rig.contactor.log)
    rig.run(1.0)
    assert len(rig.contactor.log) == commands and not rig.contactor.commanded


class SteppingClock(ManualClock):
    """A ManualClock whose blocking sleep moves time itself, so the loop thread runs alone."""

    def sleep_blocking(self, seconds: float) -> None:
        self.advance(seconds)


def test_the_loop_thread_charges_and_close_stops_it() -> None:
    clock = SteppingClock()
    pilot, contactor, faults = FakePilot(clock), FakeContactor(clock), FakeFaults()
    limits = LimitClaims()
    limits.set("station", 16.0)
    closed = threading.Event()

    def on_status(status: EvseStatus) -> None:
        if status.contactor_closed:
            closed.set()

    evse = EvseController(pilot, contactor, faults, clock, limits, EvseConfig(tick_s=TICK), on_status)
    pilot.ev_state = CpState.C
    evse.allow()
    evse.start()
    with pytest.raises(RuntimeError):
        evse.start()
    assert closed.wait(timeout=10.0), "the loop thread never closed the contactor"
    evse.close()
    assert not contactor.commanded and pilot.duty == 100.0
    assert not [t for t in threading.enumerate() if t.name == "evse-connector-1"], "loop thread still running"
    assert evse.last_step_monotonic > 0


# -- against the physical simulation --------------------------------------------------------


class SimRig:
    """The controller on hal.sim.world.SimWorld; records when the EV's state and the coil changed."""

    def __init__(self, ev: SimEV | None = None, config: EvseConfig | None = None, **world_kw: object) -> None:
        self.clock = ManualClock()
        self.world = SimWorld(self.clock, ev=ev, **world_kw)  # type: ignore[arg-type]
        self.limits = LimitClaims()
        self.limits.set("station", 32.0)
        self.evse = EvseController(self.world.pilot, self.world.contactor, self.world.faults, self.clock,
                                   self.limits, config or EvseConfig(tick_s=TICK))
        self.events: list[tuple[float, str]] = []  # (earliest time it can have happened, what)

    def run(self, seconds: float) -> None:
        world = self.world
        for _ in range(round(seconds / TICK)):
            before = self.clock.monotonic()
            seen = (world.ev.state, world.contactor.commanded)
            self.clock.advance(TICK)
            if world.ev.state != seen[0]:
                self.events.append((before, f"ev {world.ev.state}"))
            self.evse.step()
            if world.contactor.commanded != seen[1]:
                self.events.append((self.clock.monotonic(), "close" if world.contactor.commanded else "open"))

    def when(self, what: str) -> float:
        return next(t for t, w in reversed(self.events) if w == what)

    def charge(self) -> SimRig:
        self.world.plug_in()
        self.evse.allow()
        self.run(2.0)
        assert self.world.contactor.closed and self.world.ev.current_a > 0, self.evse.status
        return self


def test_sim_session_from_plug_in_to_stop() -> None:
    rig = SimRig().charge()
    took = rig.when("close") - rig.when("ev C")
    assert took <= 3.0, f"closed {took:.3f} s after B -> C"
    energy_before = rig.world.meter.energy_wh
    rig.run(60.0)
    assert rig.world.meter.energy_wh > energy_before
    rig.evse.stop()
    rig.run(1.0)
    took = rig.when("open") - rig.when("ev B")
    assert took <= 0.1, f"opened {took:.3f} s after C -> B"
    assert rig.world.ev.current_a == 0.0 and not rig.world.contactor.closed
    assert rig.evse.status.faults == frozenset()


def test_sim_unplug_while_charging_opens_within_100_ms() -> None:
    rig = SimRig().charge()
    unplugged_at = rig.clock.monotonic()
    rig.world.unplug()
    rig.run(0.5)
    took = rig.when("open") - unplugged_at
    assert took <= 0.1, f"opened {took:.3f} s after C -> A"
    assert rig.evse.status.cp_state is CpState.A and rig.evse.status.cable_max_a is None


def test_sim_full_battery_ends_the_charge() -> None:
    rig = SimRig(SimEV(capacity_wh=1000.0, soc=0.99)).charge()
    rig.run(30.0)
    took = rig.when("open") - rig.when("ev B")
    assert took <= 0.1, f"opened {took:.3f} s after the full EV went to B"
    assert rig.world.ev.soc == pytest.approx(1.0)


def test_sim_rcd_trip_cuts_the_current() -> None:
    rig = SimRig().charge()
    rig.world.faults.trip("rcd")
    assert not rig.world.contactor.commanded
    rig.run(0.05)
    assert rig.world.ev.current_a == 0.0 and rig.evse.status.faults == {EvseFault.RCD}
    rig.world.faults.release("rcd")
    assert rig.evse.clear_faults() is True
    rig.run(2.0)
    assert rig.world.contactor.closed, "the EV stayed plugged in: charging resumes"


def test_sim_welded_contactor_is_detected_at_the_end_of_the_charge() -> None:
    rig = SimRig().charge()
    rig.world.contactor.weld()
    rig.evse.stop()
    rig.run(1.0)
    assert rig.evse.status.faults == {EvseFault.WELDED}
    assert rig.evse.clear_faults() is False


def test_sim_broken_aux_contact_is_a_mismatch() -> None:
    rig = SimRig().charge()
    rig.world.contactor.break_aux()
    rig.run(0.1)
    assert rig.evse.status.faults == {EvseFault.CONTACTOR_MISMATCH} and not rig.world.contactor.commanded


@pytest.mark.parametrize(
    ("ev", "fault"),
    [
        (SimEV(diode=False), EvseFault.DIODE),
        (SimEV(needs_ventilation=True), EvseFault.VENTILATION),
    ],
)
def test_sim_ev_faults_keep_the_contactor_open(ev: SimEV, fault: EvseFault) -> None:
    rig = SimRig(ev)
    rig.world.plug_in()
    rig.evse.allow()
    rig.run(3.0)
    assert fault in rig.evse.status.faults
    assert not any(w == "close" for _, w in rig.events) and rig.world.meter.energy_wh == 0.0


def test_sim_short_circuit_while_charging() -> None:
    rig = SimRig().charge()
    rig.world.ev.short_circuit = True
    shorted_at = rig.clock.monotonic()
    rig.run(0.2)
    took = rig.when("open") - shorted_at
    assert took <= 0.1, f"opened {took:.3f} s after the CP-PE short"
    assert rig.evse.status.faults == {EvseFault.SHORT}


def test_sim_ventilated_station_charges_an_ev_in_d() -> None:
    rig = SimRig(SimEV(needs_ventilation=True), EvseConfig(tick_s=TICK, ventilation_available=True)).charge()
    assert rig.evse.status.cp_state is CpState.D


def test_sim_cable_rating_limits_the_offer() -> None:
    rig = SimRig(cable_ohms=680.0).charge()
    status = rig.evse.status
    assert (status.cable_max_a, status.offered_a, status.binding_limit) == (20.0, 20.0, "cable")


# -- unplugging: the plug's PP contact breaks before CP -------------------------------------


def test_pp_opening_while_charging_stops_energy_at_once_without_a_fault() -> None:
    rig = charging_rig()
    pulled = rig.clock.monotonic()
    rig.pilot.pp_ohms = math.inf  # the plug is coming out; CP still reads C
    rig.run(TICK)
    opened = rig.contactor.last_command(False)
    assert not rig.contactor.commanded and rig.pilot.duty == 100.0
    assert opened - pulled <= TICK + 1e-9, f"contactor opened {opened - pulled:.3f} s after PP opened"
    rig.pilot.change(CpState.A)
    rig.pilot.pp_ohms = None
    rig.run(0.1)
    assert all(not s.faults for s in rig.statuses), "an unplug is not reported as a fault"


def test_pp_open_that_lasts_is_a_proximity_fault() -> None:
    rig = Rig()
    rig.pilot.change(CpState.B)
    rig.evse.allow()
    rig.pilot.pp_ohms = math.inf  # a cable without its PP resistor
    rig.run(1.0)
    assert rig.status.faults == frozenset() and rig.pilot.duty == 100.0
    rig.run(1.5)
    assert rig.status.faults == frozenset({EvseFault.PROXIMITY})
    rig.pilot.change(CpState.A)
    rig.pilot.pp_ohms = None
    rig.run(0.1)
    assert rig.status.faults == frozenset()


def test_a_change_is_decided_on_the_positive_plateau_alone_and_the_rest_waits_for_it() -> None:
    rig = charging_rig()
    low_before, pp_before = rig.pilot.low_reads, rig.pilot.pp_reads
    rig.pilot.change(CpState.B)
    rig.clock.advance(TICK)
    rig.evse.step()  # sees B once
    assert rig.contactor.commanded
    rig.evse.step()  # confirms B: opens
    assert not rig.contactor.commanded
    assert (rig.pilot.low_reads, rig.pilot.pp_reads) == (low_before, pp_before), "only CP+ was read"
    rig.clock.advance(TICK)
    rig.evse.step()  # the next full step reads the negative plateau and PP again
    assert (rig.pilot.low_reads, rig.pilot.pp_reads) == (low_before + 1, pp_before + 1)


def test_a_flickering_pilot_still_has_its_pp_read() -> None:
    from chargepoint.safety.sampling import PP_DEFER_STEPS

    rig = charging_rig()
    pp_before = rig.pilot.pp_reads
    for step in range(4 * (PP_DEFER_STEPS + 1)):
        rig.pilot.change(CpState.B if step % 2 == 0 else CpState.C)  # never twice in a row
        rig.clock.advance(TICK)
        rig.evse.step()
    assert rig.pilot.pp_reads - pp_before >= 3


class RecordingClock(SteppingClock):
    """Records how long the loop asked to sleep after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []

    def sleep_blocking(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        super().sleep_blocking(seconds if seconds > 0 else 0.0005)  # a conversion's time


def test_a_new_pilot_state_is_confirmed_without_waiting_a_tick() -> None:
    clock = RecordingClock()
    pilot, contactor, faults = FakePilot(clock), FakeContactor(clock), FakeFaults()
    limits = LimitClaims()
    limits.set("station", 16.0)
    evse = EvseController(pilot, contactor, faults, clock, limits, EvseConfig(tick_s=TICK))
    pilot.ev_state = CpState.C
    evse.allow()
    evse.start()
    try:
        deadline = threading.Event()
        for _ in range(1000):
            if contactor.commanded:
                break
            deadline.wait(0.005)
        assert contactor.commanded
        changed = pilot.change(CpState.B)
        for _ in range(1000):
            if not contactor.commanded:
                break
            deadline.wait(0.005)
        opened = contactor.last_command(False)
    finally:
        evse.close()
    assert 0.0 in clock.sleeps, "the confirming sample was taken at once"
    assert opened - changed <= TICK + 0.001, f"opened {opened - changed:.4f} s after C -> B"


# -- output tests for commissioning (relay test, pilot test) --------------------------------


def test_relay_test_clicks_the_contactor_with_no_ev_and_ends_by_itself() -> None:
    rig = Rig()
    rig.run(0.1)
    assert rig.evse.begin_output_test(contactor=True, hold_s=0.5) is None
    rig.run(TICK)
    assert rig.contactor.commanded and rig.evse.output_test_active
    rig.run(0.2)
    assert rig.status.contactor_feedback is True and rig.status.faults == frozenset()
    rig.run(0.4)
    assert not rig.contactor.commanded and not rig.evse.output_test_active, "hold time over"


def test_output_tests_are_refused_with_an_ev_a_fault_or_permission() -> None:
    rig = Rig()
    rig.pilot.change(CpState.B)
    rig.run(0.1)
    assert "state A" in (rig.evse.begin_output_test(contactor=True) or "")
    rig.pilot.change(CpState.A)
    rig.evse.allow()
    rig.run(0.1)
    assert "permission" in (rig.evse.begin_output_test(contactor=True) or "")
    rig.evse.stop()
    rig.faults.trip("rcd")
    rig.run(0.1)
    assert "faulted" in (rig.evse.begin_output_test(duty=50.0) or "")
    assert not rig.contactor.commanded


def test_an_ev_arriving_during_a_relay_test_ends_it_on_that_step() -> None:
    rig = Rig()
    rig.run(0.1)
    rig.evse.begin_output_test(contactor=True, hold_s=5.0)
    rig.run(0.2)
    rig.pilot.change(CpState.B)
    rig.run_until(lambda: not rig.contactor.commanded, limit_s=0.1)
    assert not rig.evse.output_test_active


def test_a_relay_whose_aux_does_not_follow_fails_the_test_as_a_fault() -> None:
    rig = Rig()
    rig.contactor.aux_stuck_open = True
    rig.run(0.1)
    rig.evse.begin_output_test(contactor=True, hold_s=2.0)
    rig.run(0.5)
    assert EvseFault.CONTACTOR_MISMATCH in rig.status.faults
    assert not rig.contactor.commanded and not rig.evse.output_test_active


def test_pilot_test_drives_the_requested_duty_and_reads_it_back() -> None:
    rig = Rig()
    rig.run(0.1)
    assert rig.evse.begin_output_test(duty=50.0, hold_s=1.0) is None
    rig.run(0.05)
    assert rig.pilot.duty == 50.0 and rig.status.pwm_duty == 50.0
    assert rig.evse.pilot_levels == PilotLevels(12.0, -12.0)
    rig.evse.end_output_test()
    rig.run(TICK)
    assert rig.pilot.duty == 100.0
