"""OCPP 2.1 tariffs in the core's words and back: exact decimals, and refusals instead of wrong bills."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest

from chargepoint.core.tariffs.tariff import Conditions, Dimension, Money, TaxRate
from chargepoint.core.tariffs.tariff_cost import SessionCost
from chargepoint.protocol.v21.tariff_words import MAX_ELEMENTS, TariffRefused, cost_details, tariff_of

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def tariff(**parts: Any) -> dict[str, Any]:
    """A TariffType as the library hands it over (snake_case, numbers as floats)."""
    return {"tariff_id": "t-1", "currency": "EUR", **parts}


def test_numbers_are_taken_as_the_decimals_written() -> None:
    ours = tariff_of(tariff(
        energy={"prices": [{"price_kwh": 0.1, "conditions": {"max_energy": 10000}},
                           {"price_kwh": 0.07, "conditions": {"min_energy": 10000}}],
                "tax_rates": [{"type": "VAT", "tax": 19.0}, {"type": "levy", "tax": 2.5, "stack": 1}]},
        idle_time={"prices": [{"price_minute": 0.1, "conditions": {"min_idle_time": 1800}}]},
        fixed_fee={"prices": [{"price_fixed": 0.5}]},
        min_cost={"excl_tax": 1.0}, max_cost={"excl_tax": 30.0, "incl_tax": 35.7},
        description=[{"language": "en", "content": "Day rate"}]))
    assert ours.energy is not None and ours.idle_time is not None and ours.fixed_fee is not None
    assert [p.amount for p in ours.energy.prices] == [D("0.1"), D("0.07")]
    assert ours.energy.prices[0].conditions == Conditions(max_energy_wh=D("10000"))
    assert ours.energy.taxes == (TaxRate("VAT", D("19.0")), TaxRate("levy", D("2.5"), 1))
    assert ours.idle_time.prices[0].conditions == Conditions(min_idle_time_s=D("1800"))
    assert (ours.min_cost, ours.max_cost) == (Money(D("1.0")), Money(D("30.0"), D("35.7")))
    assert ours.charging_time is None and ours.description == (("en", "Day rate"),)


@pytest.mark.parametrize(("data", "status", "words"), [
    (tariff(energy={"prices": [{"price_kwh": 0.2, "conditions": {"start_time_of_day": "22:00"}}]}),
     "ConditionNotSupported", "startTimeOfDay"),
    (tariff(charging_time={"prices": [{"price_minute": 0.1, "conditions": {"max_power": 7000}}]}),
     "ConditionNotSupported", "maxPower"),
    (tariff(reservation_time={"prices": [{"price_minute": 0.1}]}), "Rejected", "reservation"),
    (tariff(energy={"prices": [{"price_kwh": 0.1}] * (MAX_ELEMENTS + 1)}), "TooManyElements", "prices"),
])
def test_what_the_station_cannot_price_exactly_is_refused(data: dict[str, Any], status: str,
                                                          words: str) -> None:
    with pytest.raises(TariffRefused, match=words) as refused:
        tariff_of(data)
    assert refused.value.status == status


def test_cost_details_in_wire_words() -> None:
    vat = [{"type": "VAT", "tax": 21}]
    ours = tariff_of(tariff(energy={"prices": [{"price_kwh": 0.3}], "tax_rates": vat},
                            fixed_fee={"prices": [{"price_fixed": 1}]}))
    cost = SessionCost(ours, T0, 0.0)
    cost.advance(T0 + 600, 2500.0, charging=True)
    cost.advance(T0 + 900, 2500.0, charging=False)
    details = cost_details(cost.summary())
    assert details == {
        "chargingPeriods": [{"startPeriod": "2026-01-01T00:00:00.000Z", "tariffId": "t-1", "dimensions": [
            {"type": "Energy", "volume": 2500}, {"type": "ChargingTime", "volume": 600},
            {"type": "IdleTIme", "volume": 300}]}],
        "totalCost": {"currency": "EUR", "typeOfCost": "NormalCost",
                      "total": {"exclTax": 1.75, "inclTax": 1.9075},  # 1 + 0.75, 1 + 0.75 * 1.21
                      "fixed": {"exclTax": 1, "inclTax": 1},
                      "energy": {"exclTax": 0.75, "inclTax": 0.9075}},
        "totalUsage": {"energy": 2500, "chargingTime": 600, "idleTime": 300}}
    assert Dimension.CHARGING_TIME not in cost.summary().parts
