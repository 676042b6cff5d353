"""IEC 61851-1 control pilot (CP) and proximity (PP) arithmetic: pure functions, no I/O.

The safety loop (``evse.py``) reads voltages and resistances from the HAL and
asks this module what they mean; keeping the standard's numbers here lets them
be tested without any hardware or timing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from itertools import pairwise

from hal.interfaces import PilotLevels

#: Below this current the EVSE must not offer PWM at all (steady +12 V instead).
MIN_PWM_CURRENT_A = 6.0
#: The highest current a PWM duty cycle can announce.
MAX_PWM_CURRENT_A = 80.0
#: Where the duty formula changes from ``I / 0.6`` to ``I / 2.5 + 64``.
_KNEE_A = 51.0
#: Nominal level of the negative plateau while PWM runs (the EV's diode passes no current).
NEGATIVE_PLATEAU_V = -12.0


class CpState(StrEnum):
    """Control pilot states, by the positive plateau the EVSE measures."""

    A = "A"  # 12 V: no EV connected
    B = "B"  # 9 V: EV connected, not ready to charge
    C = "C"  # 6 V: EV ready to charge
    D = "D"  # 3 V: EV ready, needs ventilation
    E = "E"  # 0 V: CP shorted to PE (or no supply)
    F = "F"  # -12 V: EVSE not available


def duty_for_current(amps: float) -> float:
    """PWM duty cycle (percent) that announces ``amps`` to the EV.

    6-51 A: D = I / 0.6; 51-80 A: D = I / 2.5 + 64. Currents above 80 A are
    clamped to 80 A (the most PWM can say). Below 6 A there is no valid duty:
    the caller must switch PWM off instead, so this raises ``ValueError``.
    """
    if not amps >= MIN_PWM_CURRENT_A:  # also rejects NaN
        raise ValueError(f"{amps} A is below {MIN_PWM_CURRENT_A} A: no PWM may be offered")
    amps = min(amps, MAX_PWM_CURRENT_A)
    if amps <= _KNEE_A:
        return amps / 0.6
    return amps / 2.5 + 64.0


def current_for_duty(duty: float) -> float | None:
    """The current an EV reads from ``duty`` percent, as IEC 61851-1 tells the EV.

    ``None`` where the duty allows no charging current: below 8 % (including the
    3-7 % band that requests digital communication) and above 97 %.
    """
    if 8.0 <= duty < 10.0:
        return MIN_PWM_CURRENT_A
    if 10.0 <= duty <= 85.0:
        return duty * 0.6
    if 85.0 < duty <= 96.0:
        return (duty - 64.0) * 2.5
    if 96.0 < duty <= 97.0:
        return MAX_PWM_CURRENT_A
    return None


@dataclass(frozen=True)
class PilotBands:
    """Voltage windows (low, high) of the positive plateau for each CP state.

    Defaults are about +/-1 V around the nominal levels of IEC 61851-1; a board
    whose front end reads consistently off may widen or shift them. Windows
    must not overlap, and the gaps between them are where a reading is a
    pilot fault.
    """

    a: tuple[float, float] = (11.0, 13.0)
    b: tuple[float, float] = (8.0, 10.0)
    c: tuple[float, float] = (5.0, 7.0)
    d: tuple[float, float] = (2.0, 4.0)
    e: tuple[float, float] = (-1.0, 1.0)
    f: tuple[float, float] = (-13.0, -11.0)

    def window(self, state: CpState) -> tuple[float, float]:
        return getattr(self, state.value.lower())

    def smallest_gap(self) -> float:
        """Distance between the two closest windows (negative if they overlap)."""
        windows = sorted(self.window(s) for s in CpState)
        return min(upper[0] - lower[1] for lower, upper in pairwise(windows))


class PilotClassifier:
    """Turns pilot readings into CP states with hysteresis and debounce.

    Hysteresis: once in a state, a reading keeps that state while it lies in the
    state's window widened by ``hysteresis_v`` on both sides, so a level sitting
    on a window edge does not flicker. Debounce: a different result (another
    state, or ``None`` for a reading outside every window) is reported only
    after ``debounce_samples`` consecutive samples agree; meanwhile the previous
    state is kept. The very first sample is reported as is, since there is no
    previous state to keep.
    """

    def __init__(
        self,
        bands: PilotBands = PilotBands(),
        hysteresis_v: float = 0.4,
        debounce_samples: int = 2,
    ) -> None:
        if debounce_samples < 1:
            raise ValueError("debounce_samples must be at least 1")
        if hysteresis_v < 0:
            raise ValueError("hysteresis_v must not be negative")
        if bands.smallest_gap() <= hysteresis_v:
            raise ValueError("pilot windows must be further apart than the hysteresis")
        self._bands = bands
        #: Each state's window, looked up once: the loop classifies a hundred times a second.
        self._windows = {state: bands.window(state) for state in CpState}
        self._hysteresis_v = hysteresis_v
        self._debounce_samples = debounce_samples
        self._started = False
        self._state: CpState | None = None
        self._candidate: CpState | None = None
        self._candidate_count = 0

    @property
    def state(self) -> CpState | None:
        """The state last reported (``None``: pilot fault, or nothing seen yet)."""
        return self._state

    @property
    def confirming(self) -> bool:
        """A different state has been seen and awaits its confirming samples."""
        return self._candidate_count > 0

    def differs(self, high_v: float) -> bool:
        """Whether a reading of the positive plateau shows another state than the one reported
        (it would start or continue a change); changes nothing."""
        return self._started and self._instant(high_v) != self._state

    def classify(self, levels: PilotLevels) -> CpState | None:
        """Feed one sample; return the debounced state (``None`` = out of every band)."""
        seen = self._instant(levels.high_v)
        if not self._started:
            self._started = True
            self._state = seen
        elif seen == self._state:
            self._candidate_count = 0
        else:
            if seen == self._candidate and self._candidate_count > 0:
                self._candidate_count += 1
            else:
                self._candidate, self._candidate_count = seen, 1
            if self._candidate_count >= self._debounce_samples:
                self._state, self._candidate_count = seen, 0
        return self._state

    def _instant(self, volts: float) -> CpState | None:
        """The state of a single reading, without debounce."""
        if self._state is not None and self._within(self._state, volts, self._hysteresis_v):
            return self._state
        for state in CpState:
            if self._within(state, volts, 0.0):
                return state
        return None

    def _within(self, state: CpState, volts: float, widen: float) -> bool:
        low, high = self._windows[state]
        return low - widen <= volts <= high + widen


def diode_ok(levels: PilotLevels, pwm_on: bool, tolerance_v: float = 1.5) -> bool:
    """Whether the EV's diode shows: the negative plateau is near -12 V under PWM.

    Without PWM the pilot is a steady level, there is no negative half-wave to
    look at and nothing can be concluded, so the answer is True.
    """
    if not pwm_on:
        return True
    return abs(levels.low_v - NEGATIVE_PLATEAU_V) <= tolerance_v


class ProximityError(ValueError):
    """The PP resistance lies outside every coding band: a broken or unknown cable."""


@dataclass(frozen=True)
class PpBand:
    """A PP coding resistor's acceptance window and the cable rating it stands for."""

    low_ohms: float
    high_ohms: float
    amps: float


