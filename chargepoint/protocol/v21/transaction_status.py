"""GetTransactionStatus: whether a transaction still runs and whether its messages still wait.

Answered from the station's own record: the transactions running now and the
outbox, whose queue holds every transaction message not yet acknowledged by a
CSMS (a CSMS that lost track after an outage asks before it bills).
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v21 import call_result
from ocpp.v21.enums import Action

from chargepoint.protocol.common.block import Block, BlockContext


class TransactionStatusHandlers(Block[BlockContext]):
    """The 2.1 block that answers GetTransactionStatus."""

    @on(Action.get_transaction_status, skip_schema_validation=True)
    def on_get_transaction_status(self, transaction_id: str | None = None, **_: Any) -> Any:
        queued = [entry.event.local_id for entry in self.context.outbox.entries()]
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=bool(queued))
        running = any(tx.local_id == transaction_id and not tx.stopping
                      for _, tx in self.context.station.active_transactions())
        return call_result.GetTransactionStatus(messages_in_queue=transaction_id in queued,
                                                ongoing_indicator=running)
