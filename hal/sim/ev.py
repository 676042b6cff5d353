"""The simulated electric vehicle: what it reads from the pilot and how it reacts.

Split from :mod:`hal.sim.world` because the EV is the other party of the charging
dialogue, not part of the station's hardware: it decodes the PWM duty cycle
per IEC 61851-1, closes S2 after a reaction time, draws current only through
closed contacts and fills its battery. Tests and scenarios build one with their
own parameters and hand it to a :class:`hal.sim.world.SimWorld`, which integrates
its physics; import it from :mod:`hal.sim.world` like the rest of the simulation.

The EV knows its world only through :class:`EVWorld`, what it asks of it, so
that this module does not import :mod:`hal.sim.world` (which imports it). The world
knows the EV through its public methods: the properties for everyone (they take
the world's lock), and the world's own side (``offered_a``, ``react``,
``switch_s2``, ``charge`` ...), which the world calls with its lock held while
it integrates, so they take no lock.

What the pilot line reads is here too (:meth:`SimEV.pilot_levels`): the
generator's plateaus as the EV's resistors, diode and any short pull them.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import Protocol

from hal.interfaces import PilotLevels

PILOT_V = 12.0
"""Amplitude of the pilot generator (+/-12 V)."""

_HIGH_PLATEAU_V = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0}
"""Positive pilot plateau for each EV state, set by the EV's resistors."""


@cache
def _levels(high_v: float, low_v: float) -> PilotLevels:
    """One immutable reading per pair of plateaus, made once."""
    return PilotLevels(high_v, low_v)


class EVWorld(Protocol):
    """What an EV needs of the :class:`hal.sim.world.SimWorld` it belongs to."""

    def synced(self) -> AbstractContextManager[None]:
        """The world's lock with the discrete state (pilot, S2, contacts) up to date."""
        ...

    def exact(self) -> AbstractContextManager[None]:
        """The world's lock with the energy integrated up to now too."""
        ...

    def changing(self) -> AbstractContextManager[None]:
        """The world's lock for a change: integrated before, events applied after."""
        ...

    def current_a(self) -> float:
        """Current per phase flowing right now (with the world's lock held)."""
        ...

    def supplied_phases(self) -> int:
        """Phases the station connects to the EV: 3, or 1 while a phase contactor gives L1 alone."""
        ...


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
    a :class:`~hal.sim.world.SimWorld`, every read and change goes through the
    world's lock and brings its physics up to date first.
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
        #: Phases the on-board charger can use; ``phases`` is how many it draws on where it is plugged in.
        self.onboard_phases = phases
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
        self._world: EVWorld | None = None

    @property
    def phases(self) -> int:
        """Phases the EV draws on: its charger's, but no more than the station connects."""
        world = self._world
        return self.onboard_phases if world is None else min(self.onboard_phases, world.supplied_phases())

    def attach(self, world: EVWorld) -> None:
        """Become the EV of ``world``; an EV belongs to one world for its life."""
        if self._world is not None:
            raise ValueError("this SimEV already belongs to another SimWorld")
        self._world = world

    def _synced(self) -> AbstractContextManager[None]:
        """The world's lock with the discrete state up to date; nothing if unattached."""
        return nullcontext() if self._world is None else self._world.synced()

    def _exact(self) -> AbstractContextManager[None]:
        """The world's lock with the energy integrated up to now; nothing if unattached."""
        return nullcontext() if self._world is None else self._world.exact()

    def _changing(self) -> AbstractContextManager[None]:
        """The world's lock for a change (integrated before, events applied after)."""
        return nullcontext() if self._world is None else self._world.changing()

    @property
    def plugged(self) -> bool:
        with self._synced():
            return self._plugged

    @property
    def soc(self) -> float:
        """State of charge, 0..1."""
        with self._exact():
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
            return self._world.current_a()

    @property
    def state(self) -> str:
        """IEC 61851 state as set by the EV's resistors: "A", "B", "C" or "D".

        A short circuit does not change it: the short is a fault in the wiring,
        not a state the EV signals.
        """
        with self._synced():
            return self._state()

    def _state(self) -> str:
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
        with self._changing():
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
        with self._changing():
            self._short_circuit = shorted

    def plug_in(self) -> None:
        with self._changing():
            self._plugged = True

    def unplug(self) -> None:
        """Pull the plug: state A and no current at once, S2 falls open."""
        with self._changing():
            self._plugged = False
            self._s2_closed = False
            self._s2_due = None

    # The world's side: called by the SimWorld this EV belongs to, with its lock held, while it
    # integrates; they take no lock (the properties above would bring the world up to date again).

    def pilot_levels(self, duty_percent: float) -> PilotLevels:
        """The plateaus a peak detector sees with the generator at ``duty_percent`` and this EV
        at the end of the line.

        A short to PE wins over everything, the generator included, because it
        sits behind the generator's 1 kOhm source resistor. The few possible
        readings are made once (``_levels``): the safety loop reads a hundred
        times a second.
        """
        if self._short_circuit:
            return _levels(0.0, 0.0)
        if duty_percent == 0.0:
            return _levels(-PILOT_V, -PILOT_V)
        high = _HIGH_PLATEAU_V[self._state()]
        if duty_percent == 100.0:
            return _levels(high, high)
        # With PWM on, the negative half only sees the EV's resistors when
        # its diode is missing; then it mirrors the positive plateau.
        if self._plugged and not self._diode:
            return _levels(high, -high)
        return _levels(high, -PILOT_V)

    def offered_a(self, duty_percent: float) -> float | None:
        """The current this EV reads from the pilot at ``duty_percent``, ``None`` if it may not
        charge (a short hides the PWM from it)."""
        if self._short_circuit:
            return None
        return offered_current_a(duty_percent)

    def wants_to_draw(self) -> bool:
        """Whether S2 is closed and the battery still takes energy."""
        return self._plugged and self._s2_closed and self._soc < self.target_soc

    def s2_change_due(self) -> float | None:
        """When a decided S2 change takes effect, ``None`` if none is pending."""
        return self._s2_due

    def switch_s2(self, now: float) -> bool:
        """Carry out the S2 change due by ``now``, if one is; whether one was."""
        if self._s2_due is None or self._s2_due > now:
            return False
        self._s2_closed = not self._s2_closed
        self._s2_due = None
        return True

    def remaining_wh(self) -> float:
        """The energy the battery still takes before it reaches ``target_soc``."""
        return (self.target_soc - self._soc) * self.capacity_wh

    def charge(self, energy_wh: float) -> None:
        """Store ``energy_wh`` in the battery."""
        self._soc += energy_wh / self.capacity_wh

    def fill(self) -> None:
        """The battery reaches ``target_soc`` exactly (the world computed the moment)."""
        self._soc = self.target_soc

    def react(self, now: float, offered_a: float | None) -> None:
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
