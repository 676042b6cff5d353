"""The 2.1 tariff and cost block: SetDefaultTariff, GetTariffs, ClearTariffs, ChangeTransactionTariff,
CostUpdated.

Translation only: the tariffs in force and each session's cost are the
core's (``core.tariff_book``); the words are ``tariff_words``. A default
tariff prices the sessions that begin after it (those under way keep
theirs); ChangeTransactionTariff prices the rest of one transaction. The
total a CSMS sends by CostUpdated is its own figure for the driver: the
station logs it and keeps it with the transaction's cost for the display and
the local surfaces, beside its own.
"""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

from ocpp.routing import on
from ocpp.v21 import call_result
from ocpp.v21.enums import (
    Action,
    TariffChangeStatusEnumType,
    TariffClearStatusEnumType,
    TariffGetStatusEnumType,
    TariffKindEnumType,
    TariffSetStatusEnumType,
)

from chargepoint.core.station import Station
from chargepoint.core.tariff_book import TariffChange
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.v21.tariff_words import TariffRefused, decimal, tariff_of

log = logging.getLogger(__name__)

_CHANGE = {TariffChange.ACCEPTED: TariffChangeStatusEnumType.accepted,
           TariffChange.NO_TRANSACTION: TariffChangeStatusEnumType.tx_not_found,
           TariffChange.CURRENCY: TariffChangeStatusEnumType.no_currency_change}


def _info(reason: str, code: str = "UnsupportedParam") -> dict[str, str]:
    return {"reason_code": code, "additional_info": reason[:1024]}


class TariffHandlers(Block[BlockContext]):
    """The 2.1 tariff block over the station's tariff book."""


    @property
    def _station(self) -> Station:
        return self.context.station  # type: ignore[no-any-return]

    @on(Action.set_default_tariff, skip_schema_validation=True)
    async def on_set_default_tariff(self, evse_id: int, tariff: dict[str, Any], **_: Any) -> Any:
        station = self._station
        if evse_id != 0 and evse_id not in station.connectors:
            return call_result.SetDefaultTariff(status=TariffSetStatusEnumType.rejected,
                                                status_info=_info(f"no EVSE {evse_id}", "UnknownEvse"))
        try:
            ours = tariff_of(tariff)
        except TariffRefused as refused:
            log.info("default tariff %s refused: %s", tariff.get("tariff_id"), refused)
            return call_result.SetDefaultTariff(status=refused.status, status_info=_info(str(refused)))
        book = station.tariffs
        if any(t.tariff_id == ours.tariff_id and t != ours for t in book.defaults.values()):
            return call_result.SetDefaultTariff(status=TariffSetStatusEnumType.duplicate_tariff_id)
        await book.set_default(evse_id, ours)
        return call_result.SetDefaultTariff(status=TariffSetStatusEnumType.accepted)

    @on(Action.get_tariffs, skip_schema_validation=True)
    def on_get_tariffs(self, evse_id: int, **_: Any) -> Any:
        station = self._station
        if evse_id != 0 and evse_id not in station.connectors:
            return call_result.GetTariffs(status=TariffGetStatusEnumType.rejected,
                                          status_info=_info(f"no EVSE {evse_id}", "UnknownEvse"))
        book = station.tariffs
        evses = list(station.connectors) if evse_id == 0 else [evse_id]
        default, driver = TariffKindEnumType.default_tariff.value, TariffKindEnumType.driver_tariff.value
        assignments: dict[tuple[str, str], dict[str, Any]] = {}

        def entry(tariff_id: str, kind: str) -> dict[str, Any]:
            return assignments.setdefault((tariff_id, kind), {"tariff_id": tariff_id, "tariff_kind": kind})

        def add(item: dict[str, Any], key: str, values: list[Any]) -> None:
            listed = item.setdefault(key, [])
            listed.extend(v for v in values if v not in listed)

        for evse, tariff in sorted(book.defaults.items()):
            if evse == 0 or evse in evses:
                add(entry(tariff.tariff_id, default), "evse_ids", [evse] if evse else evses)
        for c in station.connectors.values():  # a driver's tariff pricing a transaction now
            tx = c.transaction
            if c.id in evses and tx is not None and tx.cost and book.is_driver_tariff(tx.cost.tariff):
                add(entry(tx.cost.tariff.tariff_id, driver), "evse_ids", [c.id])
        for token, tariff in book.driver_tariffs.items():  # given with an authorization, not yet used
            add(entry(tariff.tariff_id, driver), "id_tokens", [token])
        if not assignments:
            return call_result.GetTariffs(status=TariffGetStatusEnumType.no_tariff)
        return call_result.GetTariffs(status=TariffGetStatusEnumType.accepted,
                                      tariff_assignments=list(assignments.values()))

    @on(Action.clear_tariffs, skip_schema_validation=True)
    async def on_clear_tariffs(self, tariff_ids: list[str] | None = None, evse_id: int | None = None,
                               **_: Any) -> Any:
        removed = await self._station.tariffs.clear(tariff_ids, evse_id)
        if not removed:
            return call_result.ClearTariffs(clear_tariffs_result=[
                {"status": TariffClearStatusEnumType.no_tariff.value}])
        ids = dict.fromkeys(tariff_id for _, tariff_id in removed)
        accepted = TariffClearStatusEnumType.accepted.value
        return call_result.ClearTariffs(clear_tariffs_result=[
            {"tariff_id": tariff_id, "status": accepted} for tariff_id in ids])

    @on(Action.change_transaction_tariff, skip_schema_validation=True)
    def on_change_transaction_tariff(self, transaction_id: str, tariff: dict[str, Any], **_: Any) -> Any:
        try:
            ours = tariff_of(tariff)
        except TariffRefused as refused:
            return call_result.ChangeTransactionTariff(status=refused.status, status_info=_info(str(refused)))
        status = self._station.tariffs.change_transaction_tariff(transaction_id, ours)
        return call_result.ChangeTransactionTariff(status=_CHANGE[status])

    @on(Action.cost_updated, skip_schema_validation=True)
    def on_cost_updated(self, total_cost: Any, transaction_id: str, **_: Any) -> Any:
        amount: Decimal = decimal(total_cost)
        self._station.tariffs.csms_cost_updated(transaction_id, amount)
        return call_result.CostUpdated()
