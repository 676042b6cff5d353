"""A physical simulation of one connector's hardware.

This is how the product runs on a laptop, in CI and in the demo, so it behaves
like the real thing rather than like a mock: the EV decodes the PWM duty cycle
per IEC 61851-1, closes S2 after a reaction time, draws current only through
closed contacts, fills its battery and stops when full; the contactor needs a
settle time; the meter integrates energy.

Time comes from an injected :class:`hal.clock.Clock`. Physics is integrated
lazily up to ``clock.monotonic()``, so the same code runs under a real, a
scaled or a manual clock. Between two events the current is constant, so the
integration is exact: every change first integrates up to now with the old
state, and events that fall inside a long interval (S2 switching, contacts
settling, the battery becoming full) split it at the exact moment they happen.

Lazily means only when the answer depends on it. The world knows when its next
event is due; until then the pilot, contactor and EV states cannot change, so
reading them (the safety loop does, a hundred times a second) integrates
nothing. The energy (meter, state of charge) is integrated when it is read,
and every command integrates up to now with the old state before it changes
anything. Integrating on every read, before and after, cost the idle daemon
most of its CPU.

One re-entrant lock guards the whole world because the safety-loop thread and
the asyncio thread use it at the same time. Callbacks (fault trips, card taps)
run outside the lock so that they may call back into the world, or take their
own locks, without deadlocking.

The parts read and command through the world's public side (``synced``,
``exact``, ``changing``, ``current_a``, ``power_w``); the world integrates
through theirs (``SimEV.react``, ``SimContactor.settle``, ``SimMeter.add_energy``
...), which it calls with its lock held. No object touches another's private
attributes.

The world is this module; its parts live next to it, each with one job, and
are re-exported here so that ``from hal.sim.world import ...`` is the one way in:

* :mod:`hal.sim.ev`: :class:`SimEV`, the vehicle, what the pilot line reads
  with it at the end, and :func:`offered_current_a`, how it reads the duty cycle;
* :mod:`hal.sim.circuit`: :class:`SimPilot`, :class:`SimContactor` and
  :class:`SimMeter`, whose readings follow from the physics;
* :mod:`hal.sim.peripherals`: :class:`SimFaultInputs`, :class:`SimCardReader`
  and :class:`SimConnectorLock`, which only share the lock;
* :mod:`hal.sim.heartbeat`: :class:`SimHeartbeat`, the board's heartbeat charge
  pump and its read-back, which the safety loop checks before every session.
  It is driven by the loop's thread alone; the simulated contactor does not
  wait for it (a sped-up clock would stretch one late step past its hold-up).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from hal.clock import Clock
from hal.sim.circuit import SimContactor, SimMeter, SimPhaseContactor, SimPilot
from hal.sim.ev import PILOT_V, SimEV, offered_current_a
from hal.sim.heartbeat import SimHeartbeat
from hal.sim.peripherals import SimCardReader, SimConnectorLock, SimFaultInputs

__all__ = [
    "PILOT_V",
    "SimCardReader",
    "SimConnectorLock",
    "SimContactor",
    "SimEV",
    "SimFaultInputs",
    "SimHeartbeat",
    "SimMeter",
    "SimPilot",
    "SimWorld",
    "offered_current_a",
]


class _StateRead:
    """The context of a state read (``SimWorld.synced``): one reused object, no generator,
    because the safety loop makes several such reads a hundred times a second.

    It holds the world's lock, clock and integration as bound methods, and
    ``next_event``, which the world sets after each integration.
    """

    __slots__ = ("_acquire", "_release", "_monotonic", "_advance", "next_event")

    def __init__(self, lock: threading.RLock, monotonic: Callable[[], float],
                 advance: Callable[[], None], next_event: float) -> None:
        self._acquire = lock.acquire
        self._release = lock.release
        self._monotonic = monotonic
        self._advance = advance
        #: When the world's next event (settling, S2, battery full) is due; until then reads
        #: integrate nothing.
        self.next_event = next_event

    def __enter__(self) -> None:
        self._acquire()
        try:
            if self._monotonic() >= self.next_event:
                self._advance()
        except BaseException:
            self._release()
            raise

    def __exit__(self, *exc: object) -> None:
        self._release()


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
        phase_contactor: bool = False,
    ) -> None:
        if voltage_v <= 0 or frequency_hz <= 0:
            raise ValueError("voltage_v and frequency_hz must be positive")
        if contactor_settle_s < 0 or meter_start_wh < 0:
            raise ValueError("contactor_settle_s and meter_start_wh must be >= 0")
        ev = SimEV() if ev is None else ev
        ev.attach(self)
        self._clock = clock
        self._lock = threading.RLock()
        self._t = clock.monotonic()
        #: Integration steps taken (each a stretch of constant current): for tests and profiling.
        self.steps = 0
        self._state_read = _StateRead(self._lock, clock.monotonic, self._advance, self._t)
        self._voltage_v = voltage_v
        self.ev = ev
        self.pilot = SimPilot(self, cable_ohms)
        self.contactor = SimContactor(self, contactor_settle_s, contactor_aux)
        #: The optional second contactor for L2/L3 (None: the EV gets all three phases).
        self.phase_contactor = SimPhaseContactor(self) if phase_contactor else None
        self.faults = SimFaultInputs(self._lock)
        self.meter = SimMeter(self, voltage_v, frequency_hz, meter_start_wh)
        self.card_reader = SimCardReader(self._lock)
        #: The heartbeat's charge pump, pulsed by the safety loop and read back by its check.
        self.heartbeat = SimHeartbeat(clock.monotonic)
        #: A socket outlet (detachable cable, PP resistor present) has a plug
        #: lock; a tethered cable has none.
        self.lock = SimConnectorLock(self._lock) if cable_ohms is not None else None

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def integrated_to(self) -> float:
        """The instant the physics is integrated up to (``clock.monotonic()`` time)."""
        return self._t

    def update(self) -> None:
        """Integrate the physics up to ``clock.monotonic()``."""
        with self.exact():
            pass

    def plug_in(self) -> None:
        self.ev.plug_in()

    def unplug(self) -> None:
        self.ev.unplug()

    def synced(self) -> _StateRead:
        """Hold the lock with the discrete state (pilot, S2, contacts) up to date.

        For reads that do not depend on the energy: nothing is integrated unless
        an event is due by now, since nothing else changes those states.
        """
        return self._state_read

    @contextmanager
    def exact(self) -> Iterator[None]:
        """Hold the lock with everything, the energy included, integrated up to now."""
        with self._lock:
            self._advance()
            yield

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the lock for a change: integrate up to now with the old state first,
        and afterwards apply what the change made due at once (a zero settle or
        reaction time) and find the next event."""
        with self._lock:
            self._advance()
            yield
            self._advance()

    def _offered_a(self) -> float | None:
        """The current the EV reads from the pilot, ``None`` if it may not charge."""
        return self.ev.offered_a(self.pilot.output_duty())

    def current_a(self) -> float:
        """Current per phase flowing right now; the caller holds the lock (``synced``)."""
        offered = self._offered_a()
        flowing = self.contactor.conducts() and self.ev.wants_to_draw()
        if offered is None or not flowing:
            return 0.0
        return min(offered, self.ev.max_current_a)

    def supplied_phases(self) -> int:
        """Phases reaching the EV: 3, or 1 while the phase contactor is released."""
        contactor = self.phase_contactor
        return 3 if contactor is None else contactor.phases

    def power_w(self) -> float:
        """Power flowing right now, all phases; the caller holds the lock (``synced``)."""
        return self._voltage_v * self.current_a() * self.ev.phases

    def _apply_due(self) -> None:
        """Apply the events due at ``self._t`` and let the EV reconsider."""
        ev = self.ev
        self.contactor.settle(self._t)
        ev.react(self._t, self._offered_a())
        if ev.switch_s2(self._t):
            ev.react(self._t, self._offered_a())

    def _advance(self) -> None:
        """Integrate from ``self._t`` to now in steps of constant current.

        Each step ends at now or at the next event, whichever comes first: a
        pending contactor or S2 change, or the moment the battery reaches its
        target, computed exactly so that a long interval never overfills it.
        On return the state read's ``next_event`` says when the next one is due.
        """
        now = self._clock.monotonic()
        ev = self.ev
        while True:
            self._apply_due()
            dues = [due for due in (self.contactor.settle_due(), ev.s2_change_due()) if due is not None]
            power = self.power_w()
            remaining_wh = ev.remaining_wh()
            full_at = self._t + remaining_wh * 3600.0 / power if power > 0 else math.inf
            next_event = min([full_at, *dues])
            step_end = min(now, next_event)
            full = full_at <= step_end
            if not full and step_end <= self._t:
                self._state_read.next_event = next_event
                return
            self.steps += 1
            if full:
                self.meter.add_energy(remaining_wh)
                ev.fill()
            else:
                energy_wh = power * (step_end - self._t) / 3600.0
                self.meter.add_energy(energy_wh)
                ev.charge(energy_wh)
            self._t = max(self._t, step_end)
