"""A simulated house behind the simulated station: base load, appliances, PV and the grid meter.

Load management and solar charging act on what the grid meter at the house
connection measures, so the simulation needs a house around the station: a base
load with a morning and an evening peak, appliances a test or the demo switches
on (a kettle, an oven), a PV system following the sun with clouds drawn from a
seeded generator (the same seed, the same day), and the station's own current,
taken from the simulated connectors. The grid current of a phase is all of that
together, positive when importing.

The house has its own time of day: ``day_start_h`` plus the station clock's
seconds times ``time_factor``, so the demo can pass a whole day's sun in a
minute while the safety loop keeps its real timing. The meter's values are
served as a register map's quantities (:meth:`SimHouse.read_values`), so a
:class:`hal.meters.simdevice.SimModbusDevice` puts them on Modbus like a real
grid meter's; :class:`SimGridMeter` reads them directly.
"""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Callable

from hal.clock import Clock
from hal.grid import GridReading, signed_currents
from hal.interfaces import MeterFailure, MeterFailureKind

#: How the house's own load spreads over the phases (the PV inverter feeds all three alike).
BASE_SPLIT = (0.5, 0.3, 0.2)
#: Clouds change every this many hours of the house's day.
CLOUD_STEP_H = 0.1
SUNRISE_H, SUNSET_H = 6.0, 20.0

Currents = tuple[float, float, float]


class SimHouse:
    """The house: its loads, its PV, and the station's current, as the grid meter sees them."""

    def __init__(self, clock: Clock, station_currents: Callable[[], Currents], *, base_load_w: float = 400.0,
                 pv_peak_w: float = 8000.0, cloudiness: float = 0.3, seed: int = 1, day_start_h: float = 6.0,
                 time_factor: float = 1.0, voltage_v: float = 230.0) -> None:
        if time_factor <= 0 or voltage_v <= 0:
            raise ValueError("time_factor and voltage_v must be positive")
        self.clock = clock
        self.station_currents = station_currents
        self.base_load_w = base_load_w
        self.pv_peak_w = pv_peak_w
        self.cloudiness = cloudiness
        self.seed = seed
        self.day_start_h = day_start_h
        self.time_factor = time_factor
        self.voltage_v = voltage_v
        #: Switched-on appliances: name -> watts per phase (L1, L2, L3).
        self.appliances: dict[str, tuple[float, float, float]] = {}
        #: The grid meter answers nothing while set (a broken meter or cut bus).
        self.failing = False
        self._t0 = clock.monotonic()
        self._lock = threading.Lock()
        self._last: tuple[float, float] | None = None  # (time, total power) of the last reading
        self.energy_import_wh = 0.0
        self.energy_export_wh = 0.0

    # ------------------------------------------------------------- the day
    def hour(self) -> float:
        """The house's time of day in hours (0-24)."""
        elapsed_h = (self.clock.monotonic() - self._t0) * self.time_factor / 3600.0
        return (self.day_start_h + elapsed_h) % 24.0

    def clouds(self, hour: float) -> float:
        """The share of the sun the clouds let through at ``hour`` (the same for the same seed)."""
        step = int(hour / CLOUD_STEP_H)
        rng = random.Random(self.seed * 1_000_003 + step)
        if rng.random() < self.cloudiness:
            return rng.uniform(0.05, 0.35)
        return rng.uniform(0.9, 1.0)

    def pv_w(self) -> float:
        """What the PV system produces now."""
        hour = self.hour()
        if not SUNRISE_H < hour < SUNSET_H:
            return 0.0
        sun = math.sin(math.pi * (hour - SUNRISE_H) / (SUNSET_H - SUNRISE_H)) ** 1.5
        return self.pv_peak_w * sun * self.clouds(hour)

    def base_w(self) -> float:
        """The house's own load without appliances: breakfast and the evening on top of the base."""
        hour = self.hour()
        bump = 1.5 * math.exp(-((hour - 7.5) / 1.0) ** 2) + 2.5 * math.exp(-((hour - 19.0) / 1.5) ** 2)
        return self.base_load_w * (1.0 + bump)

    # ------------------------------------------------------------ appliances
    def switch_on(self, name: str, watts: float, phases: int = 1) -> None:
        """An appliance of ``watts`` on L1 (``phases`` 1) or spread over all three."""
        if phases not in (1, 3):
            raise ValueError("phases must be 1 or 3")
        split = (watts, 0.0, 0.0) if phases == 1 else (watts / 3,) * 3
        with self._lock:
            self.appliances[name] = split  # type: ignore[assignment]

    def switch_off(self, name: str) -> None:
        with self._lock:
            self.appliances.pop(name, None)

    # ---------------------------------------------------------------- meter
    def grid_currents(self) -> Currents:
        """Signed current per phase at the house connection, positive importing."""
        base, pv = self.base_w(), self.pv_w()
        station = self.station_currents()
        with self._lock:
            appliances = list(self.appliances.values())
        out = []
        for n in range(3):
            watts = base * BASE_SPLIT[n] - pv / 3 + sum(a[n] for a in appliances)
            out.append(watts / self.voltage_v + station[n])
        return out[0], out[1], out[2]

    def values(self) -> dict[str, float | None]:
        """The grid meter's quantities now, by register-map name (energies integrated since the last)."""
        currents = self.grid_currents()
        powers = [amps * self.voltage_v for amps in currents]
        total = sum(powers)
        now = self.clock.monotonic()
        with self._lock:
            if self._last is not None:
                wh = self._last[1] * max(0.0, now - self._last[0]) / 3600.0
                if wh >= 0:
                    self.energy_import_wh += wh
                else:
                    self.energy_export_wh -= wh
            self._last = (now, total)
            energy_in, energy_out = self.energy_import_wh, self.energy_export_wh
        values: dict[str, float | None] = {"energy_import": energy_in, "energy_export": energy_out,
                                           "power": total, "frequency": 50.0, "power_factor": 1.0}
        for n in range(3):
            values[f"voltage_l{n + 1}"] = self.voltage_v
            values[f"current_l{n + 1}"] = abs(currents[n])  # a meter shows magnitudes; power has the sign
            values[f"power_l{n + 1}"] = powers[n]
            values[f"power_factor_l{n + 1}"] = 1.0
        return values

    async def read_values(self) -> dict[str, float | None] | MeterFailure:
        """The source a simulated Modbus device serves (a failure: it answers nothing)."""
        if self.failing:
            return MeterFailure(MeterFailureKind.NO_ANSWER, "simulated grid meter silent")
        return self.values()


class SimGridMeter:
    """The house's grid meter read directly, without Modbus (grid meter kind "sim")."""

    def __init__(self, house: SimHouse) -> None:
        self.house = house

    async def read(self) -> GridReading | MeterFailure:
        values = await self.house.read_values()
        if isinstance(values, MeterFailure):
            return values
        currents = signed_currents(values)
        assert currents is not None  # the house reports every phase
        return GridReading(self.house.clock.monotonic(), currents, values["power"])

    async def close(self) -> None:
        pass
