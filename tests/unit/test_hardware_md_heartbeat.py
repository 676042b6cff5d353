"""hardware.md's heartbeat figures, recomputed from the BOM with the circuit's model.

The "Hardware fail-safe" section's timing, its table of G against the loop's step,
its table of single faults and what the check before every session sees, and the
read-back's and the pilot gate's part values: each figure is computed here from
the BOM through ``hal.sim.heartbeat`` (the model the simulation and the tests
use) and from the check's own limits, so a changed part or limit that leaves a
stale number behind fails.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest

from chargepoint.config.loader import load
from chargepoint.config.step_budget import STEP_BUDGET_S
from chargepoint.safety.heartbeat_check import (
    FALL_LIMIT_S,
    GATE_LOW_V,
    GATE_MAX_V,
    GATE_OFF_V,
    GATE_RISEN_V,
    PULSE_S,
    RISE_READ_S,
    SETTLE_LIMIT_S,
)
from hal.sim.heartbeat import ChargePump, PumpParts
from tests.unit.test_hardware_md import EXAMPLE, bom, farads, flat, ohms, parallel, text

__all__ = ["bom", "flat", "text"]  # the fixtures this module shares with test_hardware_md


#: The 2N7002's thresholds as the text states them: a part at the top of its range holds K1 down to
#: about 3.0 V of gate; a hot part (0.7 V) releases it last.
HOLD_V, HOT_RELEASE_V = 3.0, 0.7


def _pulsed(parts: PumpParts, step_s: float = 0.006) -> tuple[ChargePump, float]:
    """The pump after a healthy loop's steps, stopped right after a charging (falling) edge."""
    pump, t, level = ChargePump(parts), 0.0, False
    for _ in range(200):
        t += step_s
        level = not level
        pump.gpio(level, t)
    if level:
        t += step_s
        pump.gpio(False, t)
    return pump, t


def _ms_to(parts: PumpParts, volts: float) -> float:
    """Milliseconds from the last charging edge until G is below ``volts``."""
    pump, t0 = _pulsed(parts)
    t = t0
    while pump.gate_v(t) >= volts:
        t += 1e-4
    return (t - t0) * 1e3


def _c61(parts: PumpParts, tolerance: float) -> PumpParts:
    return dataclasses.replace(parts, c61_f=parts.c61_f * (1 + tolerance))


def test_the_pump_model_is_the_bom(bom):
    """The figures below come from hal.sim.heartbeat's model; its parts are the BOM's."""
    parts = PumpParts()
    assert ohms(bom["R61a"]) == ohms(bom["R61b"]) == parts.r61a_ohms == parts.r61b_ohms
    assert ohms(bom["R62"]) == parts.r62_ohms
    assert ohms(bom["R68"]) == parts.r68_ohms and ohms(bom["R69"]) == parts.r69_ohms
    assert farads(bom["C61"]) == pytest.approx(parts.c61_f)
    m = re.match(r"2 × ([\d.]+ µF)", bom["C60"])
    assert m and farads(m.group(1)) / 2 == pytest.approx(parts.c60_f)
    assert "±10 %" in bom["C61"]


def test_heartbeat_timing_figures(flat):
    parts = PumpParts()
    m = re.search(r"τ = \(R61a ∥ R61b ∥ \(R68 \+ R69\)\) × C61 = (\d+) ms", flat)
    assert m and float(m.group(1)) == pytest.approx(parts.tau_gate_s * 1e3, abs=0.5)
    pump, t = _pulsed(parts)
    peak, low = pump.gate_v(t), pump.gate_v(t + 0.012)
    m = re.search(r"G sits between about ([\d.]+) and ([\d.]+) V in steady state", flat)
    assert m and (float(m.group(1)), float(m.group(2))) == (round(low, 1), round(peak, 1))
    early = _ms_to(_c61(parts, -0.1), HOLD_V)
    late = _ms_to(_c61(parts, 0.1), HOT_RELEASE_V)
    assert f"K1 drops {early:.0f}–{late:.0f} ms after the last charging edge" in flat
    assert f"no earlier than {early:.0f} ms (C61 −10 %, G falling to 3.0 V)" in flat
    assert f"no later than {late:.0f} ms (C61 +10 %, a hot part at 0.7 V)" in flat
    nominal = (_ms_to(parts, HOLD_V), _ms_to(parts, 1.0))
    assert f"({nominal[0]:.0f}–{nominal[1]:.0f} ms, G between 3.0 and 1.0 V)" in flat and nominal[1] < 100
    assert "KM1 opens its own release time later: within 0.2 s" in flat
    # The safety summary and the layers table say the same.
    summary = f"K1 drops {early:.0f}–{late:.0f} ms after the last charging edge (within 0.1 s for nominal"
    assert summary in flat


