"""hardware.md's phase-switching figures, recomputed: the surplus thresholds, the pin, the pauses."""

from __future__ import annotations

import re

from chargepoint.config import parse
from chargepoint.safety.iec61851 import MIN_PWM_CURRENT_A
from chargepoint.safety.phases import PhaseTiming
from tests.unit.test_hardware_md import HEADER_PIN
from tests.unit.test_pi_board import HARDWARE_MD, with_changes

VOLTS = 230.0


def flat() -> str:
    return re.sub(r"\s+", " ", HARDWARE_MD.read_text())


def section() -> str:
    text = flat()
    return text[text.index("## Phase switching: KM2"):text.index("## RCD / residual current monitor")]


def test_the_surplus_thresholds_are_six_amps_on_one_and_on_three_phases():
    one = MIN_PWM_CURRENT_A * VOLTS / 1000
    three = MIN_PWM_CURRENT_A * 3 * VOLTS / 1000
    text = section()
    assert f"6 A × 3 × 230 V ≈ {three:.1f} kW" in text
    assert f"6 A × 230 V ≈ {one:.1f} kW" in text
    assert f"{one:.1f}–{three:.1f} kW" in text


def test_the_pin_map_row_is_the_documented_key_and_a_free_pin():
    text = HARDWARE_MD.read_text()
    row = re.search(r"^\| GPIO(\d+) \| (\d+) \| phase contactor[^|]*\|[^|]*\|[^|]*\| `([^`]+)` \|$", text,
                    re.MULTILINE)
    assert row, "no pin map row for the phase contactor"
    gpio, header, key = int(row.group(1)), int(row.group(2)), row.group(3)
    assert HEADER_PIN[gpio] == header and key == "board.phase_contactor.pin"
    assert f"`pin = {gpio}`" in section()
    # The documented pin is accepted next to the example's board (no clash with any other pin).
    assert parse(with_changes({key: gpio}), "x.toml").board.phase_contactor.pin == gpio
    assert f"GPIO{gpio} → R76 100 Ω → Q11" in section()


def test_the_driver_parts_are_in_the_bom():
    text = HARDWARE_MD.read_text()
    table = text[text.index("## Bill of materials"):text.index("## Pin map")]
    row = re.compile(r"^\| ([^|]+) \| [^|]+ \| ([^|]+) \|", re.MULTILINE)
    rows = {m.group(1): m.group(2) for m in row.finditer(table)}
    assert rows["R76, R77"] == "100 Ω, 100 kΩ"
    assert rows["Q11"].startswith("AO3400A") and rows["D32"] == "1N4148W"
    assert {"K6", "KM2", "Z2"} <= rows.keys()


def test_the_pauses_are_the_safety_loop_s():
    timing = PhaseTiming()
    text = section()
    assert f"100 % with KM1 open for **{timing.before_s:g} s**" in text
    assert f"100 % for **{timing.after_s:g} s** more" in text
    assert f"released {timing.km1_release_s:g} s after KM1's command" in text
