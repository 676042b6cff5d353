"""The cost engine's worked examples: every result an exact decimal, computed by hand beside it."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from chargepoint.core.tariffs.tariff import (
    Conditions,
    Dimension,
    Money,
    Price,
    PriceList,
    Tariff,
    TaxRate,
    home_tariff,
    unsupported_conditions,
)
from chargepoint.core.tariffs.tariff_cost import CurrencyChange, SessionCost, with_taxes

T0 = 1_700_000_000.0


def prices(*amounts: str, taxes: tuple[TaxRate, ...] = ()) -> PriceList:
    return PriceList(tuple(Price(D(a)) for a in amounts), taxes)


def test_energy_only() -> None:
    # 0.30 per kWh; 12.345 kWh delivered in three readings: 12.345 * 0.30 = 3.7035 exactly.
    cost = SessionCost(Tariff("t1", "EUR", energy=prices("0.30")), T0, 1000.0)
    cost.advance(T0 + 600, 5000.0, charging=True)
    cost.advance(T0 + 1200, 9000.123, charging=True)
    cost.advance(T0 + 1800, 13345.0, charging=True)
    summary = cost.summary()
    assert summary.parts == {Dimension.ENERGY: summary.total}
    assert summary.total.excl_tax == D("3.7035")
    assert summary.total.incl_tax == D("3.7035")
    assert summary.usage.energy_wh == D("12345.000")
    assert summary.rounded() == (D("3.70"), D("3.70"))


def test_time_plus_energy_charging_and_idle() -> None:
    # 0.25/kWh, 0.05 per charging minute, 0.10 per idle minute after the first hour of the session.
    tariff = Tariff("t2", "EUR", energy=prices("0.25"), charging_time=prices("0.05"),
                    idle_time=PriceList((Price(D("0.10"), Conditions(min_time_s=D(3600))),)))
    cost = SessionCost(tariff, T0, 0.0)
    cost.advance(T0 + 2400, 7400.0, charging=True)     # 40 min charging, 7.4 kWh
    cost.advance(T0 + 4200, 7400.0, charging=False)    # 30 min idle: 20 free (before 1 h), 10 priced
    summary = cost.summary()
    assert summary.parts[Dimension.ENERGY].excl_tax == D("1.85")         # 7.4 * 0.25
    assert summary.parts[Dimension.CHARGING_TIME].excl_tax == D("2.00")  # 40 * 0.05
    assert summary.parts[Dimension.IDLE_TIME].excl_tax == D("1.00")      # 10 * 0.10
    assert summary.total.excl_tax == D("4.85")
    assert (summary.usage.charging_s, summary.usage.idle_s) == (D("2400"), D("1800"))


def test_a_fixed_fee_is_charged_once() -> None:
    tariff = Tariff("t3", "EUR", energy=prices("0.40"), fixed_fee=prices("1.50"))
    cost = SessionCost(tariff, T0, 500.0)
    assert cost.summary().total.excl_tax == D("1.50")  # the fee stands from the first moment
    cost.advance(T0 + 60, 1500.0, charging=True)
    cost.advance(T0 + 120, 2500.0, charging=True)
    summary = cost.summary()
    assert summary.parts[Dimension.FIXED].excl_tax == D("1.50")
    assert summary.total.excl_tax == D("2.30")  # 1.50 + 2 kWh * 0.40


def test_a_tariff_change_during_the_session_prices_only_what_follows() -> None:
    day = Tariff("day", "EUR", energy=prices("0.30"), fixed_fee=prices("1.00"))
    night = Tariff("night", "EUR", energy=prices("0.20"), fixed_fee=prices("5.00"))
    cost = SessionCost(day, T0, 0.0)
    cost.advance(T0 + 3600, 3000.0, charging=True)
    cost.change_tariff(night, T0 + 3600)
    cost.advance(T0 + 7200, 8000.0, charging=True)
    summary = cost.summary()
    # 1.00 fee of the tariff the session began with + 3 kWh * 0.30 + 5 kWh * 0.20; no second fee.
    assert summary.total.excl_tax == D("2.90")
    assert summary.tariff_id == "night"
    assert [(p.tariff_id, p.energy_wh, p.started_at) for p in summary.periods] == [
        ("day", D("3000.000"), T0), ("night", D("5000.000"), T0 + 3600)]


def test_a_tariff_in_another_currency_cannot_take_over() -> None:
    cost = SessionCost(Tariff("a", "EUR", energy=prices("0.30")), T0, 0.0)
    with pytest.raises(CurrencyChange):
        cost.change_tariff(Tariff("b", "CHF", energy=prices("0.30")), T0 + 1)
    assert cost.tariff.tariff_id == "a"


def test_vat_per_part_and_a_tax_on_tax() -> None:
    vat = (TaxRate("VAT", D("21")),)
    tariff = Tariff("t4", "EUR", energy=prices("0.30", taxes=vat),
                    fixed_fee=prices("1.00", taxes=(*vat, TaxRate("levy", D("10"), stack=1))))
    cost = SessionCost(tariff, T0, 0.0)
    cost.advance(T0 + 3600, 10_000.0, charging=True)
    summary = cost.summary()
    assert summary.parts[Dimension.ENERGY].excl_tax == D("3.00")
    assert summary.parts[Dimension.ENERGY].incl_tax == D("3.63")        # 3.00 + 21 %
    assert summary.parts[Dimension.FIXED].incl_tax == D("1.331")        # 1.00 * 1.21 * 1.10
    assert summary.total.excl_tax == D("4.00")
    assert summary.total.incl_tax == D("4.961")
    assert summary.rounded() == (D("4.00"), D("4.96"))
    assert with_taxes(D("10"), ()) == D("10")


def test_an_energy_threshold_crossed_between_readings_is_split_there() -> None:
    # First 10 kWh at 0.30, the rest at 0.20; one reading jumps from 8 to 14 kWh.
    tiered = PriceList((Price(D("0.30"), Conditions(max_energy_wh=D(10_000))),
                        Price(D("0.20"), Conditions(min_energy_wh=D(10_000)))))
    cost = SessionCost(Tariff("tiers", "EUR", energy=tiered), T0, 0.0)
    cost.advance(T0 + 100, 8000.0, charging=True)
    cost.advance(T0 + 200, 14000.0, charging=True)
    assert cost.summary().total.excl_tax == D("3.80")  # 10 * 0.30 + 4 * 0.20


def test_minimum_and_maximum_cost_bound_the_total() -> None:
    low = Tariff("min", "EUR", energy=prices("0.30"), min_cost=Money(D("2.00"), D("2.42")))
    cost = SessionCost(low, T0, 0.0)
    cost.advance(T0 + 60, 1000.0, charging=True)
    summary = cost.summary()
    assert (summary.kind, summary.total.excl_tax, summary.total.incl_tax) == ("min", D("2.00"), D("2.42"))
    high = Tariff("max", "EUR", energy=prices("0.30"), max_cost=Money(D("5.00")))
    cost = SessionCost(high, T0, 0.0)
    cost.advance(T0 + 60, 30_000.0, charging=True)
    assert (cost.summary().kind, cost.summary().total.excl_tax) == ("max", D("5.00"))


def test_the_home_tariff_runs_on_the_same_engine() -> None:
    cost = SessionCost(home_tariff(D("0.3412"), "EUR"), T0, 100.0)
    cost.advance(T0 + 3600, 7300.0, charging=True)
    assert cost.summary().total.incl_tax == D("2.45664")  # 7.2 kWh * 0.3412, taxes in the price


def test_a_meter_going_back_adds_no_energy() -> None:
    cost = SessionCost(Tariff("t", "EUR", energy=prices("1")), T0, 5000.0)
    cost.advance(T0 + 10, 4000.0, charging=True)
    cost.advance(T0 + 20, 6000.0, charging=True)
    assert cost.summary().total.excl_tax == D("1")  # 5000 -> 6000 Wh once


def test_conditions_the_station_cannot_evaluate_are_named() -> None:
    assert unsupported_conditions({"minEnergy", "startTimeOfDay", "maxPower"}) == {"startTimeOfDay",
                                                                                   "maxPower"}
