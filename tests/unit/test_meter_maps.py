"""Register maps: every shipped map decodes registers written in its meter's own format.

The registers here are packed by hand with ``struct`` (not by the encoder
under test): IEEE 754 float32 high word first for Eastron and ORNO, big-endian
unsigned/signed integers with ABB's resolutions, 32-bit integers low word
first for Carlo Gavazzi.
"""

from __future__ import annotations

import math
import struct

import pytest

from hal.interfaces import Measurand, MeterReading
from hal.meters.registermap import (
    MEASURANDS,
    QUANTITIES,
    MapError,
    load_map,
    parse_map,
    reading_values,
    shipped_models,
    to_reading,
)

MODELS = ("sdm630", "sdm72d-m", "sdm120", "abb-b23", "em340", "orno-we517")


def words(fmt: str, value: float | int, *, low_word_first: bool = False) -> list[int]:
    raw = struct.pack(">" + fmt, value)
    regs = [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]
    return regs[::-1] if low_word_first else regs


def f32(value: float) -> list[int]:
    return words("f", value)


def em(value: int) -> list[int]:
    """Carlo Gavazzi INT32: low word first."""
    return words("i", value, low_word_first=True)


#: Per model: quantity -> (registers as the meter sends them, value in canonical units).
NATIVE: dict[str, dict[str, tuple[list[int], float]]] = {
    "sdm630": {
        "voltage_l1": (f32(230.1), 230.1), "voltage_l2": (f32(229.8), 229.8),
        "voltage_l3": (f32(231.4), 231.4),
        "current_l1": (f32(16.002), 16.002), "current_l2": (f32(0.0), 0.0), "current_l3": (f32(7.5), 7.5),
        "power_l1": (f32(3680.5), 3680.5), "power_l2": (f32(0.0), 0.0), "power_l3": (f32(-1725.0), -1725.0),
        "power_factor_l1": (f32(0.998), 0.998), "power_factor_l2": (f32(1.0), 1.0),
        "power_factor_l3": (f32(-0.5), -0.5),
        "power": (f32(1955.5), 1955.5), "power_factor": (f32(0.97), 0.97),
        "frequency": (f32(49.98), 49.98),
        "energy_import": (f32(12345.678), 12_345_678.0), "energy_export": (f32(0.5), 500.0),
    },
    "sdm72d-m": {
        "power": (f32(11040.0), 11040.0),
        "energy_import": (f32(873.25), 873_250.0), "energy_export": (f32(0.0), 0.0),
    },
    "sdm120": {
        "voltage_l1": (f32(229.9), 229.9), "current_l1": (f32(31.95), 31.95),
        "power": (f32(7345.1), 7345.1), "power_factor": (f32(0.999), 0.999),
        "frequency": (f32(50.02), 50.02),
        "energy_import": (f32(4.321), 4321.0), "energy_export": (f32(1.25), 1250.0),
    },
    "abb-b23": {
        "energy_import": (words("Q", 1_234_567), 12_345_670.0),  # 12345.67 kWh
        "energy_export": (words("Q", 42), 420.0),
        "voltage_l1": (words("I", 2301), 230.1), "voltage_l2": (words("I", 2298), 229.8),
        "voltage_l3": (words("I", 2314), 231.4),
        "current_l1": (words("I", 1600), 16.0), "current_l2": (words("I", 5), 0.05),
        "current_l3": (words("I", 3199), 31.99),
        "power": (words("i", -123_456), -1234.56), "power_l1": (words("i", 368_000), 3680.0),
        "power_l2": (words("i", 0), 0.0), "power_l3": (words("i", -491_456), -4914.56),
        "frequency": (words("H", 4998), 49.98),
        "power_factor": (words("h", -500), -0.5), "power_factor_l1": (words("h", 999), 0.999),
        "power_factor_l2": (words("h", 1000), 1.0), "power_factor_l3": (words("h", -1), -0.001),
    },
    "em340": {
        "voltage_l1": (em(2301), 230.1), "voltage_l2": (em(2298), 229.8), "voltage_l3": (em(2314), 231.4),
        "current_l1": (em(16_002), 16.002), "current_l2": (em(0), 0.0), "current_l3": (em(75_000), 75.0),
        "power_l1": (em(36_805), 3680.5), "power_l2": (em(0), 0.0), "power_l3": (em(-17_250), -1725.0),
        "power": (em(19_555), 1955.5),
        "power_factor_l1": (words("h", 998), 0.998), "power_factor_l2": (words("h", 1000), 1.0),
        "power_factor_l3": (words("h", -500), -0.5), "power_factor": (words("h", 970), 0.97),
        "frequency": (words("H", 500), 50.0),
        "energy_import": (em(123_456), 12_345_600.0),  # 12345.6 kWh
        "energy_export": (em(7), 700.0),
    },
    "orno-we517": {
        "voltage_l1": (f32(230.1), 230.1), "voltage_l2": (f32(229.8), 229.8),
        "voltage_l3": (f32(231.4), 231.4), "frequency": (f32(50.0), 50.0),
        "current_l1": (f32(16.0), 16.0), "current_l2": (f32(16.0), 16.0), "current_l3": (f32(16.0), 16.0),
        "power": (f32(11.04), 11_040.0), "power_l1": (f32(3.68), 3680.0),
        "power_l2": (f32(3.68), 3680.0), "power_l3": (f32(3.68), 3680.0),
        "power_factor": (f32(0.99), 0.99), "power_factor_l1": (f32(0.99), 0.99),
        "power_factor_l2": (f32(0.98), 0.98), "power_factor_l3": (f32(1.0), 1.0),
        "energy_import": (f32(1234.56), 1_234_560.0), "energy_export": (f32(0.0), 0.0),
    },
}


