"""The simulated charging circuit: pilot generator, contactor and energy meter.

Split from :mod:`hal.sim.world` because these are the station's devices whose
readings follow from the world's physics: each read or command takes the
world's lock and brings what it depends on up to date first (a command
integrates up to now, a state read applies the events due, an energy read
integrates the energy), and what they report
depends on the EV (its resistors, its diode, the current it draws). The world
(:class:`hal.sim.world.SimWorld`) builds them and advances them; import them from
:mod:`hal.sim.world`.

They know the world only through :class:`CircuitWorld`, what they ask of it,
so that this module does not import :mod:`hal.sim.world` (which imports it). The
world knows them through their public methods: the commands and readings for
everyone (they take the world's lock), and the world's own side
(``output_duty``, ``settle``, ``conducts``, ``add_energy`` ...), which it calls
with its lock held while it integrates, so they take no lock.
"""

from __future__ import annotations

from collections import deque
from contextlib import AbstractContextManager
from typing import Protocol

from hal.clock import Clock
from hal.interfaces import MeterFailure, MeterFailureKind, MeterReading, PilotLevels
from hal.sim.ev import SimEV


class CircuitWorld(Protocol):
    """What the circuit's devices need of the :class:`hal.sim.world.SimWorld` they belong to."""

    ev: SimEV

    @property
    def integrated_to(self) -> float:
        """The instant the physics is integrated up to (``clock.monotonic()`` time)."""
        ...

    @property
    def clock(self) -> Clock:
        """The clock the world runs on."""
        ...

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

    def power_w(self) -> float:
        """Power flowing right now, all phases (with the world's lock held)."""
        ...


class SimPilot:
    """The pilot generator and its read-back, as seen through the EV's circuit.

    The output is one duty cycle: 100 % is a steady +12 V, 0 % a steady -12 V
    (which is what :meth:`set_negative` drives), anything in between is PWM.
    """

    def __init__(self, world: CircuitWorld, cable_ohms: float | None) -> None:
        self._world = world
        self._cable_ohms = cable_ohms
        self._duty = 100.0

    @property
    def duty_percent(self) -> float:
        """The duty cycle being driven (100.0 steady +12 V, 0.0 steady -12 V)."""
        with self._world.synced():
            return self._duty

    def set_pwm(self, duty_percent: float) -> None:
        if not 0.0 <= duty_percent <= 100.0:
            raise ValueError(f"duty cycle {duty_percent!r} is outside 0..100 %")
        with self._world.changing():
            self._duty = float(duty_percent)

    def set_negative(self) -> None:
        with self._world.changing():
            self._duty = 0.0

    def read(self) -> PilotLevels:
        """The plateaus a peak detector would see: the EV's circuit pulls the generator's
        (:meth:`hal.sim.ev.SimEV.pilot_levels`)."""
        with self._world.synced():
            return self._world.ev.pilot_levels(self._duty)

    def read_high_v(self) -> float:
        return self.read().high_v

    def read_low_v(self) -> float:
        return self.read().low_v

    def read_proximity_ohms(self) -> float | None:
        """The cable's PP resistor while plugged; None when tethered or unplugged."""
        return self._cable_ohms if self._world.ev.plugged else None

    def output_duty(self) -> float:
        """The duty cycle being driven, without the lock: the world's, which holds it."""
        return self._duty


