"""Tariffs: what a session costs per kWh, per minute charging or idle, once, and the taxes on each.

The model is the one OCPP 2.1 defines (a tariff has an energy price, a
charging-time price, an idle-time price and a fixed fee, each a list of prices
with conditions and its own tax rates, and a minimum and maximum cost), in the
station's own words, so that the running cost of a session is computed by one
piece of code whoever set the tariff: an operator's CSMS, or a homeowner's
``[home] price_per_kwh``. Amounts are Decimal: a price of 0.30 per kWh is
exactly that, and a worked example gives an exact result.

Of a price's conditions the station evaluates those it can measure exactly:
the energy delivered so far (``min/max_energy_wh``) and the time passed
(``min/max_time_s`` for the whole session, ``min/max_charging_time_s``,
``min/max_idle_time_s``); a minimum is inclusive, a maximum exclusive. Prices
are tried in order and the first whose conditions hold applies; none: that
part costs nothing. Conditions on the time of day, the weekday, dates,
current, power or payment are not evaluated; ``unsupported_conditions`` names
them so that whoever sets such a tariff can refuse it instead of billing wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum


class Dimension(Enum):
    """What a price counts (per kWh, per minute, once)."""

    ENERGY = "energy"
    CHARGING_TIME = "charging_time"
    IDLE_TIME = "idle_time"
    FIXED = "fixed"


@dataclass(frozen=True)
class TaxRate:
    """A tax on one part of the cost: ``percent`` of the amount, or at ``stack`` 1 and above of the
    amount with the taxes of the lower stacks (a tax on tax)."""

    kind: str
    percent: Decimal
    stack: int = 0


@dataclass(frozen=True)
class Conditions:
    """When a price applies; None: no bound. Minimums inclusive, maximums exclusive."""

    min_energy_wh: Decimal | None = None
    max_energy_wh: Decimal | None = None
    min_time_s: Decimal | None = None
    max_time_s: Decimal | None = None
    min_charging_time_s: Decimal | None = None
    max_charging_time_s: Decimal | None = None
    min_idle_time_s: Decimal | None = None
    max_idle_time_s: Decimal | None = None

    def bounds(self) -> list[tuple[str, Decimal | None, Decimal | None]]:
        """(usage counter, minimum, maximum) for each counter this condition names."""
        return [("energy_wh", self.min_energy_wh, self.max_energy_wh),
                ("time_s", self.min_time_s, self.max_time_s),
                ("charging_s", self.min_charging_time_s, self.max_charging_time_s),
                ("idle_s", self.min_idle_time_s, self.max_idle_time_s)]

    def holds(self, usage: Usage) -> bool:
        for counter, low, high in self.bounds():
            value = getattr(usage, counter)
            if low is not None and value < low or high is not None and value >= high:
                return False
        return True


@dataclass(frozen=True)
class Price:
    """One price of a part: ``amount`` per kWh, per minute or once, when ``conditions`` hold."""

    amount: Decimal
    conditions: Conditions = field(default_factory=Conditions)


@dataclass(frozen=True)
class PriceList:
    """A part of a tariff: its prices in order of precedence and the taxes on what they add up to."""

    prices: tuple[Price, ...]
    taxes: tuple[TaxRate, ...] = ()

    def price(self, usage: Usage) -> Decimal | None:
        """The amount of the first price whose conditions hold at ``usage``; None: none does."""
        return next((p.amount for p in self.prices if p.conditions.holds(usage)), None)


@dataclass(frozen=True)
class Money:
    """An amount without and with taxes (None: not given, for a minimum or maximum cost)."""

    excl_tax: Decimal
    incl_tax: Decimal | None = None


@dataclass(frozen=True)
class Tariff:
    """A tariff in force: its id (as its setter names it), currency and parts; absent parts cost nothing."""

    tariff_id: str
    currency: str
    energy: PriceList | None = None
    charging_time: PriceList | None = None
    idle_time: PriceList | None = None
    fixed_fee: PriceList | None = None
    min_cost: Money | None = None
    max_cost: Money | None = None
    #: What the tariff says to a driver (language -> text), shown as it came.
    description: tuple[tuple[str, str], ...] = ()

    def part(self, dimension: Dimension) -> PriceList | None:
        return {Dimension.ENERGY: self.energy, Dimension.CHARGING_TIME: self.charging_time,
                Dimension.IDLE_TIME: self.idle_time, Dimension.FIXED: self.fixed_fee}[dimension]


@dataclass(frozen=True)
class Usage:
    """What a session has used so far: the counters the price conditions test."""

    energy_wh: Decimal = Decimal(0)
    charging_s: Decimal = Decimal(0)
    idle_s: Decimal = Decimal(0)

    @property
    def time_s(self) -> Decimal:
        return self.charging_s + self.idle_s


#: The price conditions of OCPP 2.1 that ``Conditions`` evaluates (the others are refused).
SUPPORTED_CONDITIONS = frozenset({"minEnergy", "maxEnergy", "minTime", "maxTime", "minChargingTime",
                                  "maxChargingTime", "minIdleTime", "maxIdleTime"})


def unsupported_conditions(names: set[str]) -> set[str]:
    """Of the condition names a tariff uses, those this station cannot evaluate."""
    return names - SUPPORTED_CONDITIONS


def home_tariff(price_per_kwh: Decimal, currency: str, tariff_id: str = "home") -> Tariff:
    """The homeowner's configured tariff: the energy price, taxes included (as the bill states it)."""
    return Tariff(tariff_id, currency, energy=PriceList((Price(price_per_kwh),)))
