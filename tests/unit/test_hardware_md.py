"""hardware.md's numbers, recomputed from the example's values and from the formulas the text states.

Every figure a technician checks a board against (bring-up readings, fault currents, time
constants, probabilities) is recomputed here, so an edit to a part value or a formula that leaves a
stale number behind fails. Text is searched with its line breaks folded into spaces.
"""

from __future__ import annotations

import copy
import math
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from chargepoint.config.loader import ConfigError, load, parse
from chargepoint.safety.iec61851 import PP_BANDS, cable_ampacity
from hal.pi.pilot import OffsetDivider, PullUpDivider

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "raspberrypi.toml"
HARDWARE_MD = ROOT / "hardware.md"
SAFETY_UNIT = ROOT / "systemd" / "chargepoint-safety.service"
UNIT = ROOT / "systemd" / "chargepoint.service"

#: IEC 61851-1 EV-side resistors (the simulator in the bring-up checklist) and the source resistor.
R_B = 2740.0
R_C_EXTRA = 1300.0
R_D_EXTRA = 270.0
GENERATOR_V = 12.0

#: BCM GPIO → 40-pin header pin, as on every 40-pin Raspberry Pi.
HEADER_PIN = {2: 3, 3: 5, 4: 7, 5: 29, 6: 31, 7: 26, 8: 24, 9: 21, 10: 19, 11: 23, 12: 32, 13: 33,
              14: 8, 15: 10, 16: 36, 17: 11, 18: 12, 19: 35, 20: 38, 21: 40, 22: 15, 23: 16,
              24: 18, 25: 22, 26: 37, 27: 13}


def parallel(a: float, b: float) -> float:
    return a * b / (a + b)


def number(text: str) -> float:
    """A number as the document writes it: unicode minus, percent sign, e-notation."""
    text = text.strip().replace("−", "-").replace("+", "")
    if text.endswith("%"):
        return float(text[:-1].strip()) / 100
    return float(text)


@pytest.fixture(scope="module")
def text() -> str:
    return HARDWARE_MD.read_text()