def test_the_loop_period_table(text):
    rows = re.findall(r"^\| ([\d.]+) ms[^|]* \| ([\d.]+) V \|", text, re.MULTILINE)
    steps = {float(step): float(volts) for step, volts in rows}
    assert {6, 10, 15, 18, 25.5, 50} <= set(steps)
    for step, volts in steps.items():
        pump, t = _pulsed(PumpParts(), step / 1e3)
        assert round(pump.gate_v(t + 2 * step / 1e3), 1) == volts, step
    assert steps[15] > HOLD_V > steps[25.5], "15 ms holds K1, 25.5 ms lets it chatter"
    assert STEP_BUDGET_S == 0.015
    # An MCP3008 burst of 256 at 50 us a sample, plus the 5 ms tick, is the 18 ms row.
    assert 0.005 + 256 * 50e-6 == pytest.approx(0.018, abs=0.0002)


def test_the_fault_table_and_the_check_limits(text, flat):
    """Each fault's row recomputed from the model, and the check's limits as the code has them."""
    parts = PumpParts()
    table = text[text.index("| Fault | What the check sees"):text.index("A failed check is the connector's")]
    rows = {cells[0]: cells[1:] for cells in
            (re.split(r" \| ", line.strip("| ")) for line in table.splitlines()[2:] if line)}

    def to_1v(**fault: Any) -> tuple[float, float]:
        failed = dataclasses.replace(parts, **fault)
        return _ms_to(_c61(failed, -0.1), 1.0), _ms_to(_c61(failed, 0.1), 1.0)

    def hold_up(**fault: Any) -> float:
        return _ms_to(_c61(dataclasses.replace(parts, **fault), 0.1), HOT_RELEASE_V)

    low, high = to_1v()
    assert f"below 1.0 V after {low:.0f}–{high:.0f} ms" in rows["none (nominal parts, C61 ±10 %)"][0]
    assert high < FALL_LIMIT_S * 1e3
    low, high = to_1v(r61a_ohms=math.inf)
    assert f"({low:.0f}–{high:.0f} ms to 1.0 V)" in rows["R61a or R61b open"][0] and low > FALL_LIMIT_S * 1e3
    assert rows["R61a or R61b open"][1] == f"up to {hold_up(r61a_ohms=math.inf):.0f} ms"
    low, high = to_1v(r61a_ohms=math.inf, r61b_ohms=math.inf)
    assert f"({low / 1e3:.1f}–{high / 1e3:.1f} s to 1.0 V)" in rows["R61a and R61b open"][0]
    assert rows["R61a and R61b open"][1].startswith(
        f"up to {hold_up(r61a_ohms=math.inf, r61b_ohms=math.inf) / 1e3:.1f} s")
    low, high = to_1v(r62_ohms=math.inf)
    assert f"{low:.0f}–{high:.0f} ms to 1.0 V" in rows["R62 open"][0] and low > FALL_LIMIT_S * 1e3
    assert rows["R62 open"][1] == f"up to {hold_up(r62_ohms=math.inf):.0f} ms"
    for row in ("R68 open", "R69 open"):
        early = _ms_to(_c61(dataclasses.replace(parts, r68_ohms=math.inf), -0.1), HOLD_V)
        assert rows[row][1].startswith(f"{early:.0f}–{hold_up(r68_ohms=math.inf):.0f} ms"), row
    # The limits the text gives are the check's.
    assert f"G must fall below {GATE_LOW_V:.1f} V within {FALL_LIMIT_S * 1e3:.0f} ms" in flat
    assert f"G must read {GATE_RISEN_V:.1f} V or more" in flat and f"at most {GATE_MAX_V:.0f} V" in flat
    assert f"within {RISE_READ_S * 1e3:.0f} ms of the last charging edge" in flat
    pump, t = _pulsed(_c61(parts, -0.1))
    late = pump.gate_v(t + RISE_READ_S)
    shown = f"still above {math.floor(late * 10) / 10:.1f} V {RISE_READ_S * 1e3:.0f} ms later"
    assert late > GATE_RISEN_V and shown in flat
    assert f"once G is below {GATE_OFF_V:.1f} V" in flat and f"for {PULSE_S * 1e3:.0f} ms, then" in flat