class SimContactor:
    """A mains contactor: contacts and aux mirror follow the coil after settle_s."""

    def __init__(self, world: CircuitWorld, settle_s: float, has_aux: bool) -> None:
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
        with self._world.synced():
            return self._commanded

    @property
    def closed(self) -> bool:
        """Whether the main contacts are actually closed right now."""
        with self._world.synced():
            return self._contacts

    def set_closed(self, closed: bool) -> None:
        with self._world.changing():
            if closed != self._commanded:
                self._commanded = closed
                self.switch_count += 1
                self._due = self._world.integrated_to + self._settle_s

    def feedback(self) -> bool | None:
        with self._world.synced():
            if not self._has_aux:
                return None
            return False if self._aux_broken else self._contacts

    def weld(self) -> None:
        """Fuse the main contacts: they stay closed whatever is commanded.

        Contacts that are open now fuse when they next close. Nothing un-welds
        them, as on the real thing.
        """
        with self._world.changing():
            self._welded = True

    def break_aux(self) -> None:
        """Break the auxiliary contact: feedback reads False from now on."""
        with self._world.changing():
            self._aux_broken = True

    # The world's side: called with its lock held while it integrates; no lock of their own.

    def settle(self, now: float) -> None:
        """The contacts follow the coil if the settle time is over by ``now``."""
        if self._due is not None and self._due <= now:
            self._due = None
            self._contacts = self._commanded or (self._welded and self._contacts)

    def settle_due(self) -> float | None:
        """When the contacts next follow the coil, ``None`` if they already do."""
        return self._due

    def conducts(self) -> bool:
        """Whether the main contacts are closed, as the world's integration sees them."""
        return self._contacts


class SimPhaseContactor:
    """``hal.interfaces.PhaseContactor`` in the simulation: L2 and L3 reach the EV only while energised.

    ``under_load`` counts switches made while current flowed (KM1's contacts closed and the EV
    drawing): the safety loop must never make one, and the tests check the physics agrees.
    """

    def __init__(self, world: CircuitWorld) -> None:
        self._world = world
        self._three = False
        self.switch_count = 0
        self.under_load = 0

    @property
    def phases(self) -> int:
        return 3 if self._three else 1

    def set_three_phase(self, three: bool) -> None:
        with self._world.changing():
            if three != self._three:
                self.switch_count += 1
                if self._world.current_a() > 0:
                    self.under_load += 1
                self._three = three

    def close(self) -> None:
        self.set_three_phase(False)


class SimMeter:
    """A three-phase energy meter upstream of the contactor.

    Voltages are those of the mains, present whatever the contactor does;
    current flows only on the phases the EV uses.
    """

    def __init__(self, world: CircuitWorld, voltage_v: float, frequency_hz: float, start_wh: float) -> None:
        self._world = world
        self._voltage_v = voltage_v
        self._frequency_hz = frequency_hz
        self._energy_wh = start_wh
        self._failures: deque[MeterFailureKind] = deque()
        self._closed = False

    @property
    def energy_wh(self) -> float:
        """The import register in Wh."""
        with self._world.exact():
            return self._energy_wh

    def fail_next(self, kind: MeterFailureKind, count: int = 1) -> None:
        """Make the next ``count`` reads fail with ``kind``, after any queued before."""
        if count < 0:
            raise ValueError("count must not be negative")
        with self._world.changing():
            self._failures.extend([kind] * count)

    async def read(self) -> MeterReading | MeterFailure:
        with self._world.exact():
            if self._closed:
                return MeterFailure(MeterFailureKind.DISCONNECTED, "simulated: closed")
            if self._failures:
                kind = self._failures.popleft()
                return MeterFailure(kind, f"simulated {kind.value}")
            world = self._world
            current = world.current_a()
            other = current if world.ev.phases == 3 else 0.0
            return MeterReading(
                timestamp=world.clock.time(),
                energy_import_wh=self._energy_wh,
                energy_export_wh=0.0,
                power_w=world.power_w(),
                currents_a=(current, other, other),
                voltages_v=(self._voltage_v,) * 3,
                frequency_hz=self._frequency_hz,
                power_factor=1.0 if current > 0 else None,
                powers_w=(current * self._voltage_v, other * self._voltage_v, other * self._voltage_v),
                power_factors=(1.0 if current > 0 else None, 1.0 if other > 0 else None,
                               1.0 if other > 0 else None),
            )

    async def close(self) -> None:
        with self._world.changing():
            self._closed = True

    def add_energy(self, energy_wh: float) -> None:
        """Count ``energy_wh`` on the import register: the world's, integrating with its lock held."""
        self._energy_wh += energy_wh
