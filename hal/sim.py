"""A physical simulation of one connector's hardware.

This is how the product runs on a laptop, in CI and in the demo, so it behaves
like the real thing rather than like a mock: the EV decodes the PWM duty cycle
per IEC 61851-1, closes S2 after a reaction time, draws current only through
closed contacts, fills its battery and stops when full; the contactor needs a
settle time; the meter integrates energy.

Time comes from an injected :class:`hal.clock.Clock`. Physics is integrated
lazily up to ``clock.monotonic()`` whenever anything is read or changed, so the
same code runs under a real, a scaled or a manual clock. Between two events the
current is constant, so the integration is exact: every change first integrates
up to now with the old state, and events that fall inside a long interval (S2
switching, contacts settling, the battery becoming full) split it at the exact
moment they happen.

One re-entrant lock guards the whole world because the safety-loop thread and
the asyncio thread use it at the same time. Callbacks (fault trips, card taps)
run outside the lock so that they may call back into the world, or take their
own locks, without deadlocking.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from hal.clock import Clock
from hal.interfaces import MeterFailure, MeterFailureKind, MeterReading, PilotLevels

PILOT_V = 12.0
"""Amplitude of the pilot generator (+/-12 V)."""

_HIGH_PLATEAU_V = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0}
"""Positive pilot plateau for each EV state, set by the EV's resistors."""


def offered_current_a(duty_percent: float) -> float | None:
    """The current an EV reads from the pilot's duty cycle (IEC 61851-1, table A.8).

    Returns ``None`` where the duty cycle does not allow charging: a steady
    output (0 or 100 %), 3-7 % (digital communication, which this EV does not
    speak) and the undefined gaps in between.
    """
    if 8.0 <= duty_percent < 10.0:
        return 6.0
    if 10.0 <= duty_percent <= 85.0:
        return duty_percent * 0.6
    if 85.0 < duty_percent <= 97.0:
        return min((duty_percent - 64.0) * 2.5, 80.0)
    return None


class SimEV:
    """An electric vehicle at the end of the cable.

    Its parameters are fixed at construction; what changes while it is plugged
    in (S2, the state of charge, the current drawn) follows from the pilot and
    the contactor, and is read through the properties. Once the EV is given to
    a :class:`SimWorld`, every read and change goes through the world's lock
    and brings its physics up to date first.
    """

    def __init__(
        self,
        *,
        max_current_a: float = 16.0,
        phases: int = 3,
        capacity_wh: float = 60_000.0,
        soc: float = 0.5,
        target_soc: float = 1.0,
        diode: bool = True,
        needs_ventilation: bool = False,
        reaction_s: float = 0.3,
    ) -> None:
        if max_current_a <= 0:
            raise ValueError("max_current_a must be positive")
        if phases not in (1, 3):
            raise ValueError("phases must be 1 or 3")
        if capacity_wh <= 0:
            raise ValueError("capacity_wh must be positive")
        if not 0.0 <= soc <= 1.0 or not 0.0 <= target_soc <= 1.0:
            raise ValueError("soc and target_soc must be within 0..1")
        if reaction_s < 0:
            raise ValueError("reaction_s must not be negative")
        self.max_current_a = max_current_a
        self.phases = phases
        self.capacity_wh = capacity_wh
        self.target_soc = target_soc
        self.needs_ventilation = needs_ventilation
        self.reaction_s = reaction_s
        self._soc = soc
        self._diode = diode
        self._short_circuit = False
        self._plugged = False
        self._s2_closed = False
        self._s2_due: float | None = None
        self._world: SimWorld | None = None

    def _synced(self) -> AbstractContextManager[None]:
        """The world's lock with physics brought up to date; nothing if unattached."""
        return nullcontext() if self._world is None else self._world._synced()

    @property
    def plugged(self) -> bool:
        with self._synced():
            return self._plugged

    @property
    def soc(self) -> float:
        """State of charge, 0..1."""
        with self._synced():
            return self._soc

    @property
    def s2_closed(self) -> bool:
        with self._synced():
            return self._s2_closed

    @property
    def current_a(self) -> float:
        """Current per phase that the EV draws right now."""
        if self._world is None:
            return 0.0
        with self._synced():
            return self._world._current_a()

    @property
    def state(self) -> str:
        """IEC 61851 state as set by the EV's resistors: "A", "B", "C" or "D".

        A short circuit does not change it: the short is a fault in the wiring,
        not a state the EV signals.
        """
        with self._synced():
            if not self._plugged:
                return "A"
            if not self._s2_closed:
                return "B"
            return "D" if self.needs_ventilation else "C"

    @property
    def diode(self) -> bool:
        """Whether the EV's pilot diode is present (False simulates a diode fault)."""
        with self._synced():
            return self._diode

    @diode.setter
    def diode(self, present: bool) -> None:
        with self._synced():
            self._diode = present

    @property
    def short_circuit(self) -> bool:
        """A CP-PE short in the cable or inlet: the pilot reads 0 V (state E).

        The EV then sees no PWM and behaves as if charging was not allowed.
        """
        with self._synced():
            return self._short_circuit

    @short_circuit.setter
    def short_circuit(self, shorted: bool) -> None:
        with self._synced():
            self._short_circuit = shorted

    def plug_in(self) -> None:
        with self._synced():
            self._plugged = True

    def unplug(self) -> None:
        """Pull the plug: state A and no current at once, S2 falls open."""
        with self._synced():
            self._plugged = False
            self._s2_closed = False
            self._s2_due = None

    def _wants_to_draw(self) -> bool:
        """Whether S2 is closed and the battery still takes energy."""
        return self._plugged and self._s2_closed and self._soc < self.target_soc

    def _react(self, now: float, offered_a: float | None) -> None:
        """Decide about S2 given what the EV sees on the pilot.

        The EV wants S2 closed while it is allowed to charge and not full; a
        change of mind takes effect ``reaction_s`` after it arose, and is
        forgotten if the reason goes away before then.
        """
        allowed = offered_a is not None
        wants_s2 = self._plugged and allowed and self._soc < self.target_soc
        if wants_s2 == self._s2_closed:
            self._s2_due = None
        elif self._s2_due is None:
            self._s2_due = now + self.reaction_s


