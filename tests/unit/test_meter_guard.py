"""Plausibility of the import register: backwards, jumps beyond the rated power, new series."""

from __future__ import annotations

import math

import pytest

from hal.meters.modbus_meter import EnergyGuard

MAX_W = 22_000.0  # 32 A on three phases


def test_first_reading_is_the_reference_and_normal_growth_passes() -> None:
    guard = EnergyGuard(MAX_W)
    assert guard.check(1000.0, 0.0) is None
    assert guard.check(1006.0, 1.0) is None  # 21.6 kW for 1 s
    assert guard.check(1006.0, 2.0) is None  # nothing flows
    assert guard.last_good_wh == 1006.0


def test_energy_going_backwards_is_implausible() -> None:
    guard = EnergyGuard(MAX_W)
    guard.check(5000.0, 0.0)
    reason = guard.check(4000.0, 1.0)
    assert reason is not None and "backwards from 5000.0 to 4000.0" in reason
    assert guard.last_good_wh == 5000.0  # the last good value stays the reference


def test_a_jump_beyond_the_rated_power_is_implausible() -> None:
    guard = EnergyGuard(MAX_W)
    guard.check(5000.0, 0.0)
    # 22 kW for 10 s (+2 s slack, +25 %) allows about 92 Wh; 1 kWh cannot be.
    reason = guard.check(6000.0, 10.0)
    assert reason is not None and "jumped 1000.0 Wh in 10.0 s" in reason
    assert guard.check(5090.0, 10.0) is None


def test_a_long_gap_allows_more_energy() -> None:
    guard = EnergyGuard(MAX_W)
    guard.check(0.0, 0.0)
    assert guard.check(20_000.0, 3600.0) is None  # 20 kWh in an hour at 22 kW max


@pytest.mark.parametrize("bad", [None, math.nan, math.inf, -1.0])
def test_a_register_that_is_not_a_meter_value_is_implausible(bad: float | None) -> None:
    guard = EnergyGuard(MAX_W)
    assert guard.check(bad, 0.0) is not None
    assert guard.last_good_wh is None


def test_resolution_of_the_register_is_tolerated() -> None:
    guard = EnergyGuard(MAX_W, resolution_wh=100.0)  # kWh x 10 registers step by 100 Wh
    guard.check(12_345_600.0, 0.0)
    assert guard.check(12_345_500.0, 1.0) is None  # one step down: rounding, not a fault
    assert guard.check(12_345_300.0, 2.0) is not None


def test_no_rated_power_means_no_jump_check() -> None:
    guard = EnergyGuard(None)
    guard.check(0.0, 0.0)
    assert guard.check(1e9, 1.0) is None


def test_a_consistent_new_series_is_accepted_after_three_readings() -> None:
    guard = EnergyGuard(MAX_W)
    guard.check(50_000.0, 0.0)
    assert guard.check(10.0, 1.0) is not None  # meter replaced: starts near zero
    assert guard.check(12.0, 2.0) is not None
    assert guard.check(15.0, 3.0) is None  # third consistent reading
    assert guard.rebaselined and guard.last_good_wh == 15.0
    assert guard.check(16.0, 4.0) is None and not guard.rebaselined


def test_scattered_garbage_never_becomes_the_reference() -> None:
    guard = EnergyGuard(MAX_W)
    guard.check(50_000.0, 0.0)
    for t, garbage in enumerate((10.0, 9e6, 3.0, 8e7, 1.0), start=1):
        assert guard.check(garbage, float(t)) is not None
    assert guard.last_good_wh == 50_000.0
    assert guard.check(50_001.0, 6.0) is None


def test_rated_power_must_be_positive() -> None:
    with pytest.raises(ValueError):
        EnergyGuard(0.0)
