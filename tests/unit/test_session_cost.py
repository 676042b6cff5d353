"""A session's running cost in the station core: priced at each meter reading by the tariff in force,
shown in the connector's view, kept with the stop; defaults kept in the real state database."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from chargepoint.config import parse
from chargepoint.control.shapes import connector_json
from chargepoint.core.events import TransactionStopped
from chargepoint.core.tariff_book import TariffBook, TariffChange
from chargepoint.core.tariffs.tariff import Price, PriceList, Tariff
from chargepoint.core.tariffs.tariff_codec import cost_from_json
from chargepoint.core.tariffs.tariff_cost import exact
from hal.sim.world import SimWorld
from tests.unit import test_station
from tests.unit.test_station import METER_START_WH, SAMPLE_INTERVAL_S, Bench, LoopClock, RecordingOutbox, Rig

bench = test_station.bench  # the fixture: started rigs and stores, closed after each test


def operator(tariff_id: str, per_kwh: str, currency: str = "EUR") -> Tariff:
    return Tariff(tariff_id, currency, energy=PriceList((Price(D(per_kwh)),)))


async def home_rig(bench: Bench, tmp_path: Path, home: dict[str, object]) -> Rig:
    config = parse({"station": {"identity": "CP-HOME", "state_dir": str(tmp_path / "state")},
                    "ocpp": {"meter_value_sample_interval_s": SAMPLE_INTERVAL_S}, "home": home}, "<test>")
    clock = LoopClock()
    world = SimWorld(clock, meter_start_wh=METER_START_WH, cable_ohms=220.0)
    rig = Rig(config, clock, world, RecordingOutbox(), world.lock, bench.work)
    bench.rigs.append(rig)
    await rig.station.start()
    await rig.run(0.1)
    return rig


async def test_a_home_session_costs_its_energy_at_the_configured_price(bench: Bench, tmp_path: Path) -> None:
    rig = await home_rig(bench, tmp_path, {"price_per_kwh": 0.3412, "currency": "EUR"})
    await rig.charge()
    await rig.run(60)
    view = rig.station.view(1).session.transaction
    assert view is not None and view.cost is not None
    assert view.cost.tariff_id == "home" and view.cost.total.incl_tax > 0
    shown = connector_json(rig.station.view(1), "Occupied", lambda _: None, rig.clock.time(),
                           False)["session"]["transaction"]["cost"]
    excl, incl = view.cost.rounded()
    assert shown == {"currency": "EUR", "tariff_id": "home", "excl_tax": str(excl), "incl_tax": str(incl),
                     "kind": "normal", "energy_wh": round(float(view.cost.usage.energy_wh), 1)}
    await rig.tap()
    stop = rig.stopped[0]
    assert stop.cost is not None
    cost = cost_from_json(stop.cost)
    delivered = exact(stop.meter_stop_wh) - exact(METER_START_WH)
    assert delivered > 0
    assert cost.usage.energy_wh == delivered
    assert cost.total.incl_tax == delivered / 1000 * D("0.3412")  # exact: the same Decimal arithmetic
    assert cost.currency == "EUR"
    # Each periodic sample is queued with the cost as of its reading; the stop's own record keeps none.
    queued = [cost_from_json(x.cost) for x in rig.samples if x.cost is not None]
    assert queued and len(queued) == len(rig.samples)
    assert [q.usage.energy_wh for q in queued] == [exact(x.reading.energy_import_wh) - exact(METER_START_WH)
                                                   for x in rig.samples]
    assert all(x.cost is None for x in stop.samples)


async def test_no_tariff_no_cost(bench: Bench) -> None:
    rig = await bench.rig()
    await rig.charge()
    await rig.run(5)
    assert rig.station.view(1).session.transaction.cost is None
    await rig.tap()
    assert rig.stopped[0].cost is None


async def test_a_default_tariff_wins_over_the_home_tariff_and_survives_a_restart(
        bench: Bench, tmp_path: Path) -> None:
    rig = await home_rig(bench, tmp_path, {"price_per_kwh": 0.30})
    store = await bench.store(tmp_path / "db")
    book = rig.station.tariffs
    await book.attach(store)
    await book.set_default(0, operator("op-1", "0.45"))
    await book.set_default(1, operator("evse-1", "0.50"))
    assert book.for_session(1).tariff_id == "evse-1"
    assert await book.clear(["evse-1"], None) == [(1, "evse-1")]
    assert book.for_session(1).tariff_id == "op-1"

    again = TariffBook({}, rig.clock.time)
    await again.attach(store)
    assert again.defaults == {0: operator("op-1", "0.45")}
    assert await again.clear(None, None) == [(0, "op-1")]
    assert again.for_session(1) is None


async def test_a_transaction_tariff_change_prices_what_follows(bench: Bench, tmp_path: Path) -> None:
    rig = await home_rig(bench, tmp_path, {"price_per_kwh": 0.30})
    started = await rig.charge()
    await rig.run(30)
    book = rig.station.tariffs
    change = book.change_transaction_tariff
    assert change("no-such", operator("x", "1")) is TariffChange.NO_TRANSACTION
    assert change(started.local_id, operator("x", "1", "CHF")) is TariffChange.CURRENCY
    assert change(started.local_id, operator("driver", "0.10")) is TariffChange.ACCEPTED
    assert book.transaction_tariffs() == {started.local_id: operator("driver", "0.10")}
    await rig.run(30)
    await rig.tap()
    cost = cost_from_json(rig.stopped[0].cost)
    first, second = cost.periods
    assert (first.tariff_id, second.tariff_id) == ("home", "driver")
    assert first.energy_wh > 0 and second.energy_wh > 0
    assert cost.total.excl_tax == first.energy_wh / 1000 * D("0.30") + second.energy_wh / 1000 * D("0.10")
    assert first.energy_wh + second.energy_wh == exact(rig.stopped[0].meter_stop_wh) - exact(METER_START_WH)


async def test_solar_mode_pv_prices_a_home_session_at_the_feed_in_price(bench: Bench, tmp_path: Path) -> None:
    rig = await home_rig(bench, tmp_path, {"price_per_kwh": 0.30, "feed_in_price_per_kwh": 0.08})
    book = rig.station.tariffs
    assert book.for_session(1).tariff_id == "home"
    book.solar_mode = lambda: "pv"
    pv = book.for_session(1)
    assert (pv.tariff_id, pv.energy.prices[0].amount) == ("home-pv", D("0.08"))


async def test_a_transaction_whose_ev_left_while_the_daemon_was_away_is_priced_up_to_its_departure(
        bench: Bench, tmp_path: Path) -> None:
    """Recovered after its EV left (no daemon attached), a transaction costs its energy and its
    charging time up to the departure: the time the daemon stayed away after it is not charged."""
    state_dir = tmp_path / "db"
    dead, _ = await test_station._cut_off_transaction(bench, state_dir)
    started = dead.started[0]
    left_at = dead.clock.time()
    rig, store = await test_station._restart(bench, dead, state_dir)
    book = rig.station.tariffs
    await book.attach(store)
    per_minute = D("0.05")
    await book.set_default(0, Tariff("op-time", "EUR", energy=PriceList((Price(D("0.30")),)),
                                     charging_time=PriceList((Price(per_minute),))))
    await rig.run(300)  # the daemon comes back five minutes after the departure
    cut_off = await rig.outbox.open_transactions()
    rig.station.hold_for_recovery(cut_off, frozenset(), ev_left={1: left_at})
    await rig.finish(rig.station.recover(cut_off, resume=False), within_s=5.0)
    [stop] = [e for e in rig.outbox.events if isinstance(e, TransactionStopped)]
    assert stop.local_id == started.local_id and stop.cost is not None
    cost = cost_from_json(stop.cost)
    assert cost.usage.charging_s == exact(left_at - started.timestamp)
    assert rig.clock.time() - left_at >= 300
    delivered = exact(stop.meter_stop_wh) - exact(started.meter_start_wh)
    assert cost.usage.energy_wh == delivered > 0
    assert cost.total.excl_tax == (delivered / 1000 * D("0.30")
                                   + exact(left_at - started.timestamp) / 60 * per_minute)