def responses_for(model: str) -> list[list[int]]:
    """The registers of each planned request, as the meter would answer them."""
    register_map = load_map(model)
    native = NATIVE[model]
    out = []
    for request in register_map.plan():
        regs = [0] * request.count
        for f in request.fields:
            data = native[f.quantity][0]
            assert len(data) == f.count, f.quantity
            regs[f.address - request.address:f.end - request.address] = data
        out.append(regs)
    return out


def test_every_required_model_is_shipped() -> None:
    models = shipped_models()
    for model in MODELS:
        assert model in models
    assert models["abb-b24"] == models["abb-b23"]


@pytest.mark.parametrize("model", MODELS)
def test_map_decodes_registers_in_the_meters_own_format(model: str) -> None:
    register_map = load_map(model)
    assert set(register_map.quantities) == set(NATIVE[model]), "the test covers every mapped quantity"
    values = register_map.decode(responses_for(model))
    for quantity, (_, expected) in NATIVE[model].items():
        assert values[quantity] == pytest.approx(expected, rel=1e-9, abs=1e-9), quantity


@pytest.mark.parametrize("model", MODELS)
def test_encoder_writes_what_the_meter_writes(model: str) -> None:
    """The simulated device's encoder yields the same registers as the hand-packed ones."""
    register_map = load_map(model)
    encoded = register_map.encode({q: v for q, (_, v) in NATIVE[model].items()})
    for f in register_map.fields:
        assert encoded[(f.function, f.address)] == NATIVE[model][f.quantity][0], f.quantity


@pytest.mark.parametrize("model", MODELS)
def test_plan_reads_only_defined_registers_within_the_request_limit(model: str) -> None:
    register_map = load_map(model)
    plan = register_map.plan()
    covered = {(f.function, a) for f in register_map.fields for a in range(f.address, f.end)}
    read = set()
    for request in plan:
        assert request.count <= register_map.max_registers
        for address in range(request.address, request.address + request.count):
            read.add((request.function, address))
            defined = (request.function, address) in covered or any(
                s.covers(request.function, address, address) for s in register_map.readable)
            assert defined, f"{model} reads undefined register {address:#06x}"
    assert covered <= read


def test_plans_are_batched() -> None:
    sizes = {model: [(r.function, r.address, r.count) for r in load_map(model).plan()] for model in MODELS}
    # SDM630: phases 0x00-0x23 in one request (VA/VAr between are defined), then
    # total power, total PF, and frequency + import + export together.
    assert sizes["sdm630"] == [(4, 0x0000, 36), (4, 0x0034, 2), (4, 0x003E, 2), (4, 0x0046, 6)]
    assert sizes["abb-b23"] == [(3, 0x5000, 8), (3, 0x5B00, 45), (3, 0x5B3A, 4)]
    assert sizes["em340"] == [(3, 0x0000, 50), (3, 0x0033, 3), (3, 0x004E, 2)]
    assert sizes["orno-we517"] == [(3, 0x000E, 46), (3, 0x0108, 10)]


def test_the_datasheet_facts_of_the_design_notes() -> None:
    sdm = load_map("sdm630").field("energy_import")
    assert sdm and (sdm.function, sdm.address, sdm.type, sdm.word_order) == (4, 0x0048, "float32", "big")
    abb = load_map("abb-b23").field("energy_import")
    assert abb and (abb.function, abb.address, abb.type, abb.factor) == (3, 0x5000, "uint64", 10.0)
    cg = load_map("em340").field("energy_import")
    assert cg and (cg.type, cg.word_order) == ("int32", "little")
    orno = load_map("orno-we517").field("energy_import")
    assert orno and (orno.function, orno.type) == (3, "float32")