class SimPilot:
    """The pilot generator and its read-back, as seen through the EV's circuit.

    The output is one duty cycle: 100 % is a steady +12 V, 0 % a steady -12 V
    (which is what :meth:`set_negative` drives), anything in between is PWM.
    """

    def __init__(self, world: SimWorld, cable_ohms: float | None) -> None:
        self._world = world
        self._cable_ohms = cable_ohms
        self._duty = 100.0

    @property
    def duty_percent(self) -> float:
        """The duty cycle being driven (100.0 steady +12 V, 0.0 steady -12 V)."""
        with self._world._synced():
            return self._duty

    def set_pwm(self, duty_percent: float) -> None:
        if not 0.0 <= duty_percent <= 100.0:
            raise ValueError(f"duty cycle {duty_percent!r} is outside 0..100 %")
        with self._world._synced():
            self._duty = float(duty_percent)

    def set_negative(self) -> None:
        with self._world._synced():
            self._duty = 0.0

    def read(self) -> PilotLevels:
        """The plateaus a peak detector would see.

        A short to PE wins over everything, the generator included, because it
        sits behind the generator's 1 kOhm source resistor.
        """
        with self._world._synced():
            ev = self._world.ev
            if ev._short_circuit:
                return PilotLevels(0.0, 0.0)
            if self._duty == 0.0:
                return PilotLevels(-PILOT_V, -PILOT_V)
            high = _HIGH_PLATEAU_V[ev.state]
            if self._duty == 100.0:
                return PilotLevels(high, high)
            # With PWM on, the negative half only sees the EV's resistors when
            # its diode is missing; then it mirrors the positive plateau.
            if ev._plugged and not ev._diode:
                return PilotLevels(high, -high)
            return PilotLevels(high, -PILOT_V)

    def read_proximity_ohms(self) -> float | None:
        """The cable's PP resistor while plugged; None when tethered or unplugged."""
        with self._world._synced():
            return self._cable_ohms if self._world.ev._plugged else None


class SimContactor:
    """A mains contactor: contacts and aux mirror follow the coil after settle_s."""

    def __init__(self, world: SimWorld, settle_s: float, has_aux: bool) -> None:
        self._world = world
        self._settle_s = settle_s
        self._has_aux = has_aux
        self._commanded = False
        self._contacts = False
        self._due: float | None = None
        self._welded = False
        self._aux_broken = False
        self.switch_count = 0
        """Coil command changes: the switching operations contactor life is rated in."""

    @property
    def commanded(self) -> bool:
        with self._world._synced():
            return self._commanded

    @property
    def closed(self) -> bool:
        """Whether the main contacts are actually closed right now."""
        with self._world._synced():
            return self._contacts

    def set_closed(self, closed: bool) -> None:
        with self._world._synced():
            if closed != self._commanded:
                self._commanded = closed
                self.switch_count += 1
                self._due = self._world._t + self._settle_s

    def feedback(self) -> bool | None:
        with self._world._synced():
            if not self._has_aux:
                return None
            return False if self._aux_broken else self._contacts

    def weld(self) -> None:
        """Fuse the main contacts: they stay closed whatever is commanded.

        Contacts that are open now fuse when they next close. Nothing un-welds
        them, as on the real thing.
        """
        with self._world._synced():
            self._welded = True

    def break_aux(self) -> None:
        """Break the auxiliary contact: feedback reads False from now on."""
        with self._world._synced():
            self._aux_broken = True

    def _settle(self, now: float) -> None:
        if self._due is not None and self._due <= now:
            self._due = None
            self._contacts = self._commanded or (self._welded and self._contacts)


