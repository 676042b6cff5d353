"""Each session's energy from the sun, and its cost at the end, kept for the history.

The session history (the store's ``sessions`` table) has the meter's energy of
each session; a homeowner with PV also wants to know how much of it came from
the sun and what it cost. The energy manager counts, at each grid reading, what
the station draws beyond what the house connection imports: that came from the
sun (``EnergyManager.solar_wh_by``, per connector). This ledger takes that
counter at the start of each session and again at its end; the difference is
the session's solar energy. The cost is the tariff engine's (``tariff_cost.py``,
advanced by the transaction recorder): the last one seen while the session ran
is kept with it (at most one grid reading old). Both go to the state database
(the store's meta table, the newest ``KEPT`` sessions) when the session ends, so
the history shows them after a restart too; a session cut by a restart keeps the
sun it had counted until then.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chargepoint.core.storage.store import meta_get, meta_set

if TYPE_CHECKING:
    from chargepoint.core.storage.store import Store

#: Where finished sessions' figures are kept (the store's meta table: name -> JSON).
LEDGER_KEY = "session_energy"
#: As many as the history keeps.
KEPT = 1000


@dataclass(frozen=True)
class RunningSession:
    """A connector's session as the ledger sees it: the transaction's id and its cost so far."""

    local_id: str
    #: The tariff engine's summary as ``tariff_codec.cost_json`` writes it; None without a tariff.
    cost: str | None


class SessionLedger:
    """Solar energy and final cost per session (see the module doc)."""

    def __init__(self) -> None:
        #: Connector -> (session id, the connector's solar counter at the session's start).
        self.running: dict[int, tuple[str, float]] = {}
        self._cost: dict[str, str | None] = {}
        #: Session id -> {"solar_wh": ..., "cost": cost JSON text or None}, oldest first.
        self.finished: dict[str, dict[str, Any]] = {}
        self.store: Store | None = None

    async def attach(self, store: Store) -> None:
        self.store = store
        self.finished = await store.call(_load, store)

    def update(self, sessions: Mapping[int, RunningSession | None], solar_wh: Mapping[int, float]) -> None:
        """Note each connector's session now, with the connector's solar counter (Wh)."""
        ended = False
        for evse_id, now in sessions.items():
            before = self.running.get(evse_id)
            if before is not None and (now is None or now.local_id != before[0]):
                self._finish(before[0], solar_wh.get(evse_id, 0.0) - before[1])
                del self.running[evse_id]
                ended = True
            if now is not None:
                if evse_id not in self.running:
                    self.running[evse_id] = (now.local_id, solar_wh.get(evse_id, 0.0))
                self._cost[now.local_id] = now.cost
        if ended and self.store is not None:
            self.store.submit(_save, self.store, dict(self.finished))

    def solar_wh(self, evse_id: int, solar_wh: Mapping[int, float]) -> float | None:
        """The sun's energy in the connector's running session so far (None: no session)."""
        start = self.running.get(evse_id)
        return None if start is None else max(0.0, solar_wh.get(evse_id, 0.0) - start[1])

    def of(self, local_id: str) -> dict[str, Any] | None:
        """A finished session's figures, or None if the ledger has none."""
        return self.finished.get(local_id)

    def _finish(self, local_id: str, solar_wh: float) -> None:
        cost = self._cost.pop(local_id, None)
        self.finished[local_id] = {"solar_wh": round(max(0.0, solar_wh), 1), "cost": cost}
        while len(self.finished) > KEPT:
            del self.finished[next(iter(self.finished))]


def solar_share(solar_wh: float | None, energy_wh: float | None) -> float | None:
    """The sun's share of a session's energy (0..1), None when either is unknown or nothing was charged."""
    if solar_wh is None or not energy_wh or energy_wh <= 0:
        return None
    return round(min(1.0, solar_wh / energy_wh), 3)


# ------------------------------------------------- database (store thread)
def _load(store: Store) -> dict[str, dict[str, Any]]:
    text = meta_get(store, LEDGER_KEY)
    return {} if text is None else dict(json.loads(text))


def _save(store: Store, finished: dict[str, dict[str, Any]]) -> None:
    meta_set(store, LEDGER_KEY, json.dumps(finished, separators=(",", ":")))