def test_nan_decodes_as_not_measured() -> None:
    register_map = load_map("sdm630")
    responses = responses_for("sdm630")
    responses[0][0:2] = words("f", math.nan)
    assert register_map.decode(responses)["voltage_l1"] is None


def test_reading_carries_every_quantity_with_its_measurand() -> None:
    values = load_map("sdm630").decode(responses_for("sdm630"))
    reading = to_reading(values, 1.0)
    assert reading.energy_import_wh == 12_345_678.0
    assert reading.power_w == 1955.5
    assert reading.currents_a == (16.002, 0.0, 7.5)
    assert reading.voltages_v == (230.1, 229.8, 231.4)
    assert (reading.frequency_hz, reading.power_factor) == (49.98, 0.97)
    assert MEASURANDS["energy_import"] == (Measurand.ENERGY_IMPORT, None)
    assert MEASURANDS["voltage_l2"] == (Measurand.VOLTAGE, "L2-N")
    assert set(MEASURANDS) == set(QUANTITIES)


def test_total_power_is_the_sum_of_phases_when_the_meter_has_no_total() -> None:
    reading = to_reading({"energy_import": 1.0, "power_l1": 1.0, "power_l2": 2.0, "power_l3": 3.5}, 0.0)
    assert reading.power_w == 6.5
    assert to_reading({"energy_import": 1.0, "power_l1": 1.0}, 0.0).power_w is None


def test_reading_values_round_trip() -> None:
    reading = to_reading(load_map("sdm630").decode(responses_for("sdm630")), 5.0)
    values = reading_values(reading)
    assert values["energy_import"] == reading.energy_import_wh
    assert values["current_l3"] == 7.5
    assert values["power_l1"] == 3680.5  # the meter's own per-phase power and power factor
    assert values["power_factor_l3"] == -0.5
    derived = reading_values(MeterReading(0.0, 1.0, currents_a=(16.0, None, None),
                                          voltages_v=(230.0, None, None), power_factor=0.5))
    assert derived["power_l1"] == pytest.approx(230.0 * 16.0 * 0.5) and derived["power_l2"] is None


def test_reading_carries_per_phase_power_and_power_factor() -> None:
    reading = to_reading(load_map("abb-b23").decode(responses_for("abb-b23")), 5.0)
    assert reading.power_w == -1234.56
    assert reading.powers_w == (3680.0, 0.0, -4914.56)
    assert reading.power_factors == (0.999, 1.0, -0.001)


GOOD = """
model = "x"
max_registers = 10
[registers]
energy_import = { address = 0x10, unit = "kWh" }
"""


