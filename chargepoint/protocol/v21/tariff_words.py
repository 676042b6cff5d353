"""OCPP 2.1 tariffs and cost details in the core's words, and back (``core.tariffs.tariff``, ``tariff_cost``).

A TariffType arrives in the library's spelling (snake_case keys, numbers as
floats); each number is taken as the decimal it was written as (``0.3`` is
0.3, not the float nearest to it). A tariff the station cannot price exactly
is refused with the reason, never taken in part: a condition it does not
evaluate (time of day, weekday, dates, current, power, payment, EVSE kind)
is ``ConditionNotSupported``; reservation prices (a reservation here costs
nothing) are ``Rejected``; more than ``MAX_ELEMENTS`` prices in a part are
``TooManyElements``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from chargepoint.core.tariffs.tariff import (
    Conditions,
    Dimension,
    Money,
    Price,
    PriceList,
    Tariff,
    TaxRate,
    unsupported_conditions,
)
from chargepoint.core.tariffs.tariff_cost import CostSummary
from chargepoint.protocol.common.timefmt import iso_utc

#: Most prices one part of a tariff may list (the station's TariffCostCtrlr MaxElements).
MAX_ELEMENTS = 10

_CONDITION_FIELDS = {"min_energy": "min_energy_wh", "max_energy": "max_energy_wh", "min_time": "min_time_s",
                     "max_time": "max_time_s", "min_charging_time": "min_charging_time_s",
                     "max_charging_time": "max_charging_time_s", "min_idle_time": "min_idle_time_s",
                     "max_idle_time": "max_idle_time_s"}
_PARTS = {"energy": "price_kwh", "charging_time": "price_minute", "idle_time": "price_minute",
          "fixed_fee": "price_fixed"}
_COST_KIND = {"normal": "NormalCost", "min": "MinCost", "max": "MaxCost"}
_TOTAL_PARTS = {Dimension.FIXED: "fixed", Dimension.ENERGY: "energy", Dimension.CHARGING_TIME: "chargingTime",
                Dimension.IDLE_TIME: "idleTime"}


class TariffRefused(ValueError):
    """A tariff the station does not take: ``status`` is the 2.1 answer, the message says why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def decimal(value: Any) -> Decimal:
    """A JSON number as the decimal it was written as."""
    return Decimal(str(value))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.title() for word in rest)


def _conditions(data: dict[str, Any] | None) -> Conditions:
    if not data:
        return Conditions()
    names = {_camel(k) for k in data if k != "custom_data"}
    unsupported = unsupported_conditions(names)
    if unsupported:
        raise TariffRefused("ConditionNotSupported",
                            f"conditions not evaluated by this station: {', '.join(sorted(unsupported))}")
    return Conditions(**{ours: decimal(data[theirs]) for theirs, ours in _CONDITION_FIELDS.items()
                         if data.get(theirs) is not None})


def _part(data: dict[str, Any] | None, amount_key: str) -> PriceList | None:
    if data is None:
        return None
    prices = data.get("prices") or []
    if len(prices) > MAX_ELEMENTS:
        raise TariffRefused("TooManyElements", f"{len(prices)} prices in one part; at most {MAX_ELEMENTS}")
    taxes = tuple(TaxRate(str(t["type"]), decimal(t["tax"]), int(t.get("stack") or 0))
                  for t in data.get("tax_rates") or [])
    return PriceList(tuple(Price(decimal(p[amount_key]), _conditions(p.get("conditions"))) for p in prices),
                     taxes)


def _money(data: dict[str, Any] | None) -> Money | None:
    if not data or data.get("excl_tax") is None:
        return None
    incl = data.get("incl_tax")
    return Money(decimal(data["excl_tax"]), None if incl is None else decimal(incl))


def tariff_of(data: dict[str, Any]) -> Tariff:
    """A 2.1 TariffType (library spelling) as the core's tariff; TariffRefused if it cannot be priced."""
    for reserved in ("reservation_time", "reservation_fixed"):
        if data.get(reserved):
            raise TariffRefused("Rejected", "reservation prices are not supported: "
                                            "a reservation costs nothing")
    parts = {name: _part(data.get(name), key) for name, key in _PARTS.items()}
    return Tariff(str(data["tariff_id"]), str(data["currency"]), min_cost=_money(data.get("min_cost")),
                  max_cost=_money(data.get("max_cost")),
                  description=tuple((str(d.get("language") or ""), str(d["content"]))
                                    for d in data.get("description") or []),
                  **parts)


def _number(value: Decimal) -> float | int:
    """A decimal for the wire: an integer as such, else the float nearest (JSON has no decimals)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _price(excl: Decimal, incl: Decimal) -> dict[str, Any]:
    return {"exclTax": _number(excl), "inclTax": _number(incl)}


def cost_details(cost: CostSummary) -> dict[str, Any]:
    """The session's cost as 2.1's CostDetailsType (wire spelling), for a TransactionEvent."""
    total: dict[str, Any] = {"currency": cost.currency, "typeOfCost": _COST_KIND[cost.kind],
                             "total": _price(cost.total.excl_tax, cost.total.incl_tax)}
    for dimension, name in _TOTAL_PARTS.items():
        if dimension in cost.parts:
            total[name] = _price(cost.parts[dimension].excl_tax, cost.parts[dimension].incl_tax)
    periods = []
    for period in cost.periods:
        dimensions = [{"type": "Energy", "volume": _number(period.energy_wh)},
                      {"type": "ChargingTime", "volume": _number(period.charging_s)},
                      {"type": "IdleTIme", "volume": _number(period.idle_s)}]  # 2.1's own spelling
        periods.append({"startPeriod": iso_utc(period.started_at), "tariffId": period.tariff_id,
                        "dimensions": dimensions})
    usage = cost.usage
    return {"chargingPeriods": periods, "totalCost": total,
            "totalUsage": {"energy": _number(usage.energy_wh), "chargingTime": int(usage.charging_s),
                           "idleTime": int(usage.idle_s)}}
