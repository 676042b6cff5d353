"""OCPP 2.1 adapter: one connected session of the station core spoken in 2.1.

The 2.0.1 adapter (``protocol.v201.adapter.V201Adapter``: boot, heartbeat,
status, transactions, remote control, availability, smart charging,
reservations, triggers, firmware and logs, security, display messages) with
2.1's peer and transaction messages; what 2.1 adds is in the peer's mixins,
and the pulls of dynamic limits run as a task of the connection.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chargepoint.protocol.v21 import VERSION
from chargepoint.protocol.v21.dynamic import DynamicPuller
from chargepoint.protocol.v21.peer import V21Peer
from chargepoint.protocol.v21.tx_events import V21TransactionEvents
from chargepoint.protocol.v201.adapter import V201Adapter


class V21Adapter(V201Adapter):
    """One connected session of OCPP 2.1."""

    version = VERSION
    peer_class = V21Peer
    transactions_class = V21TransactionEvents

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Set when a dynamic profile to pull was installed (the puller looks again at once).
        self.dynamic_changed = asyncio.Event()

    async def run(self) -> None:
        self._spawn(self._pull_dynamic_limits())
        await super().run()

    async def _pull_dynamic_limits(self) -> None:
        await self.accepted.wait()
        await DynamicPuller(self.station, self.clock, self._call, self.dynamic_changed).run()
