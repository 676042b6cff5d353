"""The control pilot on a Raspberry Pi board: PWM out, CP and PP voltages in.

:class:`PiPilot` implements ``hal.interfaces.Pilot`` from three parts:

* a PWM output (``hal.pi.pwm``) that drives the board's +/-12 V op-amp stage:
  100 % is a steady +12 V, 0 % a steady -12 V (state F), anything between is
  1 kHz PWM; optionally a GPIO that switches the board's -12 V path, for
  boards whose driver cannot reach -12 V from the PWM alone;
* a front end that returns the pilot's positive and negative plateau in ADC
  volts: :class:`PeakDetectorFrontEnd` (two analog peak detectors read by an
  ADS1115/ADS1015) or ``hal.pi.mcp3008.Mcp3008Burst`` (min/max over a burst);
* the board's dividers, which turn ADC volts into pilot volts
  (:class:`OffsetDivider`) and into the PP resistor's ohms
  (:class:`PullUpDivider`).

What the voltages *mean* (states A-F, diode check, cable rating) is decided in
``chargepoint.safety.iec61851``; this module only measures.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from hal.interfaces import PilotLevels
from hal.pi.ads1x15 import Ads1x15
from hal.pi.pwm import PwmOutput


@dataclass(frozen=True)
class OffsetDivider:
    """Three resistors that map the +/-12 V pilot into the ADC's range.

    The pilot feeds a node through ``r_in``; the node is pulled to a reference
    ``v_ref`` through ``r_ref`` and to ground through ``r_gnd``. By
    superposition the node voltage is::

        V_adc = (V_cp / r_in + v_ref / r_ref) / (1 / r_in + 1 / r_ref + 1 / r_gnd)

    so ``V_cp = V_adc * k - v_ref * r_in / r_ref`` with
    ``k = 1 + r_in / r_ref + r_in / r_gnd``.
    """

    r_in_ohms: float
    r_ref_ohms: float
    r_gnd_ohms: float
    v_ref: float

    def __post_init__(self) -> None:
        if min(self.r_in_ohms, self.r_ref_ohms, self.r_gnd_ohms) <= 0 or self.v_ref <= 0:
            raise ValueError("divider resistors and reference voltage must be positive")

    @property
    def k(self) -> float:
        """Pilot volts per ADC volt."""
        return 1.0 + self.r_in_ohms / self.r_ref_ohms + self.r_in_ohms / self.r_gnd_ohms

    @property
    def offset_v(self) -> float:
        """Pilot voltage that reads as 0 V at the ADC (negative)."""
        return -self.v_ref * self.r_in_ohms / self.r_ref_ohms

    def to_pilot(self, adc_v: float) -> float:
        return adc_v * self.k + self.offset_v

    def to_adc(self, pilot_v: float) -> float:
        return (pilot_v - self.offset_v) / self.k


@dataclass(frozen=True)
class PullUpDivider:
    """The proximity pilot: ``supply_v`` through ``pullup_ohms`` into the cable's
    PP resistor to PE; the ADC reads the PP node.

    ``R_pp = pullup * V / (supply - V)``. A reading at or above
    ``open_fraction`` of the supply is an open circuit (no cable, or a broken
    PP wire) and reads as ``math.inf``.
    """

    pullup_ohms: float
    supply_v: float
    open_fraction: float = 0.97

    def __post_init__(self) -> None:
        if self.pullup_ohms <= 0 or self.supply_v <= 0:
            raise ValueError("pull-up and supply must be positive")
        if not 0.5 < self.open_fraction < 1.0:
            raise ValueError("open_fraction must lie between 0.5 and 1")

    def to_ohms(self, adc_v: float) -> float:
        if adc_v >= self.supply_v * self.open_fraction:
            return math.inf
        adc_v = max(adc_v, 0.0)
        return self.pullup_ohms * adc_v / (self.supply_v - adc_v)

    def to_adc(self, ohms: float) -> float:
        if math.isinf(ohms):
            return self.supply_v
        return self.supply_v * ohms / (ohms + self.pullup_ohms)


class FrontEnd(Protocol):
    """Pilot plateaus and PP in ADC volts."""

    def read_cp(self) -> tuple[float, float]:
        """(positive plateau, negative plateau) in ADC volts."""
        ...

    def read_cp_high(self) -> float:
        """The positive plateau alone in ADC volts (one conversion where the front end can)."""
        ...

    def read_cp_low(self) -> float:
        """The negative plateau in ADC volts, read after ``read_cp_high``."""
        ...

    def read_pp(self) -> float | None:
        """PP node in ADC volts; None if the board has no PP input."""
        ...

    def read_aux(self, channel: int) -> float:
        """Another input of the same ADC in volts, for a signal that is not the pilot's."""
        ...


