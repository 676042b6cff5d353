"""The reference board's heartbeat charge pump as a circuit, and the simulated heartbeat on it.

hardware.md ("Hardware fail-safe") draws the circuit: GPIO16 drives a 12 V
buffer that inverts it; the buffer's output goes through R60 and C60 to the
pump node P (D60 from GND clamps P at one diode drop below 0 V, R62 pulls P to
GND), and D61 carries charge from P to the gate node G (C61 holds it; R61, two
resistors in parallel, and the read-back divider R68/R69 bleed it). Q4 conducts
while G is above its threshold, and K1's coil current runs through Q4.

The model is the circuit's, event by event and exact between events, so that a
part that fails changes the timing the way it would on the board:

* a *rising* buffer edge (GPIO16 *falling*) lifts P by the buffer's swing; if P
  then lies more than a diode drop above G, C60 shares its charge with C61
  (R60's time constant, about 0.15 ms, is taken as instant);
* a falling buffer edge pulls P down by the swing, clamped by D60;
* between edges G decays through R61 and the divider (tau = R_G x C61), and P
  through R62 (tau = R62 x C60, shorter, so P falls away from G). Without R62
  nothing discharges P: once G has fallen a diode drop below P, D61 conducts
  and C60 and C61 decay together through R_G, which is why an open R62 holds
  K1 longer.

Nothing here is ideal on purpose: the safety loop's pre-session check
(``chargepoint.safety.heartbeat_check``) must tell a healthy pump from a broken
one by what G does, and only a model that charges on edges and decays through
its resistors can show that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace


def parallel(*ohms: float) -> float:
    """Resistors in parallel; an open one (``math.inf``) drops out."""
    conductance = sum(0.0 if math.isinf(r) else 1.0 / r for r in ohms)
    return math.inf if conductance == 0 else 1.0 / conductance


@dataclass(frozen=True)
class PumpParts:
    """The pump's part values (hardware.md's BOM); a failed part is a changed value.

    ``math.inf`` is an open resistor. ``q4_shorted`` is a drain-source short of Q4:
    G is unchanged, but Q4 conducts whatever G does.
    """

    #: The buffer's swing (Q6/Q7 emitters: about 0.8 V to 11.3 V on +12 V).
    buffer_v: float = 10.5
    #: BAT54 forward drop at the pump's peak current (some 10-20 mA).
    diode_v: float = 0.4
    c60_f: float = 1.1e-6
    c61_f: float = 470e-9
    r61a_ohms: float = 200e3
    r61b_ohms: float = 200e3
    r62_ohms: float = 10e3
    #: R68 + R69, the read-back divider from G to AIN3 (also a bleed path).
    r68_ohms: float = 1.0e6
    r69_ohms: float = 220e3
    #: Q4's gate threshold as far as K1 is concerned (2N7002: 1.0-2.5 V, about 0.7 V hot).
    threshold_v: float = 1.7
    q4_shorted: bool = False

    @property
    def r_gate_ohms(self) -> float:
        """Everything that bleeds G: R61a, R61b and the read-back divider."""
        return parallel(self.r61a_ohms, self.r61b_ohms, self.r68_ohms + self.r69_ohms)

    @property
    def tau_gate_s(self) -> float:
        return self.r_gate_ohms * self.c61_f

    @property
    def readback_ratio(self) -> float:
        """G volts per AIN3 volt (R68 + R69) / R69."""
        return (self.r68_ohms + self.r69_ohms) / self.r69_ohms


class ChargePump:
    """The pump's two nodes, P and G, integrated up to the time of each question.

    ``gpio(level, now)`` is GPIO16 changing (the buffer inverts it); ``gate_v(now)``
    and ``q4_conducting(now)`` read the circuit. Times come from the caller's
    clock and must not go back.
    """

    def __init__(self, parts: PumpParts | None = None, now: float = 0.0) -> None:
        self.parts = parts or PumpParts()
        self._t = now
        self._g = 0.0
        self._p = 0.0
        #: GPIO16 rests low, so the buffer's output rests high (R65); P has settled to 0 V through R62.
        self._buffer_high = True
        self.charging_edges = 0

    def fail(self, **changes: object) -> None:
        """Change a part from now on (``r61a_ohms=math.inf``: R61a open; ``q4_shorted=True``)."""
        self.parts = replace(self.parts, **changes)  # type: ignore[arg-type]

    def gpio(self, level: bool, now: float) -> None:
        """GPIO16 is now ``level``; the buffer's output is its inverse."""
        self._advance(now)
        buffer_high = not level
        if buffer_high == self._buffer_high:
            return
        self._buffer_high = buffer_high
        parts = self.parts
        if buffer_high:
            self._p += parts.buffer_v
            if self._p - parts.diode_v > self._g:
                c60, c61 = parts.c60_f, parts.c61_f
                self._g = (c60 * (self._p - parts.diode_v) + c61 * self._g) / (c60 + c61)
                self._p = self._g + parts.diode_v
                self.charging_edges += 1
        else:
            self._p = max(self._p - parts.buffer_v, -parts.diode_v)

    def gate_v(self, now: float) -> float:
        self._advance(now)
        return self._g

    def q4_conducting(self, now: float) -> bool:
        return self.parts.q4_shorted or self.gate_v(now) > self.parts.threshold_v

    def _advance(self, now: float) -> None:
        dt = now - self._t
        if dt < 0:
            raise ValueError(f"time went back from {self._t} to {now}")
        if dt == 0:
            return
        self._t = now
        parts = self.parts
        tau_g = parts.tau_gate_s
        if not math.isinf(parts.r62_ohms):
            self._p *= math.exp(-dt / (parts.r62_ohms * parts.c60_f))
            self._g = _decay(self._g, dt, tau_g)
            return
        # R62 open: P holds until G falls a diode drop below it, then both decay together.
        joined_at = self._p - parts.diode_v
        if self._g > joined_at:
            apart_s = math.inf if joined_at <= 0 else tau_g * math.log(self._g / joined_at)
            if dt <= apart_s:
                self._g = _decay(self._g, dt, tau_g)
                return
            dt -= apart_s
            self._g = joined_at
        self._g = _decay(self._g, dt, parts.r_gate_ohms * (parts.c60_f + parts.c61_f))
        self._p = self._g + parts.diode_v


def _decay(volts: float, dt: float, tau: float) -> float:
    return volts if math.isinf(tau) else volts * math.exp(-dt / tau)


class SimHeartbeat:
    """``hal.interfaces.Heartbeat`` and ``HeartbeatReadback`` on a :class:`ChargePump`.

    ``beat`` toggles GPIO16 as the Pi's output does; ``gate_v`` is what the ADC reads
    on AIN3 (converted back to G through the divider); ``interlock_conducting`` is
    Q4's drain read back (True while Q4 conducts).
    """

    def __init__(self, monotonic: Callable[[], float], pump: ChargePump | None = None) -> None:
        self._monotonic = monotonic
        #: The circuit's time base (the readback's ``monotonic``).
        self.monotonic = monotonic
        self.pump = pump or ChargePump(now=monotonic())
        self.level = False
        self.beats = 0

    def beat(self) -> None:
        self.level = not self.level
        self.beats += 1
        self.pump.gpio(self.level, self._monotonic())

    def close(self) -> None:
        self.level = False
        self.pump.gpio(False, self._monotonic())

    def gate_v(self) -> float:
        return self.pump.gate_v(self._monotonic())

    def interlock_conducting(self) -> bool | None:
        return self.pump.q4_conducting(self._monotonic())
