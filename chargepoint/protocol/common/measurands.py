"""Meter readings as lists of measured values, independent of OCPP version.

Both OCPP versions describe a sample as measurand + phase + value + unit; they
differ only in spelling. This module decides which values a reading yields for
the measurands the operator selected; each adapter then spells them.

A selected measurand may name one phase, as OCPP allows ("Power.Active.Import.L1",
"Power.Factor.L3"): then that phase's value is sent, with its phase. The meter's
power is signed; OCPP's are not: power flowing out of the EV is
``Power.Active.Export`` (a positive number), never a negative import. A power or
current selected in one direction only is "the power" of the operator's choice:
it is sent under the direction it flows (``Current.Export`` while the EV feeds
back), never as an import of 0 while the meter measures export; and while it
feeds back, the export register goes with the import register where the meter
has one. Selected in both directions, each is sent, the one not flowing as 0.
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


#: The measurands that have a direction: the name of the flow each way.
DIRECTED = {"Power.Active": ("Power.Active.Import", "Power.Active.Export"),
            "Current": ("Current.Import", "Current.Export")}
_DIRECTION = {name: (kind, name.endswith("Export")) for kind, names in DIRECTED.items() for name in names}


def _exporting(reading: MeterReading, index: int | None) -> bool:
    """Whether energy flows out of the EV: on one phase by its own power where measured, else in total."""
    signed = reading.powers_w[index] if index is not None else None
    if signed is None:
        signed = reading.power_w
    return signed is not None and signed < 0


def _directed(reading: MeterReading, kind: str, export: bool, both: bool, index: int | None,
              phase: str | None) -> list[Value]:
    """A power or current under the name of its flow; with ``both`` directions selected, the one
    asked for (``export``), 0 while the other way flows."""
    flowing_out = _exporting(reading, index)
    name = DIRECTED[kind][flowing_out if not both else export]
    if kind == "Power.Active":
        signed = reading.power_w if index is None else reading.powers_w[index]
        if signed is None:
            return []
        flow = abs(signed) if not both or export == flowing_out else 0.0
        return [Value(name, flow, "W", phase)]
    out = []
    for at, (phase_name, amps) in enumerate(zip(PHASES, reading.currents_a, strict=False)):
        if amps is None or (phase is not None and phase_name != phase):
            continue
        out_of_ev = _exporting(reading, at)
        name = DIRECTED[kind][out_of_ev if not both else export]
        out.append(Value(name, amps if not both or export == out_of_ev else 0.0, "A", phase_name))
    return out


def values_for(reading: MeterReading, measurands: list[str], offered_a: float | None = None) -> list[Value]:
    """The values of ``reading`` for each selected measurand it can supply.

    A measurand the meter does not measure is left out rather than sent as a
    made-up zero: the operator bills and diagnoses from these numbers.
    """
    out: list[Value] = []
    chosen = {split_phase(m) for m in measurands}
    for selected in measurands:
        measurand, phase = split_phase(selected)
        index = PHASES.index(phase) if phase is not None else None
        if measurand == "Energy.Active.Import.Register":
            out.append(Value(measurand, reading.energy_import_wh, "Wh"))
            if (reading.energy_export_wh is not None and _exporting(reading, None)
                    and ("Energy.Active.Export.Register", None) not in chosen):
                out.append(Value("Energy.Active.Export.Register", reading.energy_export_wh, "Wh"))
        elif measurand == "Energy.Active.Export.Register" and reading.energy_export_wh is not None:
            out.append(Value(measurand, reading.energy_export_wh, "Wh"))
        elif measurand in _DIRECTION:
            kind, export = _DIRECTION[measurand]
            both = all((name, phase) in chosen for name in DIRECTED[kind])
            out.extend(_directed(reading, kind, export, both, index, phase))
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