class PeakDetectorFrontEnd:
    """Positive and negative peak detectors (and PP) on three inputs of an ADS1x15."""

    def __init__(self, adc: Ads1x15, high_channel: int = 0, low_channel: int = 1,
                 pp_channel: int | None = 2) -> None:
        channels = [c for c in (high_channel, low_channel, pp_channel) if c is not None]
        if len(set(channels)) != len(channels):
            raise ValueError("the peak detectors and PP need three different ADC inputs")
        self.adc = adc
        self._high = high_channel
        self._low = low_channel
        self._pp = pp_channel

    def read_cp(self) -> tuple[float, float]:
        return self.adc.read_volts(self._high), self.adc.read_volts(self._low)

    def read_cp_high(self) -> float:
        return self.adc.read_volts(self._high)

    def read_cp_low(self) -> float:
        return self.adc.read_volts(self._low)

    def read_pp(self) -> float | None:
        return None if self._pp is None else self.adc.read_volts(self._pp)

    def read_aux(self, channel: int) -> float:
        """Another input of the same ADC in volts (the heartbeat's gate read-back on AIN3)."""
        return self.adc.read_volts(channel)


class _Switch(Protocol):
    def on(self) -> None: ...

    def off(self) -> None: ...


class PiPilot:
    """``hal.interfaces.Pilot`` on a Raspberry Pi board.

    ``negative_switch`` (a gpiozero ``OutputDevice`` or anything with
    ``on``/``off``) is for boards whose -12 V path is switched by a GPIO: it
    is on only while :meth:`set_negative` holds. Without it, 0 % duty gives
    the steady -12 V, as on the reference board.

    The proximity pilot changes only when a cable is inserted or removed, so
    it is converted at most every ``pp_interval_s`` (on ``monotonic``) and the
    last value is returned in between, which keeps the safety loop's step
    short -- except right after the pilot's positive level has moved by more
    than ``pp_refresh_v`` since the last PP conversion (a plug going in or out
    changes the pilot too): then PP is converted at once, so a plug-in is
    never judged with the PP value of the empty socket.
    """

    def __init__(
        self,
        pwm: PwmOutput,
        front_end: FrontEnd,
        cp: OffsetDivider,
        pp: PullUpDivider | None = None,
        *,
        negative_switch: _Switch | None = None,
        pp_interval_s: float = 0.1,
        pp_refresh_v: float = 1.0,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self._pwm = pwm
        self._front_end = front_end
        self._cp = cp
        self._pp = pp
        self._negative = negative_switch
        self._pp_interval_s = pp_interval_s
        self._monotonic = monotonic or time.monotonic
        self._pp_refresh_v = pp_refresh_v
        self._pp_value: float | None = None
        self._pp_at: float | None = None
        self._high_v: float | None = None  # positive level at the last read()
        self._pp_high_v: float | None = None  # ... and at the last PP conversion

    @property
    def front_end(self) -> FrontEnd:
        """The ADC front end, whose spare inputs other board signals share."""
        return self._front_end

    # -- output -----------------------------------------------------------------------------

    def set_pwm(self, duty_percent: float) -> None:
        if not 0.0 <= duty_percent <= 100.0:
            raise ValueError(f"duty cycle {duty_percent!r} is outside 0..100 %")
        if self._negative is not None:
            self._negative.off()
        self._pwm.set_duty(duty_percent)

    def set_negative(self) -> None:
        self._pwm.set_duty(0.0)
        if self._negative is not None:
            self._negative.on()

    # -- input ------------------------------------------------------------------------------

    def read(self) -> PilotLevels:
        high, low = self._front_end.read_cp()
        levels = PilotLevels(self._cp.to_pilot(high), self._cp.to_pilot(low))
        self._high_v = levels.high_v
        return levels

    def read_high_v(self) -> float:
        self._high_v = self._cp.to_pilot(self._front_end.read_cp_high())
        return self._high_v

    def read_low_v(self) -> float:
        return self._cp.to_pilot(self._front_end.read_cp_low())

    def read_proximity_ohms(self) -> float | None:
        if self._pp is None:
            return None
        now = self._monotonic()
        moved = self._high_v is not None and (
            self._pp_high_v is None or abs(self._high_v - self._pp_high_v) > self._pp_refresh_v)
        if self._pp_at is None or moved or now - self._pp_at >= self._pp_interval_s or now < self._pp_at:
            volts = self._front_end.read_pp()
            self._pp_value = None if volts is None else self._pp.to_ohms(volts)
            self._pp_at = now
            self._pp_high_v = self._high_v
        return self._pp_value

    def close(self) -> None:
        for part in (self._pwm, self._front_end, self._negative):
            closer: Any = getattr(part, "close", None)
            if closer is not None:
                closer()