@pytest.mark.parametrize(("text", "key", "reason"), [
    ("model = 3", "model", "is required"),
    ("bogus = 1\n" + GOOD, "bogus", "unknown key"),
    (GOOD.replace("max_registers = 10", "max_registers = 200"), "max_registers", "1-125"),
    (GOOD.replace("energy_import", "energy_export"), "registers.energy_import", "is required"),
    (GOOD + "watts = { address = 1, unit = 'W' }\n", "registers.watts", "unknown quantity"),
    (GOOD + "power = { address = 1, unit = 'kWh' }\n", "registers.power.unit", "'W', 'kW'"),
    (GOOD + "power = { address = 0x11, unit = 'W' }\n", "registers.power", "overlaps energy_import"),
    (GOOD + "power = { address = 1, unit = 'W', type = 'int8' }\n", "registers.power.type",
     "unknown type"),
    (GOOD + "power = { address = 1, unit = 'W', word_order = 'mixed' }\n",
     "registers.power.word_order", "'big'"),
    (GOOD + "power = { address = 1, unit = 'W', function = 1 }\n", "registers.power.function", "3"),
    (GOOD + "power = { address = 1, unit = 'W', scale = 0 }\n", "registers.power.scale", "non-zero"),
    (GOOD + "power = { address = 0x10000, unit = 'W' }\n", "registers.power.address", "0-0xFFFF"),
    (GOOD + "power = { address = 1, unit = 'W', colour = 'red' }\n", "registers.power.colour",
     "unknown key"),
    ("readable = [{ first = 5, last = 1 }]\n" + GOOD, "readable[0]", "first <= last"),
    ("max_registers = 1\n" + GOOD.replace("max_registers = 10\n", ""), "registers.energy_import",
     "max_registers"),
    ("model = [", "-", "not valid TOML"),
])
def test_bad_maps_are_rejected_with_key_and_reason(text: str, key: str, reason: str) -> None:
    with pytest.raises(MapError) as caught:
        parse_map(text, "my.toml")
    assert caught.value.source == "my.toml"
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_user_map_from_a_file(tmp_path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(GOOD)
    register_map = load_map(path=path)
    assert register_map.model == "x" and register_map.source == str(path)
    with pytest.raises(MapError, match="cannot be read"):
        load_map(path=tmp_path / "missing.toml")
    with pytest.raises(MapError, match="unknown meter model 'nope'"):
        load_map("nope")


def test_request_limit_splits_requests() -> None:
    text = GOOD.replace("max_registers = 10", "max_registers = 4") + (
        "power = { address = 0x12, unit = 'W' }\nfrequency = { address = 0x14, unit = 'Hz' }\n")
    plan = parse_map(text).plan()
    assert [(r.address, r.count) for r in plan] == [(0x10, 4), (0x14, 2)]


# ------------------------------------------------------------ "no data" markers
#: ABB's markers, packed by hand: largest signed value, all ones unsigned.
ABB_NO_DATA = {
    "power_factor": words("h", 0x7FFF), "power_factor_l2": words("h", 0x7FFF),
    "power": words("i", 0x7FFF_FFFF), "power_l3": words("i", 0x7FFF_FFFF),
    "voltage_l1": words("I", 0xFFFF_FFFF), "current_l2": words("I", 0xFFFF_FFFF),
    "frequency": words("H", 0xFFFF),
    "energy_export": words("Q", 0xFFFF_FFFF_FFFF_FFFF),
}


def abb_responses(overrides: dict[str, list[int]]) -> list[list[int]]:
    register_map = load_map("abb-b23")
    out = []
    for request in register_map.plan():
        regs = [0] * request.count
        for f in request.fields:
            data = overrides.get(f.quantity, NATIVE["abb-b23"][f.quantity][0])
            regs[f.address - request.address:f.end - request.address] = data
        out.append(regs)
    return out


def test_abb_no_data_markers_decode_as_no_value() -> None:
    values = load_map("abb-b23").decode(abb_responses(ABB_NO_DATA))
    for quantity in ABB_NO_DATA:
        assert values[quantity] is None, quantity
    # Values next to the markers still decode, and one step below a marker is a number.
    assert values["energy_import"] == 12_345_670.0
    assert values["power_factor_l1"] == 0.999
    near = load_map("abb-b23").decode(abb_responses({"power_factor": words("h", 0x7FFE)}))
    assert near["power_factor"] == 32.766


def test_abb_energy_marker_is_never_a_baseline() -> None:
    from hal.meters.modbus_meter import EnergyGuard

    register_map = load_map("abb-b23")
    marker = register_map.decode(abb_responses({"energy_import": words("Q", 0xFFFF_FFFF_FFFF_FFFF)}))
    assert marker["energy_import"] is None
    guard = EnergyGuard(max_power_w=11_000)
    assert guard.check(marker["energy_import"], 0.0) == "the meter reports no value for the import register"
    assert guard.last_good_wh is None
    good = register_map.decode(abb_responses({}))["energy_import"]
    assert guard.check(good, 1.0) is None
    assert guard.last_good_wh == 12_345_670.0
    # A marker after a good value is refused and leaves the reference alone.
    assert guard.check(marker["energy_import"], 2.0) is not None
    assert guard.last_good_wh == 12_345_670.0


def test_no_data_is_written_for_a_value_the_simulated_meter_lacks() -> None:
    register_map = load_map("abb-b23")
    registers = register_map.encode({"energy_import": 1000.0, "power_factor": None, "power": None})
    assert registers[(3, 0x5B3A)] == [0x7FFF]
    assert registers[(3, 0x5B14)] == [0x7FFF, 0xFFFF]
    assert registers[(3, 0x5000)] == words("Q", 100)


@pytest.mark.parametrize(("spec", "reason"), [
    ('{ address = 1, type = "float32", unit = "", no_data = 1 }', "only for integer types"),
    ('{ address = 1, type = "int16", unit = "", no_data = 0x10000 }', "unsigned number (0 to 0xffff)"),
    ('{ address = 1, type = "int16", unit = "", no_data = -1 }', "unsigned number"),
])
def test_bad_no_data_markers_are_rejected(spec: str, reason: str) -> None:
    text = ('model = "x"\n[registers]\nenergy_import = { address = 10, unit = "kWh" }\n'
            f"power_factor = {spec}\n")
    with pytest.raises(MapError) as caught:
        parse_map(text)
    assert caught.value.key == "registers.power_factor.no_data"
    assert reason in caught.value.reason
