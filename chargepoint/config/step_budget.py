"""The safety step's time budget: what the heartbeat's charge pump allows.

The safety loop sleeps ``[safety] tick_s`` between steps, and each step reads
the pilot through the ADC, so one heartbeat edge follows the last after
``tick_s`` plus the step's conversions. hardware.md ("Hardware fail-safe")
holds the contactor's relay only about 46-100 ms after the last edge and needs
an edge at least every 30 ms: a step of at most 15 ms. A configuration whose
step can take longer would drop the contactor under a healthy loop, so it is
refused before anything starts, by the daemon's loader, by ``check-config`` and
by the supervisor's view of the file alike.
"""

from __future__ import annotations

import math

from chargepoint.config.board import BoardConfig
from chargepoint.config.reader import ConfigError
from hal.pi.ads1x15 import DATA_RATES, conversion_s

#: The longest step the charge pump keeps the relay through with a wide margin (hardware.md).
STEP_BUDGET_S = 0.015
#: One MCP3008 sample over hardware SPI through gpiozero: "a few tens of microseconds", a burst of
#: 256 roughly 8 ms (hardware.md, "Control pilot"), rounded up.
MCP3008_SAMPLE_S = 32e-6
#: The shortest ``tick_s`` the loader accepts, and the shortest burst.
TICK_MIN_S = 0.001
BURST_MIN = 8
#: The reference board's tick, suggested when the sleep and the ADC must both change.
PAIRED_TICK_S = 0.005


def adc_time_s(board: BoardConfig) -> float:
    """The longest time one step spends converting: CP high and low (or the CP burst), plus PP when due.

    PP is converted only every ``board.pp.interval_s`` or after the pilot moved, but a step that
    does it must fit too, so it is counted whenever the board reads PP.
    """
    adc = board.adc
    pp = 1 if board.pp.enabled else 0
    if adc.type == "mcp3008":
        return (adc.burst_samples + pp) * MCP3008_SAMPLE_S
    return (2 + pp) * conversion_s(adc.data_rate)


def step_time_s(tick_s: float, board: BoardConfig) -> float:
    """From one heartbeat edge to the next at worst: the loop's sleep plus one step's conversions."""
    return tick_s + adc_time_s(board)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3g} ms"


def _what(board: BoardConfig) -> str:
    """The step's conversions in words, for the reason."""
    adc = board.adc
    pp = 1 if board.pp.enabled else 0
    if adc.type == "mcp3008":
        return (f"a burst of {adc.burst_samples} MCP3008 samples{' and PP' if pp else ''}, "
                f"{MCP3008_SAMPLE_S * 1e6:g} us each")
    return (f"{2 + pp} {adc.type.upper()} conversions at {adc.data_rate} SPS, "
            f"{_ms(conversion_s(adc.data_rate))} each")


def _adc_setting(room_s: float, board: BoardConfig) -> str | None:
    """The ADC setting whose conversions fit in ``room_s`` (None if none does)."""
    adc = board.adc
    pp = 1 if board.pp.enabled else 0
    if adc.type == "mcp3008":
        most = math.floor(room_s / MCP3008_SAMPLE_S + 1e-9) - pp
        return f"board.adc.burst_samples to at most {most}" if most >= BURST_MIN else None
    fitting = [rate for rate in sorted(DATA_RATES[adc.type]) if (2 + pp) * conversion_s(rate) <= room_s]
    return f"board.adc.data_rate to {fitting[0]} SPS or faster" if fitting else None


def step_budget_problem(file: str, tick_s: float, board: BoardConfig | None) -> ConfigError | None:
    """The problem of a step that may exceed ``STEP_BUDGET_S`` with the heartbeat fitted, else None.

    It names ``safety.tick_s`` when a shorter sleep alone can fix it, else the ADC's key
    (``board.adc.data_rate`` or ``board.adc.burst_samples``), and gives the computed step and
    what to change.
    """
    if board is None or board.heartbeat is None:
        return None
    adc_s = adc_time_s(board)
    total = step_time_s(tick_s, board)
    if total <= STEP_BUDGET_S + 1e-12:
        return None
    most_tick = math.floor((STEP_BUDGET_S - adc_s) * 1e4 + 1e-6) / 1e4
    fixes = [f"safety.tick_s to at most {most_tick:g}"] if most_tick >= TICK_MIN_S else []
    adc_fix = _adc_setting(STEP_BUDGET_S - tick_s, board)
    if adc_fix is not None:
        fixes.append(adc_fix)
    change = " or ".join(fixes)
    if not fixes:  # the sleep is long and the ADC slow: both must change
        paired = _adc_setting(STEP_BUDGET_S - PAIRED_TICK_S, board)
        change = f"safety.tick_s to {PAIRED_TICK_S:g} and {paired}"
    key = "safety.tick_s" if most_tick >= TICK_MIN_S else \
        ("board.adc.burst_samples" if board.adc.type == "mcp3008" else "board.adc.data_rate")
    return ConfigError(file, key, f"the safety step may take {_ms(total)} (tick_s {_ms(tick_s)} + "
                                  f"{_what(board)}), more than the {_ms(STEP_BUDGET_S)} the heartbeat's "
                                  f"charge pump allows (hardware.md, Hardware fail-safe): set {change}")
