"""The grid meter at the house connection: signed currents per phase.

A station meter says how much the station draws; a grid meter must also say in
which direction current flows, because a house with PV exports. Meters report
current as a magnitude and power with a sign (SDM630: negative power per phase
is export), so the signed current of a phase is the magnitude with the sign of
that phase's power. Load management and solar charging read only this.

Kept apart from :mod:`hal.interfaces` because only the load manager uses it,
and from :mod:`hal.meters` because it needs no Modbus: the simulated house
serves these readings directly too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from hal.interfaces import MeterFailure

#: Assumed when a map has a phase's power but neither its current nor its voltage.
NOMINAL_VOLTAGE_V = 230.0


@dataclass(frozen=True)
class GridReading:
    """One reading at the house connection.

    ``currents_a`` are per phase (L1, L2, L3), positive when the house imports
    from the grid and negative when it exports; ``power_w`` is the total, signed
    the same way, when the meter reports it.
    """

    timestamp: float
    currents_a: tuple[float, float, float]
    power_w: float | None = None


class GridMeter(Protocol):
    """A meter at the house connection. Reads are async: the bus is slow and may be shared."""

    async def read(self) -> GridReading | MeterFailure:
        """Take one reading; never raises for bus trouble, returns a failure."""
        ...

    async def close(self) -> None:
        ...


def signed_currents(values: Mapping[str, float | None]) -> tuple[float, float, float] | None:
    """Signed phase currents from decoded quantities (see the module doc), None if a phase is unknown.

    With a phase's power the sign is known; with only a current the phase is
    taken as importing, which overstates the house's load: the safe side for a
    fuse (and no surplus is seen, the safe side for solar charging too).
    """
    out: list[float] = []
    for n in (1, 2, 3):
        amps, watts = values.get(f"current_l{n}"), values.get(f"power_l{n}")
        volts = values.get(f"voltage_l{n}")
        if watts is None:
            if amps is None:
                return None
            out.append(abs(amps))
            continue
        if amps is None:
            amps = abs(watts) / (volts if volts else NOMINAL_VOLTAGE_V)
        out.append(-abs(amps) if watts < 0 else abs(amps))
    return out[0], out[1], out[2]
