"""IEC 61851-1 arithmetic: duty cycles, pilot classification, diode and PP coding."""

from __future__ import annotations

import math
from itertools import pairwise

import pytest

from chargepoint.safety.iec61851 import (
    PP_BANDS,
    CpState,
    PilotBands,
    PilotClassifier,
    ProximityError,
    cable_ampacity,
    current_for_duty,
    diode_ok,
    duty_for_current,
)
from hal.interfaces import PilotLevels


def steady(volts: float) -> PilotLevels:
    return PilotLevels(volts, volts)


# -- duty cycle <-> current -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("amps", "duty"),
    [
        (6.0, 10.0),  # lowest current PWM may offer
        (10.0, 16.6667),
        (16.0, 26.6667),
        (32.0, 53.3333),
        (51.0, 85.0),  # last point of D = I / 0.6
        (51.5, 84.6),  # first point of D = I / 2.5 + 64
        (63.0, 89.2),
        (80.0, 96.0),
        (100.0, 96.0),  # clamped to 80 A
        (math.inf, 96.0),
    ],
)
def test_duty_for_current_both_ranges(amps: float, duty: float) -> None:
    assert duty_for_current(amps) == pytest.approx(duty, abs=1e-4)


@pytest.mark.parametrize("amps", [5.99, 0.0, -1.0, math.nan])
def test_below_6_a_there_is_no_duty(amps: float) -> None:
    with pytest.raises(ValueError):
        duty_for_current(amps)


@pytest.mark.parametrize(
    ("duty", "amps"),
    [
        (0.0, None),
        (2.9, None),
        (5.0, None),  # digital communication: no current from the duty
        (7.5, None),
        (8.0, 6.0),
        (9.9, 6.0),
        (10.0, 6.0),
        (50.0, 30.0),
        (85.0, 51.0),
        (90.0, 65.0),
        (96.0, 80.0),
        (97.0, 80.0),
        (97.1, None),
        (100.0, None),
    ],
)
def test_current_for_duty_follows_the_ev_side_table(duty: float, amps: float | None) -> None:
    assert current_for_duty(duty) == (None if amps is None else pytest.approx(amps))


@pytest.mark.parametrize("amps", [6.0, 13.0, 16.0, 20.0, 32.0, 50.9, 51.0, 53.0, 63.0, 79.9, 80.0])
def test_current_for_duty_inverts_duty_for_current(amps: float) -> None:
    assert current_for_duty(duty_for_current(amps)) == pytest.approx(amps)


def test_the_ev_never_reads_more_than_offered() -> None:
    """Just above 51 A the upper formula gives a duty below 85 %, which the EV reads with the
    lower one: it then takes less than offered (51.1 A reads as 50.66 A), never more."""
    offered = [6.0 + tenth / 10 for tenth in range(741)]  # 6.0 .. 80.0 A
    read = {amps: current_for_duty(duty_for_current(amps)) for amps in offered}
    assert all(got is not None and got <= amps + 1e-9 for amps, got in read.items())
    assert read[51.1] == pytest.approx(50.664)


# -- pilot classification -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("volts", "state"),
    [
        (12.0, CpState.A), (11.0, CpState.A), (13.0, CpState.A),
        (9.0, CpState.B), (8.0, CpState.B), (10.0, CpState.B),
        (6.0, CpState.C), (5.0, CpState.C), (7.0, CpState.C),
        (3.0, CpState.D), (2.0, CpState.D), (4.0, CpState.D),
        (0.0, CpState.E), (-1.0, CpState.E), (1.0, CpState.E),
        (-12.0, CpState.F), (-13.0, CpState.F), (-11.0, CpState.F),
        # gaps between the windows and beyond them: pilot fault
        (10.5, None), (7.5, None), (4.5, None), (1.5, None), (-5.0, None),
        (13.5, None), (-13.5, None), (math.nan, None),
    ],
)
def test_bands_of_a_fresh_classifier(volts: float, state: CpState | None) -> None:
    assert PilotClassifier().classify(steady(volts)) is state


def test_bands_are_configurable() -> None:
    classifier = PilotClassifier(PilotBands(b=(7.8, 10.2)), debounce_samples=1)
    assert classifier.classify(steady(10.1)) is CpState.B
    assert classifier.classify(steady(7.9)) is CpState.B


