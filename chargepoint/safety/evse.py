"""The safety loop for one connector: IEC 61851 states, PWM, contactor, RCD, welding.

This is the only code that may close the contactor. It runs in its own thread
and decides from the hardware alone: the station may *ask* for charging
(``allow``/``stop``) and publish limits as named claims, but whether the
contactor closes depends on the pilot state, the fault inputs and the
contactor's own feedback, read here every tick. Nothing here waits for the
network or the asyncio loop.

The fault policy (which faults latch, which clear in A or B) is told in ``status.py``
beside the fault sets that carry it out.

One deliberate exception to "closed only in C/D": a technician's output test
(``output_test.py``) may click the contactor or step the PWM in state A.

While faulted the pilot is a steady +12 V (100 %), not the -12 V of state F:
with -12 V driven the EVSE could no longer read the EV's state, and would miss
the unplug that ends a session fault. The EV sees "not allowed to charge" either
way.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable

from chargepoint.safety import output_test, pace
from chargepoint.safety.heartbeat_check import HeartbeatCheck
from chargepoint.safety.iec61851 import (
    MAX_PWM_CURRENT_A,
    MIN_PWM_CURRENT_A,
    CpState,
    PilotClassifier,
    diode_ok,
    duty_for_current,
)
from chargepoint.safety.limits import LimitClaims
from chargepoint.safety.outputs import PWM_OFF, Outputs
from chargepoint.safety.phases import PhaseContactor, PhaseSwitch
from chargepoint.safety.proximity import ProximityWatch
from chargepoint.safety.rcd import RcdPolicy
from chargepoint.safety.sampling import PilotSampler
from chargepoint.safety.status import (
    CLEARED_IN_A_OR_B,
    LATCHED_FAULTS,
    PLUGGED,
    EvseConfig,
    EvseFault,
    EvseStatus,
    trip_fault,
)
from chargepoint.safety.ticktimes import TickTimes
from hal.clock import Clock
from hal.interfaces import Contactor, FaultInputs, Heartbeat, HeartbeatReadback, Pilot, PilotLevels, ShuntTrip

log = logging.getLogger(__name__)


#: Name of the limit claim this controller owns (the cable's PP rating).
CABLE_CLAIM = "cable"


class EvseController:
    """The safety loop of one connector.

    Hardware inputs are read at the start of each ``step`` without the lock;
    decisions and outputs happen under a lock shared with the RCD callback, so a
    trip reported from the backend's thread opens the contactor at once and the
    loop cannot close it again in between.
    """

    def __init__(
        self,
        pilot: Pilot,
        contactor: Contactor,
        faults: FaultInputs,
        clock: Clock,
        limits: LimitClaims,
        config: EvseConfig | None = None,
        on_status: Callable[[EvseStatus], None] | None = None,
        name: str = "connector-1",
        heartbeat: Heartbeat | None = None,
        shunt_trip: ShuntTrip | None = None,
        heartbeat_readback: HeartbeatReadback | None = None,
        phase_contactor: PhaseContactor | None = None,
    ) -> None:
        self._pilot = pilot
        self._contactor = contactor
        self._inputs = faults
        self._clock = clock
        self._limits = limits
        self._config = config = config or EvseConfig()
        #: Called from the loop thread whenever the status changes; may be replaced before start().
        self.on_status = on_status
        self.name = name
        self._classifier = PilotClassifier(config.bands, config.hysteresis_v, config.debounce_samples)
        self._sampler = PilotSampler(pilot, self._classifier)
        # RLock: a backend may call the trip callback synchronously from reset() or self_test().
        self._lock = threading.RLock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._shut = False

        now = clock.monotonic()
        self._allowed = False
        self._faults: set[EvseFault] = set()
        self._cp_state: CpState | None = None
        self._out = Outputs(pilot, contactor, name, now, heartbeat, shunt_trip)
        self._feedback: bool | None = None
        self._cable_a: float | None = None
        self._binding = ""
        self._diode_bad_samples = 0
        #: PP reads open while the pilot still shows an EV (see _check_proximity).
        self._cable_leaving = False
        self._proximity = ProximityWatch()
        self._rcd = RcdPolicy(config.rcd_auto_reclose_attempts, config.rcd_reclose_delay_s, now)
        #: The heartbeat circuit's pre-session check (passes at once without a read-back).
        self.heartbeat_check = HeartbeatCheck(heartbeat_readback if heartbeat is not None else None)
        self._last_step = now
        self._published_key: tuple[object, ...] | None = None
        self._levels: PilotLevels | None = None
        self._pp_ohms: float | None = None
        #: A technician's output test: what to drive, and until when (None: no test).
        self._test: output_test.OutputTest | None = None
        #: How long each step of the running loop takes (real time; for the metrics).
        self.tick_times = TickTimes()
        #: Why the last ``clear_faults`` refused (for a technician on the other end of the channel).
        self.clear_refusal: str | None = None
        #: Run by the loop's thread after each step and before its sleep (the supervisor collects
        #: garbage here, so a collection never lands inside a step).
        self.between_steps: Callable[[], None] | None = None
        #: The phase contactor, if any: only ever moved with KM1 open (phases.py); ``request`` it.
        self.phases = PhaseSwitch(phase_contactor, name)

        self._write_safe_outputs()
        faults.on_trip(self._on_trip)

    # -- requests from the station (any thread) -------------------------------------------

    def allow(self) -> None:
        """The station permits charging; the current comes from the limit claims."""
        with self._lock:
            self._allowed = True

    def stop(self) -> None:
        """Withdraw permission: PWM goes off on the next step; the contactor opens when
        the EV goes to B, or after ``pwm_off_contactor_timeout_s`` at the latest."""
        with self._lock:
            self._allowed = False

    def clear_faults(self) -> bool:
        """A technician clears latched faults after inspection; True if none remain.

        Refused (False, nothing changed) while the cause persists: the auxiliary
        contact still shows closed although the contactor is commanded open, or a
        fault input is still active after re-arming it.
        """
        with self._lock:
            latched = self._faults & LATCHED_FAULTS
            if not latched:
                return True
            if self._contactor.feedback():
                self.clear_refusal = f"{self.name}: contactor still shows closed; faults not cleared"
                log.warning("%s", self.clear_refusal)
                return False
            if latched & {EvseFault.RCD, EvseFault.EMERGENCY_STOP}:
                self._inputs.reset()
                still = self._inputs.active()
                if still:
                    self.clear_refusal = f"{self.name}: fault inputs still active: {sorted(still)}"
                    log.warning("%s", self.clear_refusal)
                    return False
            self._faults -= latched
            self._rcd.cleared()
            log.info("%s: faults cleared by technician: %s", self.name, sorted(f.value for f in latched))
            return True

    # -- the loop ---------------------------------------------------------------------------

    @property
    def status(self) -> EvseStatus:
        with self._lock:
            return self._snapshot()

    @property
    def pilot_levels(self) -> PilotLevels | None:
        """The pilot's plateaus as last read (for a technician's pilot test)."""
        return self._levels

    @property
    def proximity_ohms(self) -> float | None:
        """The PP resistance as last read (None: no PP circuit or no cable; inf: open), for the status."""
        return self._pp_ohms

    # -- output tests (commissioning: chargepoint relay test / pilot test) --------------------

    def begin_output_test(self, *, contactor: bool | None = None, duty: float | None = None,
                          hold_s: float = 2.0) -> str | None:
        """Let a technician drive the contactor or the pilot with no EV connected: applied by the loop
        under ``output_test.refusal`` (state A, no fault, no permission) for at most OUTPUT_TEST_MAX_S.
        Returns why it cannot start, or None. Feedback checks stay on: a wrong auxiliary contact latches."""
        bad = output_test.check_request(duty)
        if bad:
            return bad
        with self._lock:
            refusal = output_test.refusal(self._cp_state, self._faults, self._allowed)
            if refusal:
                return refusal
            until = self._clock.monotonic() + min(hold_s, output_test.OUTPUT_TEST_MAX_S)
            self._test = output_test.OutputTest(contactor, duty, until)
            # A technician's test, not a fault: INFO, so a healthy station does not look faulty after it.
            log.info("%s: output test: %s", self.name, self._test.describe())
            return None

    def end_output_test(self) -> None:
        with self._lock:
            self._test = None

    @property
    def output_test_active(self) -> bool:
        return self._test is not None

    def _drive_output_test(self, now: float) -> bool:
        """Apply a running output test; False (test over) when it may not go on."""
        self._test = output_test.drive(self._test, now, self._cp_state, self._faults, self._allowed,
                                       self._out, self.name)
        return self._test is not None

    @property
    def last_step_monotonic(self) -> float:
        """When ``step`` last ran, on the injected clock (for a watchdog)."""
        return self._last_step

    def start(self) -> None:
        """Run ``step`` every ``tick_s`` in a daemon thread."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name}: safety loop already started")
        self._thread = threading.Thread(target=self._run, name=f"evse-{self.name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the loop, open the contactor and set the pilot to a steady +12 V.

        The outputs are made safe before waiting for the thread, so a loop stuck
        in a slow read cannot delay it; a step still running afterwards sees
        ``_shut`` and does nothing.
        """
        self._stop_event.set()
        with self._lock:
            self._shut = True
            self._write_safe_outputs()
            self.phases.write_safe()
            self._out.stop_heartbeat()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stop_event.is_set():
            started = time.perf_counter()
            self.step()
            self.tick_times.observe(time.perf_counter() - started)
            if self.between_steps is not None:
                self.between_steps()
            self._clock.sleep_blocking(self.pause_s())

    def pause_s(self) -> float:
        """The sleep before the next step (pace.py)."""
        return pace.pause_s(self._config, confirming=self._classifier.confirming, idle=self.idle)

    @property
    def idle(self) -> bool:
        """No EV and nothing timed running: the loop may step at the idle pace (pace.py)."""
        with self._lock:
            return pace.idle(self._cp_state, self._out, self._feedback, self._test is not None,
                             self.phases.switching)

    def step(self) -> None:
        """One iteration of the loop. Never raises: on an error the contactor is
        commanded open, the pilot set to 100 %, an INTERNAL fault held, and the
        next step carries on. After ``close`` it reads but drives nothing."""
        try:
            self._step()
            alive = not self._shut
        except Exception:
            log.exception("%s: safety loop step failed; contactor opened", self.name)
            with self._lock:
                self._faults.add(EvseFault.INTERNAL)
                self._write_safe_outputs()
            alive = False  # a loop that keeps failing lets the hardware watchdog drop the coil
        if alive:
            with self._lock:
                if not self._shut and self.heartbeat_check.beating and self._out.beat():
                    self.heartbeat_check.beaten()
        self._last_step = self._clock.monotonic()
        self._publish()

    def _step(self) -> None:
        # Before each session, the RCD self-test, then the heartbeat circuit's check: both outside
        # the lock (they block or read the ADC), with the contactor open.
        before = self._before_session()
        self_test = self._inputs.self_test() if before and not self._rcd.self_tested else None
        now = self._clock.monotonic()
        heartbeat_failed = self.heartbeat_check.step(before and self._rcd.self_tested)
        sample = self._sampler.sample()
        feedback = self._contactor.feedback()
        active_inputs = self._inputs.active()
        with self._lock:
            if self._shut:
                return
            if self_test is not None:
                self._self_test(self_test, now)
            if heartbeat_failed is not None:
                log.error("%s: heartbeat check failed: %s", self.name, heartbeat_failed)
                self._latch(EvseFault.HEARTBEAT, now)
            self._feedback = feedback
            self._levels = sample.levels
            state = self._classifier.classify(sample.levels)
            self._cp_state = state
            self._check_pilot(state, sample.levels, diode=sample.low_measured)
            if sample.pp_read:
                self._pp_ohms = sample.pp_ohms
                self._check_proximity(state, sample.pp_ohms, now)
            self._check_inputs(active_inputs, now)
            self._check_contactor(feedback, now)
            self._drive(state, now)

    # -- checks (under the lock) -------------------------------------------------------------

    def _check_pilot(self, state: CpState | None, levels: PilotLevels, *, diode: bool = True) -> None:
        """The pilot's faults; the diode's only when this step measured the negative plateau."""
        if state is None or state is CpState.F:
            self._faults.add(EvseFault.PILOT)
        elif state is CpState.E:
            self._faults.add(EvseFault.SHORT)
        elif state is CpState.D and not self._config.ventilation_available:
            self._faults.add(EvseFault.VENTILATION)
        elif state in (CpState.A, CpState.B):
            self._faults -= CLEARED_IN_A_OR_B
        if state is CpState.A:
            self._end_session()
        # The levels were measured with the output of the previous step, which is self._out.duty.
        pwm_on = self._out.duty < PWM_OFF
        if diode and self._config.diode_check and state in PLUGGED and pwm_on:
            if diode_ok(levels, pwm_on, self._config.diode_tolerance_v):
                self._diode_bad_samples = 0
            else:
                self._diode_bad_samples += 1
                if self._diode_bad_samples >= self._config.debounce_samples:
                    self._faults.add(EvseFault.DIODE)

    def _end_session(self) -> None:
        """Unplugged: forget what belonged to this EV, but not latched faults."""
        self._faults.discard(EvseFault.DIODE)
        self._diode_bad_samples = 0
        self._rcd.new_session(EvseFault.RCD in self._faults)
        self.heartbeat_check.new_session()

    def _before_session(self) -> bool:
        """An EV is plugged in (as of the last step), the contactor is open, nothing is faulted."""
        return not self._out.closed and not self._faults and self._cp_state in PLUGGED and not self._shut

    def _self_test(self, passed: bool, now: float) -> None:
        """The contactor closes for a session only after the RCD showed it trips on its
        test input (backends without a test output pass at once). A failed test is an
        RCD fault, latched and recovered like a trip."""
        if passed:
            self._rcd.self_tested = True
            return
        log.error("%s: RCD self-test failed: the trip was not seen", self.name)
        self._latch(EvseFault.RCD, now)

    def _check_proximity(self, state: CpState | None, ohms: float | None, now: float) -> None:
        verdict = self._proximity.check(state, ohms, now)
        self._cable_leaving = verdict.leaving
        if verdict.fault:
            self._faults.add(EvseFault.PROXIMITY)
            if verdict.leaving:
                return  # a lasting open PP: the cable rating stays as it was
        elif verdict.fault is False:
            self._faults.discard(EvseFault.PROXIMITY)
        if verdict.cable_a != self._cable_a:
            self._cable_a = verdict.cable_a
            self._limits.set(CABLE_CLAIM, verdict.cable_a)

    def _check_inputs(self, active: frozenset[str], now: float) -> None:
        """Second line behind the trip callback: latch what the inputs show, and
        reclose after an RCD trip if the configuration allows it."""
        for name in active:
            self._latch(trip_fault(name), now)
        if EvseFault.RCD in self._faults and self._rcd.try_reclose(self._inputs, now, self.name):
            self._faults.discard(EvseFault.RCD)

    def _check_contactor(self, feedback: bool | None, now: float) -> None:
        if feedback is None or now - self._out.switched_at < self._config.contactor_settle_s:
            return
        if feedback and not self._out.closed:
            if EvseFault.WELDED not in self._faults:
                log.critical("%s: contactor welded (closed while commanded open)", self.name)
                self._out.trip_breaker(now)
            self._faults.add(EvseFault.WELDED)
        elif feedback != self._out.closed:
            self._faults.add(EvseFault.CONTACTOR_MISMATCH)

    def _latch(self, fault: EvseFault, now: float) -> None:
        if fault in self._faults:
            return
        log.error("%s: fault %s", self.name, fault.value)
        self._faults.add(fault)
        if fault is EvseFault.RCD:
            self._rcd.tripped(now)

    # -- outputs (under the lock) ------------------------------------------------------------

    def _drive(self, state: CpState | None, now: float) -> None:
        resolved = self._limits.resolve()
        self._binding = resolved.binding
        self._out.end_breaker_pulse(now)
        if self._drive_output_test(now):
            return
        if self._faults or self._cable_leaving:
            self._out.set_contactor(False, now)
            self._out.set_pwm(PWM_OFF, 0.0, now)
            self.phases.hold(now, self._out, self._feedback, faulted=bool(self._faults))
            return
        ready = state is CpState.C or (state is CpState.D and self._config.ventilation_available)
        if not ready:
            self._out.set_contactor(False, now)  # C -> B / A: open on the very step that sees it
        # No finite claim at all means nobody set a station rating: offer nothing rather than 80 A.
        switching_phases = self.phases.hold(now, self._out, self._feedback, faulted=False)
        offer = (
            self._allowed
            and not switching_phases
            and state in PLUGGED
            and MIN_PWM_CURRENT_A <= resolved.amps < math.inf
        )
        if offer:
            self._out.set_pwm(duty_for_current(resolved.amps), min(resolved.amps, MAX_PWM_CURRENT_A), now)
        else:
            self._out.set_pwm(PWM_OFF, 0.0, now)
        if ready and offer and self._rcd.self_tested and self.heartbeat_check.passed:
            self._out.set_contactor(True, now)
        elif self._out.closed and now >= self._pwm_off_deadline():
            log.warning("%s: EV stayed in C/D after PWM off; contactor forced open", self.name)
            self._out.set_contactor(False, now)

    def _pwm_off_deadline(self) -> float:
        """When a contactor still closed after PWM off must be opened. One tick early, so
        that a late tick still keeps within the standard's limit."""
        return self._out.pwm_off_since + self._config.pwm_off_contactor_timeout_s - self._config.tick_s

    def _write_safe_outputs(self) -> None:
        self._out.write_safe(self._clock.monotonic())

    def _on_trip(self, name: str) -> None:
        """FaultInputs callback, in the backend's thread: make safe first, then latch."""
        with self._lock:
            try:
                self._write_safe_outputs()
            finally:
                self._latch(trip_fault(name), self._clock.monotonic())

    # -- status --------------------------------------------------------------------------------

    def _snapshot(self) -> EvseStatus:
        return EvseStatus(
            cp_state=self._cp_state,
            pwm_duty=self._out.duty,
            offered_a=self._out.offered_a,
            contactor_closed=self._out.closed,
            contactor_feedback=self._feedback,
            faults=frozenset(self._faults),
            cable_max_a=self._cable_a,
            binding_limit=self._binding,
            charging_allowed=self._allowed,
            timestamp=self._last_step,
            phases=self.phases.phases,
        )

    def _publish(self) -> None:
        """Hand the status to ``on_status`` if anything but the timestamp changed."""
        with self._lock:
            # Compared as a plain tuple first: this runs 100 times a second and
            # a status object is only worth building when something changed.
            key = (self._cp_state, self._out.duty, self._out.offered_a, self._out.closed, self._feedback,
                   frozenset(self._faults), self._cable_a, self._binding, self._allowed, self.phases.phases)
            if key == self._published_key:
                return
            status = self._snapshot()
        self._published_key = key
        callback = self.on_status
        if callback is None:
            return
        try:
            callback(status)
        except Exception:
            log.exception("%s: on_status callback failed", self.name)
