"""Meter readings as lists of measured values, independent of OCPP version.

Both OCPP versions describe a sample as measurand + phase + value + unit; they
differ only in spelling. This module decides which values a reading yields for
the measurands the operator selected; each adapter then spells them.
"""

from __future__ import annotations

from dataclasses import dataclass

from hal.interfaces import MeterReading

PHASES = ("L1", "L2", "L3")


@dataclass(frozen=True)
class Value:
    measurand: str
    value: float
    unit: str | None
    phase: str | None = None


def values_for(reading: MeterReading, measurands: list[str], offered_a: float | None = None) -> list[Value]:
    """The values of ``reading`` for each selected measurand it can supply.

    A measurand the meter does not measure is left out rather than sent as a
    made-up zero: the operator bills and diagnoses from these numbers.
    """
    out: list[Value] = []
    for measurand in measurands:
        if measurand == "Energy.Active.Import.Register":
            out.append(Value(measurand, reading.energy_import_wh, "Wh"))
        elif measurand == "Energy.Active.Export.Register" and reading.energy_export_wh is not None:
            out.append(Value(measurand, reading.energy_export_wh, "Wh"))
        elif measurand == "Power.Active.Import" and reading.power_w is not None:
            out.append(Value(measurand, reading.power_w, "W"))
        elif measurand == "Current.Import":
            out.extend(Value(measurand, amps, "A", phase)
                       for phase, amps in zip(PHASES, reading.currents_a, strict=False) if amps is not None)
        elif measurand == "Voltage":
            out.extend(Value(measurand, volts, "V", f"{phase}-N")
                       for phase, volts in zip(PHASES, reading.voltages_v, strict=False) if volts is not None)
        elif measurand == "Frequency" and reading.frequency_hz is not None:
            out.append(Value(measurand, reading.frequency_hz, None))
        elif measurand == "Power.Factor" and reading.power_factor is not None:
            out.append(Value(measurand, reading.power_factor, None))
        elif measurand == "Current.Offered" and offered_a is not None:
            out.append(Value(measurand, offered_a, "A"))
    return out


def format_number(value: float) -> str:
    """Decimal text without float noise: 1234.5 -> "1234.5", 7.0 -> "7"."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
