"""The operator's own current limit per connector, set at run time and kept across restarts.

An installer caps a connector below its rating (a weak supply line, a shared
fuse, a tariff) with ``chargepoint limit``; the cap is the ``operator`` claim
in the connector's limits, so it binds together with the cable, the station's
rating and smart charging, and the status says which one binds. It is written
to the state database before the command is answered.
"""

from __future__ import annotations

import logging

from chargepoint.core.energy import limit_store
from chargepoint.core.station import Station
from chargepoint.core.storage.store import Store
from chargepoint.safety.iec61851 import MAX_PWM_CURRENT_A

log = logging.getLogger(__name__)

#: The claim this module owns in every connector's limits.
CLAIM = "operator"


class OperatorLimits:
    """The ``operator`` claims of one station."""

    def __init__(self, station: Station) -> None:
        self.station = station
        self.store: Store | None = None

    async def attach(self, store: Store) -> None:
        """Take back the limits set before the restart."""
        self.store = store
        for evse_id, amps in (await store.call(limit_store.load_operator_limits, store)).items():
            if evse_id in self.station.connectors:
                self.station.hardware(evse_id).limits.set(CLAIM, amps)

    @staticmethod
    def refusal(amps: float | None) -> str | None:
        if amps is not None and not 0 <= amps <= MAX_PWM_CURRENT_A:
            return f"the limit must be 0 to {MAX_PWM_CURRENT_A:g} A (below 6 A the connector pauses)"
        return None

    def get(self, evse_id: int) -> float | None:
        return self.station.hardware(evse_id).limits.get(CLAIM)

    async def set(self, evse_ids: list[int], amps: float | None) -> None:
        """Set (None: clear) the limit of ``evse_ids``; returns once it is durable."""
        reason = self.refusal(amps)
        if reason is not None:
            raise ValueError(reason)
        for evse_id in evse_ids:
            self.station.hardware(evse_id).limits.set(CLAIM, amps)
            log.info("connector %d: operator limit %s", evse_id, "cleared" if amps is None else f"{amps:g} A")
        if self.store is not None:  # one change for all of them, also across a kill
            await self.store.call(limit_store.save_operator_limits, self.store, list(evse_ids), amps)