def test_debounce_keeps_the_previous_state_until_confirmed() -> None:
    classifier = PilotClassifier(debounce_samples=3)
    assert classifier.classify(steady(9.0)) is CpState.B
    assert classifier.classify(steady(6.0)) is CpState.B
    assert classifier.classify(steady(6.0)) is CpState.B
    assert classifier.classify(steady(6.0)) is CpState.C


def test_a_glitch_shorter_than_the_debounce_is_ignored() -> None:
    classifier = PilotClassifier(debounce_samples=2)
    classifier.classify(steady(6.0))
    readings = [0.0, 6.0, 10.5, 6.0, 9.0, 6.0]  # each odd one out lasts a single sample
    assert [classifier.classify(steady(v)) for v in readings] == [CpState.C] * len(readings)


def test_an_interrupted_candidate_starts_counting_again() -> None:
    classifier = PilotClassifier(debounce_samples=2)
    classifier.classify(steady(6.0))
    assert classifier.classify(steady(9.0)) is CpState.C
    assert classifier.classify(steady(12.0)) is CpState.C  # a different candidate: count restarts
    assert classifier.classify(steady(12.0)) is CpState.A


def test_an_out_of_band_reading_is_debounced_too() -> None:
    classifier = PilotClassifier(debounce_samples=2)
    classifier.classify(steady(9.0))
    assert classifier.classify(steady(10.7)) is CpState.B
    assert classifier.classify(steady(10.7)) is None
    assert classifier.state is None


def test_hysteresis_holds_a_state_just_outside_its_window() -> None:
    classifier = PilotClassifier(hysteresis_v=0.4, debounce_samples=1)
    assert classifier.classify(steady(9.0)) is CpState.B
    assert classifier.classify(steady(10.3)) is CpState.B  # within 10.0 + 0.4
    assert classifier.classify(steady(7.7)) is CpState.B  # within 8.0 - 0.4
    assert classifier.classify(steady(10.5)) is None  # beyond the widened window


def test_hysteresis_applies_only_to_the_current_state() -> None:
    classifier = PilotClassifier(hysteresis_v=0.4, debounce_samples=1)
    classifier.classify(steady(12.0))
    assert classifier.classify(steady(10.3)) is None  # B's window is not widened for A


def test_classifier_rejects_settings_that_cannot_work() -> None:
    with pytest.raises(ValueError):
        PilotClassifier(debounce_samples=0)
    with pytest.raises(ValueError):
        PilotClassifier(hysteresis_v=1.0)  # as wide as the 1 V gaps
    with pytest.raises(ValueError):
        PilotClassifier(PilotBands(b=(6.5, 10.0)))  # overlaps C


# -- diode ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("levels", "pwm_on", "ok"),
    [
        (PilotLevels(6.0, -12.0), True, True),
        (PilotLevels(6.0, -10.6), True, True),
        (PilotLevels(6.0, -13.4), True, True),
        (PilotLevels(6.0, -10.4), True, False),
        (PilotLevels(6.0, -6.0), True, False),  # no diode: the low half mirrors the high
        (PilotLevels(6.0, 6.0), False, True),  # no PWM: nothing to judge
    ],
)
def test_diode_check(levels: PilotLevels, pwm_on: bool, ok: bool) -> None:
    assert diode_ok(levels, pwm_on) is ok


# -- proximity ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ohms", "amps"),
    [
        (1500.0, 13.0), (1050.0, 13.0), (1950.0, 13.0),
        (680.0, 20.0), (476.0, 20.0), (884.0, 20.0),
        (220.0, 32.0), (154.0, 32.0), (286.0, 32.0),
        (100.0, 63.0), (70.0, 63.0), (130.0, 63.0),
        (None, None),  # tethered cable / no PP circuit
    ],
)
def test_cable_ampacity_bands(ohms: float | None, amps: float | None) -> None:
    assert cable_ampacity(ohms) == amps


@pytest.mark.parametrize("ohms", [0.0, 50.0, 140.0, 350.0, 950.0, 2000.0, math.inf])
def test_resistance_outside_every_band_is_a_proximity_error(ohms: float) -> None:
    with pytest.raises(ProximityError):
        cable_ampacity(ohms)


def test_pp_bands_do_not_overlap() -> None:
    ordered = sorted(PP_BANDS, key=lambda band: band.low_ohms)
    assert all(lower.high_ohms < upper.low_ohms for lower, upper in pairwise(ordered))
