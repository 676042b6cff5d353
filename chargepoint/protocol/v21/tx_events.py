"""The outbox's transaction events as 2.1 TransactionEvents: 2.0.1's, with the session's cost.

2.1's TransactionEvent is 2.0.1's with more optional parts; the translation
is 2.0.1's (``protocol.v201.tx_events``), made into the library's 2.1 message
and sent as the wire form ``ocpp2.1``, so a message queued while a CSMS of
another version was connected is made again in 2.1 words before it is first
sent to a 2.1 CSMS (and one already sent in 2.1 goes again byte for byte).
The Ended message carries the cost the station computed
(``costDetails``: the charging periods per tariff, the totals per part with
and without taxes, the energy and times used), kept with the stop in the
outbox so that it is right after a restart too; each periodic Updated
carries the cost so far, as of its reading. A running total the CSMS
gives in its answer is kept beside the station's own, as CostUpdated's is.
"""

from __future__ import annotations

from typing import Any

from ocpp.v21 import call

from chargepoint.core.events import MeterSample, TransactionStopped
from chargepoint.core.storage.outbox import Entry
from chargepoint.core.tariffs.tariff_codec import cost_from_json
from chargepoint.protocol.v21.tariff_words import cost_details, decimal
from chargepoint.protocol.v201.tx_events import TransactionEvents

#: The wire form this module makes (``Sent.form``).
FORM = "ocpp2.1"


class V21TransactionEvents(TransactionEvents):
    """Drains the outbox as 2.1 TransactionEvents on one connection."""

    form = FORM

    def on_result(self, entry: Entry, result: Any) -> str | None:
        """2.0.1's, and the running total the CSMS may give in its answer (its own figure, shown beside
        the station's as for CostUpdated)."""
        remote_id = super().on_result(entry, result)
        total = getattr(result, "total_cost", None)
        if total is not None and not isinstance(entry.event, TransactionStopped):
            self.station.tariffs.csms_cost_updated(entry.event.local_id, decimal(total))
        return remote_id

    def translate(self, entry: Entry, in_flight: Entry | None = None) -> Any:
        fields = vars(super().translate(entry, in_flight))
        event = entry.event
        if isinstance(event, TransactionStopped | MeterSample) and event.cost:
            fields["cost_details"] = cost_details(cost_from_json(event.cost))
        return call.TransactionEvent(**fields)
