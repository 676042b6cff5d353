"""The small interfaces every hardware backend implements.

They are ``typing.Protocol`` classes: a backend satisfies them by shape, the way
gpiozero devices are composed from pins. Methods that touch hardware are plain
blocking calls meant for the safety-loop thread, except the meter, whose bus is
slow and shared and is therefore read asynchronously.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


@dataclass(frozen=True)
class PilotLevels:
    """Control pilot voltages as measured at the EVSE (volts, nominal +/-12 V).

    ``high_v`` is the positive plateau, which tells the EV's state;
    ``low_v`` is the negative plateau, which must be near -12 V while PWM runs,
    else the EV's diode is missing. With a steady output (no PWM) both are the
    same plateau.
    """

    high_v: float
    low_v: float


class Pilot(Protocol):
    """Control pilot: the 1 kHz +/-12 V PWM output and its read-back."""

    def set_pwm(self, duty_percent: float) -> None:
        """Drive the pilot. 100.0 is a steady +12 V (no PWM: not allowed to
        charge); 0 < duty < 100 is 1 kHz PWM announcing the offered current."""
        ...

    def set_negative(self) -> None:
        """Drive a steady -12 V (state F: EVSE not available)."""
        ...

    def read(self) -> PilotLevels:
        """Measure the pilot's positive and negative plateaus."""
        ...

    def read_high_v(self) -> float:
        """Measure the positive plateau only (one conversion where ``read`` makes two): it alone
        tells the EV's state, so the safety loop decides a change of state on it at once."""
        ...

    def read_low_v(self) -> float:
        """Measure the negative plateau (the EV's diode), read after ``read_high_v``."""
        ...

    def read_proximity_ohms(self) -> float | None:
        """Resistance of the cable's proximity (PP) resistor in ohms.

        ``None`` where the station has no PP circuit (a tethered cable) or no
        cable is inserted; an open circuit reads as ``math.inf``.
        """
        ...


class Contactor(Protocol):
    """The mains contactor and its auxiliary (mirror) contact."""

    def set_closed(self, closed: bool) -> None:
        """Command the coil."""
        ...

    def feedback(self) -> bool | None:
        """State of the auxiliary contact: True if the main contacts are closed.

        ``None`` if the board has no auxiliary contact wired.
        """
        ...


class ConnectorLock(Protocol):
    """The actuator that locks the cable plug into a socket outlet."""

    def set_locked(self, locked: bool) -> bool:
        """Drive the actuator; True if its feedback confirms the new position."""
        ...

    def locked(self) -> bool:
        """Whether the actuator's feedback shows the plug locked."""
        ...


class FaultInputs(Protocol):
    """Hard-wired fault inputs (RCD/RCM trip, emergency stop).

    Trips are reported twice on purpose: through a callback, which a backend
    calls from its own thread the moment it sees the edge (so the contactor
    opens without waiting for any loop), and through ``active``, which the
    safety loop polls as a second line.
    """

    def active(self) -> frozenset[str]:
        """Names of the faults present right now, e.g. ``{"rcd"}``."""
        ...

    def on_trip(self, callback: Callable[[str], None]) -> None:
        """Register a function called with the fault's name when one trips."""
        ...

    def self_test(self) -> bool:
        """Pulse the RCD test input and report whether the trip was seen.

        Backends without a test output return True without doing anything.
        """
        ...

    def reset(self) -> None:
        """Re-arm latched fault inputs after an inspection."""
        ...


class Heartbeat(Protocol):
    """The safety loop's sign of life to a hardware watchdog outside Linux.

    The safety loop calls ``beat`` once per completed step; a backend toggles an
    output that feeds a retriggerable monostable or charge pump, without whose
    pulses the contactor coil cannot be energised. A loop that stalls, a daemon
    that crashes or is killed, a kernel that hangs: the pulses stop, and the
    circuit opens the contactor within its hold-up time, whatever Linux does.
    """

    def beat(self) -> None:
        """One pulse edge: the loop has completed a step."""
        ...

    def close(self) -> None:
        """Stop the pulses (the output rests low)."""
        ...