def test_heartbeat_read_back_figures(flat, bom):
    r68, r69, r72, r73 = (ohms(bom[r]) for r in ("R68", "R69", "R72", "R73"))
    ratio = (r68 + r69) / r69
    board = load(EXAMPLE).board
    assert board.heartbeat.gate_ratio == pytest.approx(ratio, abs=5e-4)
    assert f"G volts = AIN3 volts × {ratio:.3f}" in flat
    assert f"the 12 V rail, reads {12 / ratio:.2f} V" in flat and 12 / ratio < board.adc.input_max_v
    assert f"limits any fault current into AIN3 to {12 / r68 * 1e6:.0f} µA" in flat
    assert f"(τ = {parallel(r68, r69) * farads(bom['C62']) * 1e3:.1f} ms" in flat
    led_ma = (12 - 1.2) / r72 * 1e3
    assert f"(12 V − 1.2 V) / R72 = {led_ma:.1f} mA" in flat
    sink_ma, pull_ma = led_ma * 0.5, 3.3 / r73 * 1e3
    assert "CTR ≥ 50 %" in bom["U14"]
    assert f"can sink {sink_ma:.2f} mA, more than the {pull_ma:.2f} mA R73" in flat and sink_ma > pull_ma
    assert board.heartbeat.drain_pin == 5 and board.heartbeat.gate_channel == 3
    # The pilot gate's pulse, and that it outlasts the check before a session.
    gate_s = ohms(bom["R80"]) * farads(bom["C64"])
    assert "a pulse of about 0.5 s" in flat and gate_s == pytest.approx(0.5, abs=0.05)
    assert gate_s > PULSE_S + SETTLE_LIMIT_S / 2


def test_the_step_figures_are_the_benchs(flat):
    """The longest steps hardware.md quotes are bench/README.md's recorded ones."""
    bench = (EXAMPLE.parents[1] / "bench" / "README.md").read_text()
    latest = bench[bench.index("**Latest**"):]
    table = latest[latest.index("phase        p50"):latest.index("```", latest.index("phase        p50"))]
    s_max = [float(row.split()[7]) for row in table.splitlines()[1:] if row.strip()]
    assert f"was {min(s_max):.1f}–{max(s_max):.1f} ms in the latest run" in flat
    worst = max(float(v) for v in re.findall(r"^\w[\w+]* +(?:[\d.]+ +){3}[\d.]+x +(?:[\d.]+ +){3}([\d.]+) ",
                                              bench, re.MULTILINE))
    assert f"{worst:.1f} ms in the worst of three earlier runs" in flat
    tick_ms = load(EXAMPLE).safety.tick_s * 1e3
    assert f"at most {tick_ms:g} + {worst:.1f} = {tick_ms + worst:.1f} ms apart" in flat
    assert tick_ms + worst < STEP_BUDGET_S * 1e3
