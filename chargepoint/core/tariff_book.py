"""Which tariff prices a session, and the running cost of each transaction under it.

In order: a tariff given for the transaction itself (a CSMS's driver tariff,
given with the identifier's authorization, or ChangeTransactionTariff), the
default tariff of the session's EVSE, the station's default tariff (EVSE 0),
the homeowner's tariff (``[home]``). The
home tariff in solar mode pv prices a kWh at the feed-in price when one is
configured (the energy came from surplus that would have been exported); the
mode when the session begins decides. No tariff: no cost is shown.

The defaults a CSMS sets are kept in the state database (the store's meta
table) and come back after a restart; the home tariff comes from the
configuration each start. Costs are advanced by ``TransactionRecorder`` at
each meter reading.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING

from chargepoint.config.home import HomeConfig
from chargepoint.core.storage.store import meta_get, meta_set
from chargepoint.core.tariffs.tariff import Tariff, home_tariff
from chargepoint.core.tariffs.tariff_codec import tariffs_from_json, tariffs_json
from chargepoint.core.tariffs.tariff_cost import CurrencyChange, SessionCost

if TYPE_CHECKING:
    from chargepoint.core.connector import ConnectorState
    from chargepoint.core.storage.store import Store

log = logging.getLogger(__name__)

#: Where the default tariffs are kept (the store's meta table: name -> value).
TARIFFS_KEY = "default_tariffs"


class TariffChange(Enum):
    ACCEPTED = "accepted"
    NO_TRANSACTION = "no_transaction"
    CURRENCY = "currency"


def _load(store: Store) -> str | None:
    return meta_get(store, TARIFFS_KEY)


def _save(store: Store, text: str) -> None:
    meta_set(store, TARIFFS_KEY, text)


class TariffBook:
    """The tariffs in force at a station (see the module doc)."""

    def __init__(self, connectors: dict[int, ConnectorState], now: Callable[[], float],
                 home: HomeConfig | None = None) -> None:
        self._connectors = connectors
        self._now = now
        #: EVSE id (0: every EVSE) -> the default tariff a CSMS set.
        self.defaults: dict[int, Tariff] = {}
        #: The homeowner's tariff, and the same in solar mode pv (None: not configured).
        self.home: Tariff | None = None
        self.home_pv: Tariff | None = None
        if home is not None and home.price_per_kwh is not None:
            self.home = home_tariff(home.price_per_kwh, home.currency)
            if home.feed_in_price_per_kwh is not None:
                self.home_pv = home_tariff(home.feed_in_price_per_kwh, home.currency, "home-pv")
        #: Identifier -> the tariff the CSMS gave with its authorization (a driver tariff): it prices
        #: that identifier's next session, whatever the defaults.
        self.driver_tariffs: dict[str, Tariff] = {}
        #: Tariffs given for one driver or transaction (not defaults), by identity.
        self._given: list[Tariff] = []
        #: The solar mode now ("fast", "pv", "minpv"); the daemon gives the energy manager's.
        self.solar_mode: Callable[[], str] = lambda: "fast"
        self._store: Store | None = None

    async def attach(self, store: Store, solar_mode: Callable[[], str] | None = None) -> None:
        """Take back the default tariffs set before the restart; keep later changes there.
        ``solar_mode``: the energy manager's mode, where there is one."""
        self._store = store
        if solar_mode is not None:
            self.solar_mode = solar_mode
        text = await store.call(_load, store)
        if text:
            try:
                self.defaults = tariffs_from_json(text)
            except (ValueError, KeyError, TypeError) as exc:
                log.error("default tariffs in the state database cannot be read (%s); none in force", exc)

    def for_session(self, evse_id: int) -> Tariff | None:
        """The tariff a session beginning now on ``evse_id`` is priced by."""
        tariff = self.defaults.get(evse_id) or self.defaults.get(0)
        if tariff is not None:
            return tariff
        if self.home_pv is not None and self.solar_mode() == "pv":
            return self.home_pv
        return self.home

    def start_cost(self, evse_id: int, started_at: float, meter_start_wh: float,
                   id_token: str | None = None) -> SessionCost | None:
        """The cost of a session beginning now: under the identifier's driver tariff, else the default."""
        tariff = self.driver_tariffs.pop(id_token, None) if id_token is not None else None
        tariff = tariff or self.for_session(evse_id)
        return None if tariff is None else SessionCost(tariff, started_at, meter_start_wh)

    # -------------------------------------------------------- the CSMS's
    async def set_default(self, evse_id: int, tariff: Tariff) -> None:
        """``tariff`` is the default of ``evse_id`` (0: of every EVSE) from now on; durable on return.

        Sessions under way keep their tariff (a default prices the sessions that begin after it)."""
        self.defaults[evse_id] = tariff
        await self._persist()
        log.info("default tariff %s (%s) for %s", tariff.tariff_id, tariff.currency,
                 f"EVSE {evse_id}" if evse_id else "the station")

    async def clear(self, tariff_ids: list[str] | None, evse_id: int | None) -> list[tuple[int, str]]:
        """Remove default tariffs: those named (None: all), of ``evse_id`` (None: of any EVSE).
        Returns the (EVSE, tariff id) removed."""
        removed = [(evse, t.tariff_id) for evse, t in self.defaults.items()
                   if (tariff_ids is None or t.tariff_id in tariff_ids)
                   and (evse_id is None or evse == evse_id)]
        for evse, _ in removed:
            del self.defaults[evse]
        if removed:
            await self._persist()
        return removed

    def set_driver_tariff(self, id_token: str, tariff: Tariff) -> None:
        """``tariff`` prices the next session of ``id_token`` (given with its authorization)."""
        self.driver_tariffs[id_token] = tariff
        self._remember(tariff)
        log.info("driver tariff %s for %s's next session", tariff.tariff_id, id_token)

    def change_transaction_tariff(self, local_id: str, tariff: Tariff) -> TariffChange:
        """``tariff`` prices the rest of transaction ``local_id`` (what it used so far keeps its price)."""
        for c in self._connectors.values():
            tx = c.transaction
            if tx is None or tx.local_id != local_id or tx.stopping:
                continue
            if tx.cost is None:
                tx.cost = SessionCost(tariff, self._now(), c.last_reading.energy_import_wh
                                      if c.last_reading else tx.meter_start_wh)
                self._remember(tariff)
                return TariffChange.ACCEPTED
            if c.last_reading is not None:
                tx.cost.advance(self._now(), c.last_reading.energy_import_wh, charging=tx.charging)
            try:
                tx.cost.change_tariff(tariff, self._now())
            except CurrencyChange:
                return TariffChange.CURRENCY
            self._remember(tariff)
            log.info("transaction %s: tariff %s from now on", local_id, tariff.tariff_id)
            return TariffChange.ACCEPTED
        return TariffChange.NO_TRANSACTION

    def _remember(self, tariff: Tariff) -> None:
        """Note ``tariff`` as given for a driver or a transaction; those no longer in use are let go."""
        running = [c.transaction.cost.tariff for c in self._connectors.values()
                   if c.transaction is not None and c.transaction.cost]
        in_use = [*self.driver_tariffs.values(), *running]
        self._given = [t for t in self._given if any(t is u for u in in_use)] + [tariff]

    def is_driver_tariff(self, tariff: Tariff) -> bool:
        """``tariff`` was given for a driver or a transaction (not a default, not the home tariff)."""
        return any(t is tariff for t in self._given)

    def csms_cost_updated(self, local_id: str, total: Decimal) -> bool:
        """The CSMS's own total for transaction ``local_id`` so far; False: no such transaction runs."""
        for c in self._connectors.values():
            if c.transaction is not None and c.transaction.local_id == local_id:
                c.transaction.csms_cost = total
                log.info("transaction %s: the CSMS says %s so far", local_id, total)
                return True
        log.info("a cost for transaction %s, which does not run here: ignored", local_id)
        return False

    def transaction_tariffs(self) -> dict[str, Tariff]:
        """Transaction id -> the tariff pricing it now."""
        return {c.transaction.local_id: c.transaction.cost.tariff for c in self._connectors.values()
                if c.transaction is not None and c.transaction.cost is not None}

    async def _persist(self) -> None:
        if self._store is not None:
            await asyncio.wrap_future(self._store.submit(_save, self._store, tariffs_json(self.defaults)))