class HeartbeatReadback(Protocol):
    """What the heartbeat circuit shows: its gate node G and whether its MOSFET conducts.

    The safety loop checks the circuit with it before every session (G must rise
    with pulses and fall quickly without them, and the MOSFET must stop
    conducting), so a failed part that would hold the contactor longer, or a
    shorted MOSFET that would not drop it at all, is found before a car charges.
    """

    def gate_v(self) -> float:
        """G, the MOSFET's gate, in volts (read through a divider on an ADC input)."""
        ...

    def interlock_conducting(self) -> bool | None:
        """Whether the MOSFET conducts (its drain read back); None where that is not wired."""
        ...

    def monotonic(self) -> float:
        """Now, on the clock the circuit's timing is judged by (the loop's own, real on a station)."""
        ...


class PhaseContactor(Protocol):
    """The optional second contactor that connects L2 and L3 to the EV (1 or 3 phases).

    De-energised is one phase: the state after power-up, a reboot or a fault, and
    the one that draws the least. Only the safety loop switches it, and only
    with the main contactor open.
    """

    def set_three_phase(self, three: bool) -> None:
        """Energise (three phases) or release (one phase) the coil."""
        ...

    def close(self) -> None:
        """Release the output."""
        ...


class ShuntTrip(Protocol):
    """The output that trips the station's supply breaker through its shunt release.

    Used when the contactor has welded: the breaker, not the contactor, then cuts
    the supply, so a socket does not stay live.
    """

    def set_energised(self, on: bool) -> None:
        """Energise (trip the breaker) or release the shunt release's relay."""
        ...

    def close(self) -> None:
        """Release the output."""
        ...


class CardReader(Protocol):
    """An RFID/NFC reader that reports card identifiers."""

    def start(self, callback: Callable[[str], None]) -> None:
        """Begin reading; ``callback(id_tag)`` is called from the reader's
        thread once per presented card."""
        ...

    def close(self) -> None:
        """Stop reading and release the port."""
        ...


class Measurand(StrEnum):
    """Quantities an energy meter can report, named as OCPP names them."""

    ENERGY_IMPORT = "Energy.Active.Import.Register"
    ENERGY_EXPORT = "Energy.Active.Export.Register"
    POWER_IMPORT = "Power.Active.Import"
    POWER_EXPORT = "Power.Active.Export"
    CURRENT_IMPORT = "Current.Import"
    VOLTAGE = "Voltage"
    FREQUENCY = "Frequency"
    POWER_FACTOR = "Power.Factor"


@dataclass(frozen=True)
class MeterReading:
    """One complete reading of an energy meter.

    Energies are cumulative register values in Wh; per-phase tuples are
    (L1, L2, L3) and hold ``None`` where the meter does not measure a phase.
    Powers are signed as the meter measures them: negative is energy flowing
    back out of the EV (export).
    """

    timestamp: float
    energy_import_wh: float
    energy_export_wh: float | None = None
    power_w: float | None = None
    currents_a: tuple[float | None, float | None, float | None] = (None, None, None)
    voltages_v: tuple[float | None, float | None, float | None] = (None, None, None)
    frequency_hz: float | None = None
    power_factor: float | None = None
    powers_w: tuple[float | None, float | None, float | None] = (None, None, None)
    power_factors: tuple[float | None, float | None, float | None] = (None, None, None)


class MeterFailureKind(StrEnum):
    TIMEOUT = "timeout"
    CRC = "crc"
    EXCEPTION_RESPONSE = "exception_response"
    NO_ANSWER = "no_answer"
    IMPLAUSIBLE = "implausible"
    DISCONNECTED = "disconnected"


@dataclass(frozen=True)
class MeterFailure:
    """A meter read that did not produce a trustworthy reading."""

    kind: MeterFailureKind
    detail: str = ""
    extra: dict[str, str] = field(default_factory=dict)


class Meter(Protocol):
    """An energy meter. Reads are async because the bus is slow and shared."""

    async def read(self) -> MeterReading | MeterFailure:
        """Take one reading; never raises for bus trouble, returns a failure."""
        ...

    async def close(self) -> None:
        """Release the transport."""
        ...