class SimFaultInputs:
    """Fault inputs that trip on demand.

    A trip latches, as an RCD does: the fault stays active after the condition
    is gone (:meth:`release`) until :meth:`reset` re-arms it. These are signals
    only; opening the contactor is the controller's job.
    """

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._present: set[str] = set()
        self._latched: set[str] = set()
        self._callbacks: list[Callable[[str], None]] = []
        self.self_test_passes = True
        """Set False to simulate an RCD that no longer responds to its test pulse."""

    def active(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._present | self._latched)

    def on_trip(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def self_test(self) -> bool:
        return self.self_test_passes

    def reset(self) -> None:
        """Re-arm the latches; a condition still present stays active."""
        with self._lock:
            self._latched.clear()

    def trip(self, name: str = "rcd") -> None:
        """Make fault ``name`` present and latch it.

        On the edge (the fault was not active) every registered callback is
        called synchronously in the caller's thread, outside the world's lock.
        """
        with self._lock:
            edge = name not in self._present and name not in self._latched
            self._present.add(name)
            self._latched.add(name)
            callbacks = list(self._callbacks)
        if edge:
            for callback in callbacks:
                callback(name)

    def release(self, name: str) -> None:
        """The condition behind ``name`` is gone; the latch holds until reset."""
        with self._lock:
            self._present.discard(name)


class SimCardReader:
    """A card reader on which tests and the demo present cards with :meth:`tap`."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._callback: Callable[[str], None] | None = None

    def start(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            self._callback = callback

    def close(self) -> None:
        with self._lock:
            self._callback = None

    def tap(self, id_tag: str) -> None:
        """Present a card: calls the callback in the caller's thread if started."""
        with self._lock:
            callback = self._callback
        if callback is not None:
            callback(id_tag)


class SimConnectorLock:
    """The plug lock of a socket outlet; ``jam()`` makes it stop moving."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._locked = False
        self._jammed = False

    def set_locked(self, locked: bool) -> bool:
        with self._lock:
            if not self._jammed:
                self._locked = locked
            return self._locked == locked

    def locked(self) -> bool:
        with self._lock:
            return self._locked

    def jam(self) -> None:
        """The actuator stays where it is from now on (a broken lock motor)."""
        with self._lock:
            self._jammed = True


class SimMeter:
    """A three-phase energy meter upstream of the contactor.

    Voltages are those of the mains, present whatever the contactor does;
    current flows only on the phases the EV uses.
    """

    def __init__(self, world: SimWorld, voltage_v: float, frequency_hz: float, start_wh: float) -> None:
        self._world = world
        self._voltage_v = voltage_v
        self._frequency_hz = frequency_hz
        self._energy_wh = start_wh
        self._failures: deque[MeterFailureKind] = deque()
        self._closed = False

    @property
    def energy_wh(self) -> float:
        """The import register in Wh."""
        with self._world._synced():
            return self._energy_wh

    def fail_next(self, kind: MeterFailureKind, count: int = 1) -> None:
        """Make the next ``count`` reads fail with ``kind``, after any queued before."""
        if count < 0:
            raise ValueError("count must not be negative")
        with self._world._synced():
            self._failures.extend([kind] * count)

    async def read(self) -> MeterReading | MeterFailure:
        with self._world._synced():
            if self._closed:
                return MeterFailure(MeterFailureKind.DISCONNECTED, "simulated: closed")
            if self._failures:
                kind = self._failures.popleft()
                return MeterFailure(kind, f"simulated {kind.value}")
            world = self._world
            current = world._current_a()
            other = current if world.ev.phases == 3 else 0.0
            return MeterReading(
                timestamp=world._clock.time(),
                energy_import_wh=self._energy_wh,
                energy_export_wh=0.0,
                power_w=world._power_w(),
                currents_a=(current, other, other),
                voltages_v=(self._voltage_v,) * 3,
                frequency_hz=self._frequency_hz,
                power_factor=1.0 if current > 0 else None,
            )

    async def close(self) -> None:
        with self._world._synced():
            self._closed = True


class SimWorld:
    """One connector's hardware and the EV plugged into it, on a shared clock."""

    def __init__(
        self,
        clock: Clock,
        *,
        ev: SimEV | None = None,
        voltage_v: float = 230.0,
        frequency_hz: float = 50.0,
        cable_ohms: float | None = 220.0,
        contactor_settle_s: float = 0.03,
        contactor_aux: bool = True,
        meter_start_wh: float = 0.0,
    ) -> None:
        if voltage_v <= 0 or frequency_hz <= 0:
            raise ValueError("voltage_v and frequency_hz must be positive")
        if contactor_settle_s < 0 or meter_start_wh < 0:
            raise ValueError("contactor_settle_s and meter_start_wh must be >= 0")
        ev = SimEV() if ev is None else ev
        if ev._world is not None:
            raise ValueError("this SimEV already belongs to another SimWorld")
        self._clock = clock
        self._lock = threading.RLock()
        self._t = clock.monotonic()
        self._voltage_v = voltage_v
        self.ev = ev
        self.pilot = SimPilot(self, cable_ohms)
        self.contactor = SimContactor(self, contactor_settle_s, contactor_aux)
        self.faults = SimFaultInputs(self._lock)
        self.meter = SimMeter(self, voltage_v, frequency_hz, meter_start_wh)
        self.card_reader = SimCardReader(self._lock)
        #: A socket outlet (detachable cable, PP resistor present) has a plug
        #: lock; a tethered cable has none.
        self.lock = SimConnectorLock(self._lock) if cable_ohms is not None else None
        ev._world = self

    def update(self) -> None:
        """Integrate the physics up to ``clock.monotonic()``."""
        with self._synced():
            pass

    def plug_in(self) -> None:
        self.ev.plug_in()

    def unplug(self) -> None:
        self.ev.unplug()

    @contextmanager
    def _synced(self) -> Iterator[None]:
        """Hold the lock with physics up to date, before and after the body.

        Advancing again afterwards applies what the body made due at once
        (a zero settle or reaction time).
        """
        with self._lock:
            self._advance()
            yield
            self._advance()

    def _offered_a(self) -> float | None:
        """The current the EV reads from the pilot, ``None`` if it may not charge."""
        if self.ev._short_circuit:
            return None
        return offered_current_a(self.pilot._duty)

    def _current_a(self) -> float:
        """Current per phase flowing right now."""
        offered = self._offered_a()
        flowing = self.contactor._contacts and self.ev._wants_to_draw()
        if offered is None or not flowing:
            return 0.0
        return min(offered, self.ev.max_current_a)

    def _power_w(self) -> float:
        return self._voltage_v * self._current_a() * self.ev.phases

    def _apply_due(self) -> None:
        """Apply the events due at ``self._t`` and let the EV reconsider."""
        ev = self.ev
        self.contactor._settle(self._t)
        ev._react(self._t, self._offered_a())
        if ev._s2_due is not None and ev._s2_due <= self._t:
            ev._s2_closed = not ev._s2_closed
            ev._s2_due = None
            ev._react(self._t, self._offered_a())

    def _advance(self) -> None:
        """Integrate from ``self._t`` to now in steps of constant current.

        Each step ends at now or at the next event, whichever comes first: a
        pending contactor or S2 change, or the moment the battery reaches its
        target, computed exactly so that a long interval never overfills it.
        """
        now = self._clock.monotonic()
        ev = self.ev
        while True:
            self._apply_due()
            dues = (self.contactor._due, ev._s2_due)
            step_end = min([now, *(due for due in dues if due is not None)])
            power = self._power_w()
            remaining_wh = (ev.target_soc - ev._soc) * ev.capacity_wh
            full = False
            if power > 0:
                full_at = self._t + remaining_wh * 3600.0 / power
                if full_at <= step_end:
                    step_end, full = full_at, True
            if not full and step_end <= self._t:
                return
            if full:
                self.meter._energy_wh += remaining_wh
                ev._soc = ev.target_soc
            else:
                energy_wh = power * (step_end - self._t) / 3600.0
                self.meter._energy_wh += energy_wh
                ev._soc += energy_wh / ev.capacity_wh
            self._t = max(self._t, step_end)
