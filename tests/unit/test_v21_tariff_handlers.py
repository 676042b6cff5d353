"""The 2.1 tariff block's answers over a real station (the rig of ``test_station.py``, simulated time):
which tariffs GetTariffs names and how, what ClearTariffs and ChangeTransactionTariff answer."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from chargepoint.protocol.v21.tariff_words import tariff_of
from chargepoint.protocol.v21.tariffs import TariffHandlers
from tests.unit import test_station
from tests.unit.test_station import CARD, Bench, Rig

bench = test_station.bench  # the fixture: started rigs and stores, closed after each test


def wire(tariff_id: str, per_kwh: float = 0.3, currency: str = "EUR") -> dict[str, Any]:
    return {"tariff_id": tariff_id, "currency": currency, "energy": {"prices": [{"price_kwh": per_kwh}]}}


def handlers(rig: Rig) -> TariffHandlers:
    return TariffHandlers(SimpleNamespace(station=rig.station))  # type: ignore[arg-type]


async def test_get_tariffs_names_defaults_and_drivers_tariffs(bench: Bench, tmp_path: Path) -> None:
    rig = await bench.rig()
    block = handlers(rig)
    assert block.on_get_tariffs(evse_id=0).status == "NoTariff"
    assert (await block.on_set_default_tariff(evse_id=0, tariff=wire("op"))).status == "Accepted"
    assert (await block.on_set_default_tariff(evse_id=0, tariff=wire("op"))).status == "Accepted", \
        "the same tariff again is no duplicate"
    other = await block.on_set_default_tariff(evse_id=1, tariff=wire("op", 0.4))
    assert other.status == "DuplicateTariffId"
    rig.station.tariffs.set_driver_tariff("DRIVER7", tariff_of(wire("drv", 0.2)))
    answer = block.on_get_tariffs(evse_id=1)
    assert answer.status == "Accepted"
    assert answer.tariff_assignments == [
        {"tariff_id": "op", "tariff_kind": "DefaultTariff", "evse_ids": [1]},
        {"tariff_id": "drv", "tariff_kind": "DriverTariff", "id_tokens": ["DRIVER7"]}]

    started = await rig.charge(CARD)
    change = block.on_change_transaction_tariff(transaction_id=started.local_id, tariff=wire("change", 0.1))
    assert change.status == "Accepted"
    assert block.on_get_tariffs(evse_id=0).tariff_assignments == [
        {"tariff_id": "op", "tariff_kind": "DefaultTariff", "evse_ids": [1]},
        {"tariff_id": "change", "tariff_kind": "DriverTariff", "evse_ids": [1]},
        {"tariff_id": "drv", "tariff_kind": "DriverTariff", "id_tokens": ["DRIVER7"]}]
    night = {**wire("night"), "energy": {"prices": [{"price_kwh": 0.2,
                                                     "conditions": {"day_of_week": ["Monday"]}}]}}
    refused = block.on_change_transaction_tariff(transaction_id=started.local_id, tariff=night)
    assert refused.status == "ConditionNotSupported" and "dayOfWeek" in refused.status_info["additional_info"]
    assert block.on_change_transaction_tariff(transaction_id=started.local_id,
                                              tariff=wire("chf", currency="CHF")).status == "NoCurrencyChange"

    cleared = await block.on_clear_tariffs(evse_id=1)
    assert cleared.clear_tariffs_result == [{"status": "NoTariff"}], "the station's default is EVSE 0's"
    cleared = await block.on_clear_tariffs(tariff_ids=["op"])
    assert cleared.clear_tariffs_result == [{"tariff_id": "op", "status": "Accepted"}]
    assert block.on_cost_updated(total_cost=3.5, transaction_id=started.local_id) is not None
    assert rig.station.view(1).session.transaction.csms_cost == 3.5


async def test_a_session_under_the_home_tariff_is_no_drivers_tariff(bench: Bench) -> None:
    rig = await bench.rig()
    rig.station.tariffs.home = tariff_of(wire("home"))
    await rig.charge(CARD)
    assert handlers(rig).on_get_tariffs(evse_id=0).status == "NoTariff"
