"""Tariffs and session costs as JSON text: kept in the state database and with a stop in the outbox.

Every amount is written as decimal text ("0.3412"), never as a JSON number, so
that what is read back is the exact decimal that was written.
"""

from __future__ import annotations

import json
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
    Usage,
)
from chargepoint.core.tariffs.tariff_cost import Amount, CostSummary, Period

_PARTS = ("energy", "charging_time", "idle_time", "fixed_fee")
_CONDITIONS = ("min_energy_wh", "max_energy_wh", "min_time_s", "max_time_s", "min_charging_time_s",
               "max_charging_time_s", "min_idle_time_s", "max_idle_time_s")


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def tariff_data(tariff: Tariff) -> dict[str, Any]:
    data: dict[str, Any] = {"id": tariff.tariff_id, "currency": tariff.currency,
                            "description": [list(d) for d in tariff.description]}
    for name in _PARTS:
        part: PriceList | None = getattr(tariff, name)
        if part is not None:
            data[name] = {
                "prices": [{"amount": str(p.amount),
                            **{c: str(v) for c in _CONDITIONS if (v := getattr(p.conditions, c)) is not None}}
                           for p in part.prices],
                "taxes": [[t.kind, str(t.percent), t.stack] for t in part.taxes]}
    for name in ("min_cost", "max_cost"):
        money: Money | None = getattr(tariff, name)
        if money is not None:
            data[name] = [str(money.excl_tax), _text(money.incl_tax)]
    return data


def tariff_from_data(data: dict[str, Any]) -> Tariff:
    parts: dict[str, Any] = {}
    for name in _PARTS:
        if name in data:
            prices = tuple(Price(Decimal(p["amount"]), Conditions(**{c: _dec(p.get(c)) for c in _CONDITIONS}))
                           for p in data[name]["prices"])
            taxes = tuple(TaxRate(kind, Decimal(percent), int(stack))
                          for kind, percent, stack in data[name]["taxes"])
            parts[name] = PriceList(prices, taxes)
    for name in ("min_cost", "max_cost"):
        if name in data:
            excl, incl = data[name]
            parts[name] = Money(Decimal(excl), _dec(incl))
    return Tariff(str(data["id"]), str(data["currency"]),
                  description=tuple((str(lang), str(text)) for lang, text in data.get("description", [])),
                  **parts)


def tariffs_json(tariffs: dict[int, Tariff]) -> str:
    return json.dumps({str(evse): tariff_data(t) for evse, t in tariffs.items()}, separators=(",", ":"))


def tariffs_from_json(text: str) -> dict[int, Tariff]:
    return {int(evse): tariff_from_data(data) for evse, data in json.loads(text).items()}


def cost_json(summary: CostSummary) -> str:
    """A session's cost as kept with its stop (for the message that reports it, after a restart too)."""
    return json.dumps({
        "currency": summary.currency, "tariff_id": summary.tariff_id, "kind": summary.kind,
        "parts": {d.value: [str(a.excl_tax), str(a.incl_tax)] for d, a in summary.parts.items()},
        "total": [str(summary.total.excl_tax), str(summary.total.incl_tax)],
        "usage": [str(summary.usage.energy_wh), str(summary.usage.charging_s), str(summary.usage.idle_s)],
        "periods": [[p.started_at, p.tariff_id, str(p.energy_wh), str(p.charging_s), str(p.idle_s)]
                    for p in summary.periods],
    }, separators=(",", ":"))


def cost_from_json(text: str) -> CostSummary:
    data = json.loads(text)
    energy, charging, idle = (Decimal(v) for v in data["usage"])
    return CostSummary(
        data["currency"], data["tariff_id"], data["kind"],
        {Dimension(d): Amount(Decimal(e), Decimal(i)) for d, (e, i) in data["parts"].items()},
        Amount(Decimal(data["total"][0]), Decimal(data["total"][1])), Usage(energy, charging, idle),
        tuple(Period(float(at), str(tid), Decimal(e), Decimal(c), Decimal(i))
              for at, tid, e, c, i in data["periods"]))
