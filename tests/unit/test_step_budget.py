"""The safety step's budget: tick_s plus one step's ADC time, at most 15 ms with the heartbeat fitted."""

from __future__ import annotations

import pytest

from chargepoint.config.board import AdcConfig, BoardConfig, HeartbeatConfig, ProximityConfig
from chargepoint.config.step_budget import STEP_BUDGET_S, adc_time_s, step_budget_problem, step_time_s
from hal.pi.ads1x15 import Ads1x15, conversion_s
from hal.pi.pilot import PeakDetectorFrontEnd
from tests.unit.pi_fakes import FakeAds1x15

HEARTBEAT = HeartbeatConfig(pin=16)


def board(*, heartbeat: bool = True, pp: bool = True, **adc: object) -> BoardConfig:
    return BoardConfig(adc=AdcConfig(**adc), pp=ProximityConfig(enabled=pp),  # type: ignore[arg-type]
                       heartbeat=HEARTBEAT if heartbeat else None)


def test_the_budget_counts_exactly_what_the_ads_driver_waits_in_one_step():
    """CP high, CP low and PP (when due): the sleeps of the driver, summed, are the ADC time."""
    slept: list[float] = []
    adc = Ads1x15(FakeAds1x15(lambda channel: 1.0, chip="ads1015"), chip="ads1015", data_rate=920,
                  sleep=slept.append)
    front_end = PeakDetectorFrontEnd(adc, 0, 1, 2)
    slept.clear()
    front_end.read_cp()
    front_end.read_pp()
    assert sum(slept) == pytest.approx(adc_time_s(board(type="ads1015", data_rate=920)))
    assert len(slept) == 3


@pytest.mark.parametrize(("adc", "pp", "expected_s"), [
    ({"type": "ads1015", "data_rate": 3300}, True, 3 * (1.1 / 3300 + 50e-6)),
    ({"type": "ads1115", "data_rate": 860}, True, 3 * (1.1 / 860 + 50e-6)),
    ({"type": "ads1115", "data_rate": 860}, False, 2 * (1.1 / 860 + 50e-6)),  # no PP circuit
    ({"type": "mcp3008", "burst_samples": 256}, True, 257 * 32e-6),
    ({"type": "mcp3008", "burst_samples": 256}, False, 256 * 32e-6),
])
def test_adc_time_per_front_end(adc, pp, expected_s):
    assert adc_time_s(board(pp=pp, **adc)) == pytest.approx(expected_s)
    assert step_time_s(0.005, board(pp=pp, **adc)) == pytest.approx(0.005 + expected_s)


def test_the_reference_board_fits_with_room_to_spare():
    reference = board(type="ads1015", data_rate=3300)
    assert step_time_s(0.005, reference) == pytest.approx(0.00615, abs=1e-5)
    assert step_budget_problem("f.toml", 0.005, reference) is None
    # hardware.md's MCP3008 advice: 256 samples and a 5 ms tick, about 13 ms.
    assert step_budget_problem("f.toml", 0.005, board(type="mcp3008", burst_samples=256)) is None


def test_without_the_heartbeat_there_is_no_budget():
    assert step_budget_problem("f.toml", 0.05, board(heartbeat=False, type="ads1115", data_rate=8)) is None
    assert step_budget_problem("f.toml", 0.01, None) is None


def test_exactly_at_the_budget_is_allowed():
    slow = board(type="ads1115", data_rate=860)
    assert step_budget_problem("f.toml", STEP_BUDGET_S - adc_time_s(slow), slow) is None


def test_a_long_tick_names_tick_s_with_the_figure_and_both_fixes():
    problem = step_budget_problem("f.toml", 0.01, board(type="ads1115", data_rate=475))
    assert problem is not None
    assert (problem.file, problem.key) == ("f.toml", "safety.tick_s")
    assert problem.reason == (
        "the safety step may take 17.1 ms (tick_s 10 ms + 3 ADS1115 conversions at 475 SPS, 2.37 ms each), "
        "more than the 15 ms the heartbeat's charge pump allows (hardware.md, Hardware fail-safe): "
        "set safety.tick_s to at most 0.0079 or board.adc.data_rate to 860 SPS or faster")


def test_only_the_tick_can_fix_it():
    problem = step_budget_problem("f.toml", 0.012, board(type="ads1115", data_rate=860))
    assert problem is not None and problem.key == "safety.tick_s"
    assert problem.reason.endswith("set safety.tick_s to at most 0.011")


def test_an_adc_too_slow_for_any_tick_names_the_adc_key():
    problem = step_budget_problem("f.toml", 0.005, board(type="ads1115", data_rate=64))
    assert problem is not None and problem.key == "board.adc.data_rate"
    assert "3 ADS1115 conversions at 64 SPS" in problem.reason
    assert problem.reason.endswith("set board.adc.data_rate to 475 SPS or faster")


def test_a_long_burst_names_the_burst():
    problem = step_budget_problem("f.toml", 0.01, board(type="mcp3008", burst_samples=256))
    assert problem is not None and problem.key == "safety.tick_s"
    assert "a burst of 256 MCP3008 samples and PP, 32 us each" in problem.reason
    assert problem.reason.endswith(
        "set safety.tick_s to at most 0.0067 or board.adc.burst_samples to at most 155")
    problem = step_budget_problem("f.toml", 0.005, board(type="mcp3008", burst_samples=2000))
    assert problem is not None and problem.key == "board.adc.burst_samples"
    assert problem.reason.endswith("set board.adc.burst_samples to at most 311")


def test_when_neither_alone_fits_both_are_named():
    problem = step_budget_problem("f.toml", 0.05, board(type="ads1115", data_rate=8))
    assert problem is not None and problem.key == "board.adc.data_rate"
    assert problem.reason.endswith("set safety.tick_s to 0.005 and board.adc.data_rate to 475 SPS or faster")


def test_the_budgets_suggestions_fit():
    """Whatever the reason suggests is accepted in turn."""
    assert step_budget_problem("f", 0.0079, board(type="ads1115", data_rate=475)) is None
    assert step_budget_problem("f", 0.01, board(type="ads1115", data_rate=860)) is None
    assert step_budget_problem("f", 0.0067, board(type="mcp3008", burst_samples=256)) is None
    assert step_budget_problem("f", 0.01, board(type="mcp3008", burst_samples=155)) is None
    assert step_budget_problem("f", 0.005, board(type="mcp3008", burst_samples=311)) is None
    assert step_budget_problem("f", 0.005, board(type="mcp3008", burst_samples=312)) is not None
    assert conversion_s(860) == pytest.approx(1.1 / 860 + 50e-6)