#: PP coding of IEC 61851-1 / IEC 62196: 1.5 kOhm 13 A, 680 Ohm 20 A, 220 Ohm
#: 32 A, 100 Ohm 63 A, each accepted within +/-30 % of nominal. +/-30 % keeps
#: generous room for resistor tolerance, contact resistance and ADC error while
#: the windows stay clear of each other (the closest pair, 100 and 220 Ohm,
#: leaves 130..154 Ohm as a gap).
PP_BANDS: tuple[PpBand, ...] = (
    PpBand(1050.0, 1950.0, 13.0),
    PpBand(476.0, 884.0, 20.0),
    PpBand(154.0, 286.0, 32.0),
    PpBand(70.0, 130.0, 63.0),
)


def cable_ampacity(ohms: float | None, bands: tuple[PpBand, ...] = PP_BANDS) -> float | None:
    """The current rating of the inserted cable from its PP resistance.

    ``None`` in means the station has no PP circuit (tethered cable) and gives
    ``None``: the cable imposes no limit of its own. A resistance outside every
    band (including an open circuit, ``math.inf``) raises ``ProximityError``,
    so the caller can flag a proximity fault rather than guess a rating.
    """
    if ohms is None:
        return None
    for band in bands:
        if band.low_ohms <= ohms <= band.high_ohms:
            return band.amps
    raise ProximityError(f"PP resistance {ohms} ohm is outside every coding band")
