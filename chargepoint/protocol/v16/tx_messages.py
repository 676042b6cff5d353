"""The outbox's neutral transaction events as 1.6 StartTransaction, MeterValues and StopTransaction.

A start becomes StartTransaction; the CSMS answers with its integer
transaction id, which the outbox keeps (as text) and every later message of
the transaction carries, also those queued before the answer. A meter sample
becomes MeterValues, a stop StopTransaction with the transaction's samples
(StopTxnSampledData / StopTxnAlignedData). A change of activity is not
queued in 1.6: StatusNotification says it. meterStart and meterStop are whole
Wh by the station's rule (``transactions.whole_wh``).

Each message is made once, before it is first sent (``Outbox.sent``): a resend
after a lost connection or a restart is the same text, byte for byte, even if
a setting it was made from has changed meanwhile.

Delivery is the one loop of every version (``protocol.common.delivery``); here are
1.6's words for it: a message of a transaction can be made once its start is
answered (its transaction id known), a StartTransaction's answer gives the id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp.v16 import call

from chargepoint.core.events import (
    ActivityChanged,
    MeterSample,
    ReadingContext,
    TransactionAuthorized,
    TransactionEvent,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Entry, Outbox, Sent
from chargepoint.core.transactions import whole_wh
from chargepoint.protocol.common.peer import wire_call
from chargepoint.protocol.common.timefmt import iso_utc
from chargepoint.protocol.v16 import translate

log = logging.getLogger(__name__)

#: The wire form this module makes (``Sent.form``).
FORM = "ocpp1.6"


class TransactionMessages:
    """1.6's words for the outbox's delivery loop (``DeliveryWords``)."""

    form = FORM

    def __init__(self, station: Station, outbox: Outbox, settings: Settings,
                 spawn: Callable[[Awaitable[Any]], None]) -> None:
        self.station = station
        self.outbox = outbox
        self.settings = settings
        #: Runs follow-up work as a task of the connection (cancelled with it).
        self._spawn = spawn

    def can_make(self, entry: Entry, in_flight: Entry | None) -> bool:
        """A start can always be made; any other message once its transaction id is known."""
        event = entry.event
        return isinstance(event, TransactionStarted) or self.outbox.remote_id(event.local_id) is not None

    def label(self, sent: Sent) -> str:
        return sent.action

    def wire_form(self, entry: Entry, in_flight: Entry | None = None) -> Sent | None:
        """``entry`` as the text its every send carries; None: nothing to send for it. (Nothing in
        a 1.6 message depends on the answer to the one before, once ``can_make`` says yes.)"""
        request = self.translate(entry)
        if request is None:
            return None
        wire = wire_call(request)
        return Sent(FORM, wire.action, wire.payload)

    def translate(self, entry: Entry) -> Any | None:
        event: TransactionEvent = entry.event
        if isinstance(event, TransactionStarted):
            # 1.6 begins transactions with an identifier (its adapter fixes the start points); one
            # begun by the EV alone under another version and delivered here after a change of
            # version is told with an empty idTag, its identifier being unknown at its start.
            return call.StartTransaction(
                connector_id=event.evse_id,
                id_tag=event.token.value if event.token else "",
                meter_start=whole_wh(event.meter_start_wh),
                timestamp=iso_utc(event.timestamp),
                reservation_id=event.reservation_id,
            )
        if isinstance(event, ActivityChanged | TransactionAuthorized):
            return None  # 1.6 says it in StatusNotification (not queued), or has no such message
        remote_id = self.outbox.remote_id(event.local_id)
        if remote_id is None:
            log.error("no CSMS transaction id for %s; dropping %s", event.local_id, type(event).__name__)
            return None
        transaction_id = int(remote_id)
        if isinstance(event, MeterSample):
            current = self.settings.current
            measurands = current.aligned_measurands if event.context == ReadingContext.CLOCK \
                else current.sampled_measurands
            return call.MeterValues(
                connector_id=event.evse_id,
                transaction_id=transaction_id,
                meter_value=[translate.meter_value(event, measurands)],
            )
        assert isinstance(event, TransactionStopped)
        return call.StopTransaction(
            meter_stop=whole_wh(event.meter_stop_wh),  # the station's rule for both ends
            timestamp=iso_utc(event.timestamp),
            transaction_id=transaction_id,
            reason=translate.stop_reason(event.reason).value,
            id_tag=event.token.value if event.token else None,
            transaction_data=self._transaction_data(event.samples) or None,
        )

    def _transaction_data(self, samples: tuple[MeterSample, ...]) -> list[dict[str, Any]]:
        """StopTxnSampledData for sampled readings, StopTxnAlignedData for clock-aligned ones."""
        sampled = self.settings.current.stop_tx_sampled_measurands
        aligned = self.settings.current.stop_tx_aligned_measurands
        data = []
        for sample in samples:
            clock = sample.context == ReadingContext.CLOCK
            value = translate.meter_value(sample, aligned if clock else sampled)
            if value["sampledValue"]:
                data.append(value)
        return data

    def on_result(self, entry: Entry, result: Any) -> str | None:
        """Act on the CSMS's answer; returns the transaction id a start was given."""
        event = entry.event
        if isinstance(event, TransactionStarted):
            transaction_id, info = _integer(result.transaction_id), translate.auth_result(result.id_tag_info)
            if event.token is not None:
                self._spawn(self.station.authorization.remember(event.token.value, info))
            log.info("transaction %s is %d at the CSMS", event.local_id, transaction_id)
            self.station.transaction_authorized(event.local_id, info)
            return str(transaction_id)
        if isinstance(event, TransactionStopped):
            if event.token and isinstance(result.id_tag_info, dict):
                self._spawn(self.station.authorization.remember(
                    event.token.value, translate.auth_result(result.id_tag_info)))
        return None


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
