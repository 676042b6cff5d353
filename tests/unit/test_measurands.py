"""Selected measurands from a reading: export as its own positive measurand, single phases by name."""

from __future__ import annotations

from chargepoint.protocol.common.measurands import split_phase, values_for
from hal.interfaces import MeterReading

EXPORTING = MeterReading(
    timestamp=0.0, energy_import_wh=1000.0, energy_export_wh=250.0, power_w=-1234.5,
    powers_w=(411.5, None, -2058.0), power_factor=0.98, power_factors=(0.999, -0.5, None))


def triples(measurands: list[str], reading: MeterReading = EXPORTING) -> list[tuple[str, str | None, float]]:
    return [(v.measurand, v.phase, v.value) for v in values_for(reading, measurands)]


def test_a_negative_power_is_export_never_a_negative_import() -> None:
    assert triples(["Power.Active.Import", "Power.Active.Export"]) == [
        ("Power.Active.Import", None, 0.0),
        ("Power.Active.Export", None, 1234.5),
    ]
    charging = MeterReading(0.0, 1000.0, power_w=7360.0)
    assert triples(["Power.Active.Import", "Power.Active.Export"], charging) == [
        ("Power.Active.Import", None, 7360.0),
        ("Power.Active.Export", None, 0.0),
    ]
    assert all(v.value >= 0 for v in values_for(EXPORTING, ["Power.Active.Import", "Power.Active.Export",
                                                           "Power.Active.Import.L3"]))


def test_single_phases_are_selected_by_name_and_carry_their_phase() -> None:
    assert triples(["Power.Active.Import.L1", "Power.Active.Import.L2", "Power.Active.Export.L3",
                    "Power.Factor.L1", "Power.Factor.L2", "Power.Factor.L3", "Power.Factor"]) == [
        ("Power.Active.Import", "L1", 411.5),  # L2: not measured, left out
        ("Power.Active.Export", "L3", 2058.0),
        ("Power.Factor", "L1", 0.999),
        ("Power.Factor", "L2", -0.5),
        ("Power.Factor", None, 0.98),
    ]
    selected = ["Power.Active.Export.L3", "Power.Factor.L1"]
    units = {v.measurand: v.unit for v in values_for(EXPORTING, selected)}
    assert units == {"Power.Active.Export": "W", "Power.Factor": None}


def test_export_energy_when_sampled_and_measured() -> None:
    assert triples(["Energy.Active.Export.Register"]) == [("Energy.Active.Export.Register", None, 250.0)]
    assert triples(["Energy.Active.Export.Register"], MeterReading(0.0, 1.0)) == []


def test_split_phase() -> None:
    assert split_phase("Power.Factor.L2") == ("Power.Factor", "L2")
    assert split_phase("Energy.Active.Import.Register") == ("Energy.Active.Import.Register", None)
    assert split_phase("Voltage") == ("Voltage", None)


def test_per_phase_powers_survive_the_queue() -> None:
    from chargepoint.core.events import MeterSample, ReadingContext
    from chargepoint.core.storage.outbox import decode, encode

    sample = MeterSample(1, "tx1", EXPORTING, ReadingContext.PERIODIC)
    assert decode(encode(sample)) == sample
    old = encode(sample).replace(',"powers_w":[411.5,null,-2058.0],"power_factors":[0.999,-0.5,null]', "")
    assert "powers_w" not in old  # as queued by a release without per-phase powers
    assert decode(old).reading.powers_w == (None, None, None)
