"""Meter readings as lists of measured values, independent of OCPP version.

Both OCPP versions describe a sample as measurand + phase + value + unit; they
differ only in spelling. This module decides which values a reading yields for
the measurands the operator selected; each adapter then spells them.

A selected measurand may name one phase, as OCPP allows ("Power.Active.Import.L1",
"Power.Factor.L3"): then that phase's value is sent, with its phase. The meter's
power is signed; OCPP's are not: power flowing out of the EV is
``Power.Active.Export`` (a positive number) and ``Power.Active.Import`` is then 0,
never a negative import.
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


def split_phase(selected: str) -> tuple[str, str | None]:
    """A selected measurand and the phase it names, if any: "Power.Factor.L2" -> ("Power.Factor", "L2")."""
    head, _, tail = selected.rpartition(".")
    return (head, tail) if tail in PHASES else (selected, None)


def _flow(power: float | None, export: bool) -> float | None:
    """The unsigned OCPP figure of a signed meter power: import or export, 0 for the other way."""
    if power is None:
        return None
    flowing = -power if export else power
    return flowing if flowing > 0 else 0.0


def values_for(reading: MeterReading, measurands: list[str], offered_a: float | None = None) -> list[Value]:
    """The values of ``reading`` for each selected measurand it can supply.

    A measurand the meter does not measure is left out rather than sent as a
    made-up zero: the operator bills and diagnoses from these numbers.
    """
    out: list[Value] = []
    for selected in measurands:
        measurand, phase = split_phase(selected)
        index = PHASES.index(phase) if phase is not None else None
        if measurand == "Energy.Active.Import.Register":
            out.append(Value(measurand, reading.energy_import_wh, "Wh"))
        elif measurand == "Energy.Active.Export.Register" and reading.energy_export_wh is not None:
            out.append(Value(measurand, reading.energy_export_wh, "Wh"))
        elif measurand in ("Power.Active.Import", "Power.Active.Export"):
            signed = reading.power_w if index is None else reading.powers_w[index]
            flow = _flow(signed, export=measurand == "Power.Active.Export")
            if flow is not None:
                out.append(Value(measurand, flow, "W", phase))
        elif measurand == "Current.Import":
            out.extend(Value(measurand, amps, "A", phase)
                       for phase, amps in zip(PHASES, reading.currents_a, strict=False) if amps is not None)
        elif measurand == "Voltage":
            out.extend(Value(measurand, volts, "V", f"{phase}-N")
                       for phase, volts in zip(PHASES, reading.voltages_v, strict=False) if volts is not None)
        elif measurand == "Frequency" and reading.frequency_hz is not None:
            out.append(Value(measurand, reading.frequency_hz, None))
        elif measurand == "Power.Factor":
            factor = reading.power_factor if index is None else reading.power_factors[index]
            if factor is not None:
                out.append(Value(measurand, factor, None, phase))
        elif measurand == "Current.Offered" and offered_a is not None:
            out.append(Value(measurand, offered_a, "A"))
    return out


def format_number(value: float) -> str:
    """Decimal text without float noise: 1234.5 -> "1234.5", 7.0 -> "7"."""
    text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text
