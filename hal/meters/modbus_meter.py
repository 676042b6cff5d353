"""A Modbus energy meter: a register map read over a bus, checked before it is believed.

:class:`ModbusMeter` is the :class:`hal.interfaces.Meter` for every supported
model: the model is only data (:mod:`hal.meters.registermap`). One reading
takes the map's planned requests under the bus lock, so a reading is one
consistent snapshot even when other meters share the line. A request that
fails with a transient failure (no answer, timeout, CRC) is repeated up to
``retries`` times; an exception response is not (the meter meant it).

The operator bills from these numbers, so a reading that decodes but cannot
be right is a failure too (``implausible``): an import register that is not a
number, goes backwards, or grew more since the last good reading than the
rated power allows in the time between. The last good value stays the
reference; if the meter keeps reporting a new series consistently (three
readings in a row that agree with each other, e.g. after the meter was
replaced), that series is accepted with a warning in the log rather than the
station refusing the meter forever.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from hal.clock import Clock, RealClock
from hal.interfaces import MeterFailure, MeterFailureKind, MeterReading
from hal.meters.bus import ModbusBus
from hal.meters.registermap import RegisterMap, to_reading

log = logging.getLogger(__name__)

TRANSIENT = (MeterFailureKind.NO_ANSWER, MeterFailureKind.TIMEOUT, MeterFailureKind.CRC)


@dataclass
class _Point:
    t: float
    energy_wh: float


class EnergyGuard:
    """Plausibility of successive import-register values (see the module doc).

    ``max_power_w`` is the most the metered circuit can draw (None: no jump
    check); ``resolution_wh`` is the register's step (0.1 kWh on some meters),
    which every comparison tolerates.
    """

    #: Consistent readings of a new series after which it is accepted.
    REBASELINE_AFTER = 3
    #: Seconds added to the interval between reads for the jump check: meters
    #: update their registers on their own schedule, not when asked.
    SLACK_S = 2.0
    #: Margin on the rated power for the jump check.
    POWER_MARGIN = 1.25

    def __init__(self, max_power_w: float | None, resolution_wh: float = 0.0) -> None:
        if max_power_w is not None and max_power_w <= 0:
            raise ValueError("max_power_w must be positive (or None)")
        self.max_power_w = max_power_w
        self.resolution_wh = resolution_wh
        self._last: _Point | None = None
        self._suspects: list[_Point] = []
        self.rebaselined = False

    @property
    def last_good_wh(self) -> float | None:
        return None if self._last is None else self._last.energy_wh

    def check(self, energy_wh: float | None, now: float) -> str | None:
        """None if ``energy_wh`` is believable now (and becomes the reference), else why not."""
        self.rebaselined = False
        if energy_wh is None:
            # A "no data" marker (or NaN) decodes as None: never a reference, never billed.
            return "the meter reports no value for the import register"
        if not math.isfinite(energy_wh) or energy_wh < 0:
            return f"import register reads {energy_wh!r}"
        point = _Point(now, energy_wh)
        if self._last is None:
            self._last = point
            return None
        reason = self._judge(self._last, point)
        if reason is None:
            self._last = point
            self._suspects.clear()
            return None
        if self._suspects and self._judge(self._suspects[-1], point) is None:
            self._suspects.append(point)
        else:
            self._suspects = [point]
        if len(self._suspects) >= self.REBASELINE_AFTER:
            self._last = point
            self._suspects.clear()
            self.rebaselined = True
            return None
        return reason

    def _judge(self, before: _Point, after: _Point) -> str | None:
        delta = after.energy_wh - before.energy_wh
        tolerance = self.resolution_wh + 1e-6 * max(abs(before.energy_wh), abs(after.energy_wh)) + 0.5
        if delta < -tolerance:
            return (f"import energy went backwards from {before.energy_wh:.1f} to "
                    f"{after.energy_wh:.1f} Wh")
        if self.max_power_w is not None:
            dt = max(0.0, after.t - before.t)
            allowed = self.max_power_w * (dt + self.SLACK_S) / 3600.0 * self.POWER_MARGIN + tolerance
            if delta > allowed:
                return (f"import energy jumped {delta:.1f} Wh in {dt:.1f} s, more than "
                        f"{self.max_power_w:.0f} W can deliver")
        return None


class ModbusMeter:
    """A meter of any mapped model on a Modbus bus (RTU or TCP)."""

    def __init__(
        self,
        bus: ModbusBus,
        register_map: RegisterMap,
        unit_id: int = 1,
        *,
        clock: Clock | None = None,
        retries: int = 1,
        max_power_w: float | None = None,
        name: str = "",
    ) -> None:
        if not 0 <= unit_id <= 247:
            raise ValueError("unit_id must be 0-247")
        if retries < 0:
            raise ValueError("retries must not be negative")
        self.bus = bus.acquire()
        self.map = register_map
        self.unit_id = unit_id
        self.clock: Clock = clock or RealClock()
        self.retries = retries
        self.name = name or f"{register_map.model}@{bus.settings.describe()}#{unit_id}"
        energy = register_map.field("energy_import")
        self.guard = EnergyGuard(max_power_w, energy.resolution if energy else 0.0)
        self._closed = False

    async def read_values(self) -> dict[str, float | None] | MeterFailure:
        """Every mapped quantity in canonical units, or why not (no plausibility check)."""
        if self._closed:
            return MeterFailure(MeterFailureKind.DISCONNECTED, f"{self.name}: closed")
        responses: list[list[int]] = []
        async with self.bus.lock:
            for request in self.map.plan():
                result: list[int] | MeterFailure = MeterFailure(MeterFailureKind.NO_ANSWER)
                for _attempt in range(self.retries + 1):
                    result = await self.bus.read(self.unit_id, request.function, request.address,
                                                 request.count)
                    if not isinstance(result, MeterFailure) or result.kind not in TRANSIENT:
                        break
                if isinstance(result, MeterFailure):
                    return result
                responses.append(result)
        try:
            return self.map.decode(responses)
        except (ValueError, OverflowError) as exc:
            return MeterFailure(MeterFailureKind.IMPLAUSIBLE, f"{self.name}: cannot decode: {exc}")

    async def read(self) -> MeterReading | MeterFailure:
        values = await self.read_values()
        if isinstance(values, MeterFailure):
            return values
        reason = self.guard.check(values.get("energy_import"), self.clock.monotonic())
        if reason is not None:
            return MeterFailure(MeterFailureKind.IMPLAUSIBLE, f"{self.name}: {reason}",
                                {"last_good_wh": str(self.guard.last_good_wh)})
        if self.guard.rebaselined:
            log.warning("%s: the import register started a new series at %.1f Wh; taking it as the "
                        "reference from now on (meter replaced or reset?)", self.name,
                        values["energy_import"])
        return to_reading(values, self.clock.time())

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            await self.bus.release()
