"""The running cost of one session under the tariffs in force: one engine for every tariff's setter.

``SessionCost`` is told the meter reading and whether the EV is charging at
each reading; the energy since the last reading is priced per kWh, the time
per minute as charging time (energy flowing) or idle time (connected, not
charging), and the tariff's fixed fee once when the session begins. A tariff
changed during the session prices what comes after the change; what came
before keeps its price (each tariff in force is a period of its own, as OCPP
2.1's cost details list them). Taxes are computed per part on the exact sum
the part came to under each tax rule, lower stacks first; the minimum and
maximum cost of the tariff in force bound the total.

All amounts are exact decimals: meter readings are taken to the mWh and time
to the millisecond, prices multiply them without rounding, and nothing is
rounded until a surface shows it (``CostSummary.rounded``). Where a price's
conditions have a threshold (the first 10 kWh at one price, the rest at
another) an increment that crosses it is split there, so the result does
not depend on how often the meter is read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal

from chargepoint.core.tariffs.tariff import Dimension, PriceList, Tariff, TaxRate, Usage

KWH_WH = Decimal(1000)
MINUTE_S = Decimal(60)
ZERO = Decimal(0)


class CurrencyChange(ValueError):
    """A tariff in another currency cannot take over a session that is being billed."""


def exact(value: float, places: int = 3) -> Decimal:
    """A float reading as the decimal it was meant to be (mWh, ms): ``1234.5670001`` is ``1234.567``."""
    return Decimal(str(round(value, places)))


@dataclass
class Period:
    """A stretch of the session under one tariff (OCPP 2.1's charging period)."""

    started_at: float
    tariff_id: str
    energy_wh: Decimal = ZERO
    charging_s: Decimal = ZERO
    idle_s: Decimal = ZERO


@dataclass(frozen=True)
class Amount:
    """A part of the cost or the total, without and with taxes."""

    excl_tax: Decimal
    incl_tax: Decimal

    def __add__(self, other: Amount) -> Amount:
        return Amount(self.excl_tax + other.excl_tax, self.incl_tax + other.incl_tax)


NOTHING = Amount(ZERO, ZERO)


@dataclass(frozen=True)
class CostSummary:
    """What the session has cost so far, part by part, and what it has used."""

    currency: str
    tariff_id: str
    #: "normal", or "min"/"max" when the tariff's minimum or maximum cost replaced the sum.
    kind: str
    parts: dict[Dimension, Amount]
    total: Amount
    usage: Usage
    periods: tuple[Period, ...] = ()

    def rounded(self, places: int = 2) -> tuple[Decimal, Decimal]:
        """The total without and with taxes as a bill shows it (half up to ``places`` decimals)."""
        step = Decimal(1).scaleb(-places)
        return (self.total.excl_tax.quantize(step, ROUND_HALF_UP),
                self.total.incl_tax.quantize(step, ROUND_HALF_UP))


def with_taxes(amount: Decimal, taxes: tuple[TaxRate, ...]) -> Decimal:
    """``amount`` with its taxes: each stack's rates on the amount plus the lower stacks' taxes."""
    total = amount
    for stack in sorted({t.stack for t in taxes}):
        base = total
        total += sum((base * t.percent / 100 for t in taxes if t.stack == stack), ZERO)
    return total


class SessionCost:
    """The cost of one session so far (see the module doc)."""

    def __init__(self, tariff: Tariff, started_at: float, meter_start_wh: float) -> None:
        self.tariff = tariff
        self.usage = Usage()
        self._at = started_at
        self._meter_wh = exact(meter_start_wh)
        #: Sum without taxes per part and tax rule.
        self._sums: dict[tuple[Dimension, tuple[TaxRate, ...]], Decimal] = {}
        self.periods = [Period(started_at, tariff.tariff_id)]
        fixed = tariff.fixed_fee
        if fixed is not None:
            amount = fixed.price(self.usage)
            if amount is not None:
                self._add(Dimension.FIXED, fixed, amount)

    def _add(self, dimension: Dimension, part: PriceList, amount: Decimal) -> None:
        key = (dimension, part.taxes)
        self._sums[key] = self._sums.get(key, ZERO) + amount

    def advance(self, now: float, meter_wh: float, charging: bool) -> None:
        """Price what was used since the last call: the meter's advance and the time, charging or idle."""
        seconds = max(ZERO, exact(now - self._at))
        reading = exact(meter_wh)
        energy = max(ZERO, reading - self._meter_wh)  # a meter that went back (replaced) adds nothing
        self._price_energy(energy)
        self._price_time(seconds, charging)
        period = self.periods[-1]
        period.energy_wh += energy
        if charging:
            period.charging_s += seconds
        else:
            period.idle_s += seconds
        self.usage = Usage(self.usage.energy_wh + energy,
                           self.usage.charging_s + (seconds if charging else ZERO),
                           self.usage.idle_s + (ZERO if charging else seconds))
        self._at = max(self._at, now)
        self._meter_wh = max(self._meter_wh, reading)

    def change_tariff(self, tariff: Tariff, now: float) -> None:
        """From ``now`` on ``tariff`` prices the session (call ``advance`` up to ``now`` first)."""
        if tariff.currency != self.tariff.currency:
            raise CurrencyChange(f"the session is billed in {self.tariff.currency}, "
                                 f"not {tariff.currency}")
        self.tariff = tariff
        self.periods.append(Period(now, tariff.tariff_id))

    def _price_energy(self, energy: Decimal) -> None:
        part = self.tariff.energy
        if part is None or energy <= 0:
            return
        start = self.usage.energy_wh
        for low, high in _segments(part, energy, [("energy_wh", start)]):
            price = part.price(replace(self.usage, energy_wh=start + low))
            if price is not None:
                self._add(Dimension.ENERGY, part, (high - low) / KWH_WH * price)

    def _price_time(self, seconds: Decimal, charging: bool) -> None:
        dimension = Dimension.CHARGING_TIME if charging else Dimension.IDLE_TIME
        part = self.tariff.part(dimension)
        if part is None or seconds <= 0:
            return
        own = "charging_s" if charging else "idle_s"
        base = self.usage
        for low, high in _segments(part, seconds, [("time_s", base.time_s), (own, getattr(base, own))]):
            price = part.price(replace(base, **{own: getattr(base, own) + low}))
            if price is not None:
                self._add(dimension, part, (high - low) / MINUTE_S * price)

    def summary(self) -> CostSummary:
        parts: dict[Dimension, Amount] = {}
        for (dimension, taxes), amount in self._sums.items():
            parts[dimension] = parts.get(dimension, NOTHING) + Amount(amount, with_taxes(amount, taxes))
        total = sum(parts.values(), NOTHING)
        kind = "normal"
        low, high = self.tariff.min_cost, self.tariff.max_cost
        if low is not None and total.excl_tax < low.excl_tax:
            kind, total = "min", _bound(low.excl_tax, low.incl_tax)
        elif high is not None and total.excl_tax > high.excl_tax:
            kind, total = "max", _bound(high.excl_tax, high.incl_tax)
        return CostSummary(self.tariff.currency, self.tariff.tariff_id, kind, parts, total, self.usage,
                           tuple(replace(p) for p in self.periods))


def _bound(excl_tax: Decimal, incl_tax: Decimal | None) -> Amount:
    """A minimum or maximum cost as the total; one given without taxes stands as it is with them."""
    return Amount(excl_tax, excl_tax if incl_tax is None else incl_tax)


def _segments(part: PriceList, length: Decimal,
              counters: list[tuple[str, Decimal]]) -> list[tuple[Decimal, Decimal]]:
    """``[0, length)`` cut where a counter (at its given start) crosses a bound of one of the prices."""
    cuts = {ZERO, length}
    for price in part.prices:
        for counter, low, high in price.conditions.bounds():
            for name, start in counters:
                if name != counter:
                    continue
                for bound in (low, high):
                    if bound is not None and ZERO < bound - start < length:
                        cuts.add(bound - start)
    ordered = sorted(cuts)
    return list(zip(ordered, ordered[1:], strict=False))

