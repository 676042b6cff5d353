"""Between decoded quantity values and :class:`hal.interfaces.MeterReading`.

Split from :mod:`hal.meters.registermap` because it knows no registers: it
maps quantity names (``energy_import``, ``current_l1``, ...) to a reading's
fields and back. The Modbus meter builds its readings with
:func:`to_reading`; the simulated Modbus meter fills its registers from a
simulated reading with :func:`reading_values`. Import these names from
:mod:`hal.meters.registermap`.
"""

from __future__ import annotations

from collections.abc import Mapping

from hal.interfaces import MeterReading


def to_reading(values: Mapping[str, float | None], timestamp: float) -> MeterReading:
    """A :class:`MeterReading` from decoded values (energy_import must be there).

    The total power is the meter's own total where it reports one, else the
    sum of the phases when all three are known.
    """
    energy = values.get("energy_import")
    if energy is None:
        raise ValueError("no import energy in the decoded values")
    power = values.get("power")
    phases = [values.get(f"power_l{n}") for n in (1, 2, 3)]
    if power is None and all(p is not None for p in phases):
        power = sum(p for p in phases if p is not None)
    return MeterReading(
        timestamp=timestamp,
        energy_import_wh=energy,
        energy_export_wh=values.get("energy_export"),
        power_w=power,
        currents_a=(values.get("current_l1"), values.get("current_l2"), values.get("current_l3")),
        voltages_v=(values.get("voltage_l1"), values.get("voltage_l2"), values.get("voltage_l3")),
        frequency_hz=values.get("frequency"),
        power_factor=values.get("power_factor"),
        powers_w=(phases[0], phases[1], phases[2]),
        power_factors=(values.get("power_factor_l1"), values.get("power_factor_l2"),
                       values.get("power_factor_l3")),
    )


def reading_values(reading: MeterReading) -> dict[str, float | None]:
    """The quantities a :class:`MeterReading` carries, by quantity name.

    Per-phase power and power factor are the reading's own where it has them;
    else the power is derived as voltage x current x power factor (1 when
    unknown), and the power factor is the total's, as a simulated meter would
    measure them.
    """
    values: dict[str, float | None] = {
        "energy_import": reading.energy_import_wh,
        "energy_export": reading.energy_export_wh,
        "power": reading.power_w,
        "frequency": reading.frequency_hz,
        "power_factor": reading.power_factor,
    }
    pf = reading.power_factor if reading.power_factor is not None else 1.0
    for n, (amps, volts) in enumerate(zip(reading.currents_a, reading.voltages_v, strict=True), 1):
        values[f"current_l{n}"] = amps
        values[f"voltage_l{n}"] = volts
        own_power, own_pf = reading.powers_w[n - 1], reading.power_factors[n - 1]
        values[f"power_factor_l{n}"] = own_pf if own_pf is not None else reading.power_factor
        values[f"power_l{n}"] = own_power if own_power is not None else (
            None if amps is None or volts is None else amps * volts * pf)
    return values