@pytest.fixture(scope="module")
def flat(text: str) -> str:
    """The document with every run of whitespace folded into one space."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def divider() -> OffsetDivider:
    return load(EXAMPLE).board.divider()


@pytest.fixture(scope="module")
def bom(text: str) -> dict[str, str]:
    """Bill of materials: reference → value column.

    ``| R16, R19 | resistor | 10 kΩ 1 % |`` gives both the same value;
    ``| R33, R34 | resistor | 10 kΩ, 47 kΩ |`` gives one value each.
    """
    section = text[text.index("## Bill of materials"):text.index("## Pin map")]
    rows = {}
    for refs, value in re.findall(r"^\| ([A-Z][\w/–, ]*) \| [^|]+ \| ([^|]+) \|", section, re.MULTILINE):
        names = [r.strip() for r in refs.split(",")]
        values = [v.strip() for v in value.split(", ")]
        if len(names) > 1 and len(values) == len(names) and all(re.match(r"[\d.]+ \w?Ω", v) for v in values):
            rows.update(zip(names, values, strict=True))
        else:
            rows.update((name, value.strip()) for name in names)
    return rows


def ohms(value: str) -> float:
    m = re.match(r"([\d.]+) (k|M)?Ω", value)
    assert m, value
    return float(m.group(1)) * {"k": 1e3, "M": 1e6, None: 1.0}[m.group(2)]


def farads(value: str) -> float:
    m = re.match(r"([\d.]+) (p|n|µ)F", value)
    assert m, value
    return float(m.group(1)) * {"p": 1e-12, "n": 1e-9, "µ": 1e-6}[m.group(2)]


def example_with(changes: dict[str, Any]) -> dict[str, Any]:
    data = copy.deepcopy(tomllib.loads(EXAMPLE.read_text()))
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        table = data
        for part in path:
            table = table.setdefault(part, {})
        table[last] = value
    return data


# ------------------------------------------------------------------ bring-up: states with the simulator


def test_simulator_resistors_are_the_standard_parallel_values(flat):
    m = re.search(r"B = ([\d.]+) kΩ, C = (\d+) Ω \(2\.74 kΩ ∥ 1\.3 kΩ\), "
                  r"D = (\d+) Ω \(2\.74 kΩ ∥ 270 Ω\)", flat)
    assert m, "the simulator resistors are no longer stated"
    assert float(m.group(1)) * 1e3 == R_B
    assert int(m.group(2)) == round(parallel(R_B, R_C_EXTRA))
    assert int(m.group(3)) == round(parallel(R_B, R_D_EXTRA))


def test_bring_up_state_rows_agree_with_the_divider(text, divider, bom):
    rows = re.findall(
        r"^\s*\| (A \(open\)|B|C|D|E \(CP–PE short\)|C, diode shorted)"
        r" \| ([^|]+) \| ([^|]+) \| (\w) \| ([^|]+) \|$", text, re.MULTILINE)
    assert [r[0] for r in rows] == ["A (open)", "B", "C", "D", "E (CP–PE short)", "C, diode shorted"], rows
    for name, cp_plus, _cp_minus, _state, adc in rows:
        plus = number(re.match(r"\s*([-+−]?[\d.]+) V", cp_plus).group(1))
        ain0 = number(re.match(r"\s*([\d.]+) V", adc).group(1))
        assert ain0 == pytest.approx(divider.to_adc(plus), abs=0.006), name


def test_diode_shorted_row_is_the_resistive_divider_of_state_c(text, flat, divider, bom):
    """With the EV's diode shorted, R4 and state C's 882 Ω divide both halves of the ±12 V wave."""
    r4 = ohms(bom["R4"])
    r_c = parallel(R_B, R_C_EXTRA)
    v = GENERATOR_V * r_c / (r4 + r_c)
    assert v == pytest.approx(5.62, abs=0.005)
    row = re.search(r"^\s*\| C, diode shorted \| ([^|]+) \| ([^|]+) \| C \| ([^|]+) \|$", text, re.MULTILINE)
    assert row
    plus = number(re.match(r"\s*([-+−]?[\d.]+) V", row.group(1)).group(1))
    minus = number(re.match(r"\s*([-+−]?[\d.]+) V", row.group(2)).group(1))
    ain0 = number(re.match(r"\s*([\d.]+) V", row.group(3)).group(1))
    ain1 = number(re.search(r"AIN1 ([\d.]+) V", row.group(3)).group(1))
    assert plus == pytest.approx(v, abs=0.05)
    assert minus == pytest.approx(-v, abs=0.05)
    assert ain0 == pytest.approx(divider.to_adc(v), abs=0.006)
    assert ain1 == pytest.approx(divider.to_adc(-v), abs=0.006)
    # The worked formula under the table.
    m = re.search(r"±12 V × (\d+) Ω / \(1000 Ω \+ (\d+) Ω\) = ±([\d.]+) V", flat)
    assert m
    assert int(m.group(1)) == int(m.group(2)) == round(r_c)
    assert float(m.group(3)) == pytest.approx(v, abs=0.005)


def test_missing_diode_readings_in_the_adc_section(flat, divider, bom):
    r4 = ohms(bom["R4"])
    m = re.search(r"AIN1 reads ([\d.]+) V in B \(±([\d.]+) V\) and ([\d.]+) V in C \(±([\d.]+) V\)", flat)
    assert m, "the missing-diode readings are no longer stated"
    cases = ((m.group(1), m.group(2), R_B), (m.group(3), m.group(4), parallel(R_B, R_C_EXTRA)))
    for adc_v, pilot_v, r_ev in cases:
        v = GENERATOR_V * r_ev / (r4 + r_ev)
        assert float(pilot_v) == pytest.approx(v, abs=0.005)
        assert float(adc_v) == pytest.approx(divider.to_adc(-v), abs=0.0006)


# ------------------------------------------------------------------ MCP3008: the divider keeps U5's reference


def test_mcp3008_divider_ranges(flat, divider):
    m = re.search(r"The pilot's −13…\+13 V then maps to ([\d.]+)…([\d.]+) V, inside the MCP3008's", flat)
    assert m
    assert float(m.group(1)) == pytest.approx(divider.to_adc(-13), abs=0.0006)
    assert float(m.group(2)) == pytest.approx(divider.to_adc(13), abs=0.0006)
    wrong = OffsetDivider(divider.r_in_ohms, divider.r_ref_ohms, divider.r_gnd_ohms, 3.3)
    m = re.search(r"would map to ([\d.]+)…([\d.]+) V, \+12 V would read ([\d.]+) V", flat)
    assert m
    assert float(m.group(1)) == pytest.approx(wrong.to_adc(-13), abs=0.0006)
    assert float(m.group(2)) == pytest.approx(wrong.to_adc(13), abs=0.0006)
    assert float(m.group(3)) == pytest.approx(wrong.to_adc(12), abs=0.0006)
    assert wrong.to_adc(12) > 3.3


def test_mcp3008_claims_hold_for_the_configuration_checker(flat):
    """The text says check-config refuses R11 at 3.3 V, and recommends 256 samples within 8…2000;
    with the heartbeat, at most 311 samples at tick_s = 0.005."""
    adc = {"type": "mcp3008", "cp_channel": 0, "pp_channel": 1, "v_ref": 3.3, "burst_samples": 256}
    board = parse(example_with({"board.adc": adc}), "x").board
    assert board.adc.burst_samples == 256 and board.cp_divider.v_ref == 2.5
    with pytest.raises(ConfigError) as info:
        parse(example_with({"board.adc": adc, "board.cp_divider.v_ref": 3.3}), "x")
    assert info.value.key == "board.cp_divider"

    def burst(samples: int, heartbeat: bool = True) -> dict[str, Any]:
        data = example_with({"board.adc": dict(adc, burst_samples=samples)})
        if not heartbeat:
            del data["board"]["heartbeat"]
        return data

    for bad in (7, 2001):
        with pytest.raises(ConfigError):
            parse(burst(bad, heartbeat=False), "x")
    for good in (8, 2000):
        parse(burst(good, heartbeat=False), "x")
    m = re.search(r"with `tick_s = ([\d.]+)` a burst of at most (\d+)\.", flat)
    assert m, "the heartbeat's burst limit is no longer stated"
    tick, most = float(m.group(1)), int(m.group(2))
    assert example_with({})["safety"]["tick_s"] == tick
    parse(burst(most), "x")
    with pytest.raises(ConfigError) as info:
        parse(burst(most + 1), "x")
    assert "heartbeat's charge pump" in info.value.reason


# ------------------------------------------------------------------ ADC input protection


def test_adc_protection_figures(flat, divider, bom):
    r_series = ohms(bom["R16"])
    assert ohms(bom["R19"]) == r_series == 10e3
    m = re.search(r"\(12 V − 3\.3 V\) / 10 kΩ = ([\d.]+) mA", flat)
    assert m and float(m.group(1)) == pytest.approx((12 - 3.3) / r_series * 1e3, abs=0.005)
    m = re.search(r"10 kΩ / 6 MΩ = ([\d.]+) %: (\d+) mV at 3 V, ([\d.]+) V of pilot", flat)
    assert m
    fraction = r_series / 6e6
    assert float(m.group(1)) == pytest.approx(100 * fraction, abs=0.005)
    assert float(m.group(2)) == pytest.approx(3.0 * fraction * 1e3, abs=0.5)
    assert float(m.group(3)) == pytest.approx(3.0 * fraction * divider.k, abs=0.005)
    m = re.search(r"1 µA shifts the pin by (\d+) mV \(([\d.]+) V of pilot\)", flat)
    assert m
    assert float(m.group(1)) == pytest.approx(1e-6 * r_series * 1e3)
    assert float(m.group(2)) == pytest.approx(1e-6 * r_series * divider.k, abs=0.005)
    m = re.search(r"under 2 µA at 3 V \(([\d.]+) V of pilot", flat)
    assert m and float(m.group(1)) == pytest.approx(2e-6 * r_series * divider.k, abs=0.005)
    # R44's load exceeds the worst clamp current (both buffers failed high).
    r44 = ohms(bom["R44"])
    assert 3.3 / r44 > 2 * (12 - 3.3) / r_series


def test_pp_tvs_leakage_example(flat):
    board = load(EXAMPLE).board
    pullup = PullUpDivider(board.pp.pullup_ohms, board.pp.supply_v)
    leak = 0.8e-3
    m = re.search(r"an open PP would read 3\.3 V − 0\.8 mA × 1 kΩ = ([\d.]+) V", flat)
    assert m
    open_v = pullup.supply_v - leak * pullup.pullup_ohms
    assert float(m.group(1)) == pytest.approx(open_v)
    assert not math.isinf(pullup.to_ohms(open_v))  # not read as open
    assert all(not b.low_ohms <= pullup.to_ohms(open_v) <= b.high_ohms for b in PP_BANDS)  # nor a cable
    # "a 1500 Ω cable would read as a 20 A one": solve the node with the leakage.
    assert "a 1500 Ω cable would read as a 20 A one" in flat
    g = 1 / pullup.pullup_ohms
    v = (pullup.supply_v * g - leak) / (g + 1 / 1500)
    assert cable_ampacity(pullup.to_ohms(v)) == 20.0


# ------------------------------------------------------------------ pilot rails


def test_regulator_trim_range(flat, bom):
    r_set, r_top, trim = ohms(bom["R6"]), ohms(bom["R7"]), ohms(bom["RV1"])
    assert (ohms(bom["R8"]), ohms(bom["R9"]), ohms(bom["RV2"])) == (r_set, r_top, trim)
    m = re.search(r"V = 1\.25 V × \(1 \+ \(R7 \+ RV1\) / R6\), ([\d.]+)…([\d.]+) V", flat)
    assert m
    assert float(m.group(1)) == pytest.approx(1.25 * (1 + r_top / r_set), abs=0.005)
    assert float(m.group(2)) == pytest.approx(1.25 * (1 + (r_top + trim) / r_set), abs=0.005)
    assert "reaches 12.00 V with the reference 4 % off nominal" in flat
    for v_ref in (1.25 * 0.96, 1.25 * 1.04):
        assert v_ref * (1 + r_top / r_set) <= 12.0 <= v_ref * (1 + (r_top + trim) / r_set), v_ref
    m = re.search(r"R6 = 249 Ω sets (\d+) mA", flat)
    assert m and float(m.group(1)) == pytest.approx(1.25 / r_set * 1e3, abs=0.05)


# ------------------------------------------------------------------ heartbeat and pilot window


def test_pilot_window_thresholds(flat, divider, bom):
    r70, r71 = ohms(bom["R70"]), ohms(bom["R71"])
    low = 2.5 * r71 / (r70 + r71)
    m = re.search(r"Upper threshold: U5's 2\.500 V, which is ([\d.]+) V of pilot", flat)
    assert m and float(m.group(1)) == pytest.approx(divider.to_pilot(2.5), abs=0.005)
    m = re.search(r"= ([\d.]+) V from R70 10 kΩ / R71 27 kΩ, which is ([\d.]+) V of pilot", flat)
    assert m
    assert float(m.group(1)) == pytest.approx(low, abs=0.0005)
    assert float(m.group(2)) == pytest.approx(divider.to_pilot(low), abs=0.005)
    # The window lets C and D through and keeps B and E out (IEC 61851 nominal levels).
    for pilot_v, inside in ((9.0, False), (6.0, True), (3.0, True), (0.0, False)):
        assert (low < divider.to_adc(pilot_v) < 2.5) is inside, pilot_v


# ------------------------------------------------------------------ RCM input, pin map, watchdogs


def test_rcm_input_reads_trip_when_open(flat, bom):
    """The example describes the trip level (low) and pulls towards it, as the text says; the
    configuration refuses the opposite pull, which would read a lost signal as healthy."""
    config = load(EXAMPLE).board.rcd
    assert config.active_high is False and config.pull == "down"
    assert "`board.rcd.active_high = false`: that key always describes the **trip** level" in flat
    assert "The example sets `pull = \"down\"` as well" in flat
    assert ohms(bom["R41"]) == 4700
    data = tomllib.loads(EXAMPLE.read_text())
    data["board"]["rcd"]["pull"] = "up"
    with pytest.raises(ConfigError, match="not fail-safe"):
        parse(data, str(EXAMPLE))


def test_pin_map_is_consistent(text):
    rows = re.findall(r"^\| GPIO(\d+) \| (\d+) \| ([^|]+) \|", text, re.MULTILINE)
    gpios = [int(g) for g, _, _ in rows]
    assert len(gpios) == len(set(gpios)), gpios
    for gpio, header, function in rows:
        assert HEADER_PIN[int(gpio)] == int(header), (gpio, function)
    assert {16, 26} <= set(gpios)
    # Pins the text keeps free for HATs are not used.
    assert not {4, 7, 8, 9, 10, 11, 25} & set(gpios)
    board = load(EXAMPLE).board
    by_gpio = {int(g): f for g, _, f in rows}
    for pin, word in ((board.contactor.pin, "contactor"), (board.contactor.aux_pin, "aux"),
                      (board.rcd.pin, "RCM"), (board.rcd.test_pin, "RCM test"),
                      (board.emergency_stop.pin, "emergency stop"), (board.pwm.gpio, "PWM")):
        assert word in by_gpio[pin], (pin, word)


def test_watchdog_text_matches_the_unit(flat):
    # The safety supervisor's unit: its watchdog is the one that guards the safety loop.
    watchdog_s = re.search(r"^WatchdogSec=(\d+)$", SAFETY_UNIT.read_text(), re.MULTILINE).group(1)
    assert f"systemd's service watchdog (`WatchdogSec={watchdog_s}`)" in flat
    assert "still to be implemented" not in flat
    assert "RuntimeWatchdogSec=15" in flat


#: The bcm2835 (and RP1) SoC watchdog's longest timeout: a longer setting is not what the SoC does.
SOC_WATCHDOG_MAX_S = 15


def _seconds(value: str) -> float:
    """A systemd time span as install.sh writes it: ``15``, ``15s``, ``2min``."""
    m = re.fullmatch(r"(\d+)(s|min)?", value)
    assert m, value
    return int(m.group(1)) * (60 if m.group(2) == "min" else 1)


def test_install_sets_both_soc_watchdog_timeouts_within_the_hardware_maximum(flat):
    install = (ROOT / "systemd" / "install.sh").read_text()
    written = dict(re.findall(r"^(RuntimeWatchdogSec|RebootWatchdogSec)=(\S+)$", install, re.MULTILINE))
    assert set(written) == {"RuntimeWatchdogSec", "RebootWatchdogSec"}
    for key, value in written.items():
        assert 0 < _seconds(value) <= SOC_WATCHDOG_MAX_S, (key, value)
        assert f"{key}={value}" in flat, f"hardware.md names {key} as install.sh writes it"


def test_shunt_release_cores_let_through_figures(flat):
    """k²S² of the shunt-release cores (k = 115 for PVC-insulated copper), as the text states it."""
    k = 115
    assert f"115² × 1.5² = {k ** 2 * 1.5 ** 2 / 1e3:.1f} kA²s for 1.5 mm²" in flat
    assert f"2.5 mm² cores ({k ** 2 * 2.5 ** 2 / 1e3:.1f} kA²s)" in flat
    assert "YS1 C2 → the N of the same circuit, downstream of the station's own RCD" in flat


def test_generator_load_and_supply_figures(flat, bom):
    r4 = ohms(bom["R4"])
    state_c = 1 / (1 / R_B + 1 / R_C_EXTRA)
    assert f"12 V / (1 kΩ + {state_c:.0f} Ω) = {GENERATOR_V / (r4 + state_c) * 1e3:.1f} mA (state C" in flat
    short_ma = GENERATOR_V / r4 * 1e3
    assert f"12 V / R4 = {short_ma:.0f} mA (state E" in flat
    set_ma = 1.25 / ohms(bom["R6"]) * 1e3
    amplifiers = 1 + 4  # U1 (OPA197) and U2 (OPA4197), about 1 mA each
    total = short_ma + set_ma + amplifiers
    assert f"about 1 mA per amplifier (U1 and U2's four): {total:.0f} mA" in flat
    assert f"≤ {total:.0f} mA each" in flat and total < 33  # DC1's ±33 mA
    assert "which leaves 0.55 V for the drop" in flat  # 12.6 V limit - 12.05 V rail at its highest
