"""The outbox's neutral transaction events as 2.0.1 TransactionEvent messages.

A start becomes ``Started``, a meter sample ``Updated``, a stop ``Ended``. The
transaction id is the station's own local id (2.0.1 lets the station make it),
so nothing waits for the CSMS to name a transaction, and messages queued
offline need no rewriting. A change of the transaction's activity becomes an
``Updated`` with trigger ChargingStateChanged (CablePluggedIn or EVCommunicationLost
when the EV came or left with it); an identifier presented during the transaction
(one begun by the EV alone, TxStartPoint EVConnected) an ``Updated`` with trigger
Authorized and the idToken, a driver's stop that leaves the transaction open until the
EV leaves (TxStopPoint EVConnected) one with StopAuthorized. A start says its start
point in its trigger: Authorized (or RemoteStart), CablePluggedIn (and no idToken
when no one is authorized yet), ChargingStateChanged for energy transfer.

Each message carries the transaction's ``seqNo``:
the number of its messages the CSMS has already answered, which the outbox
keeps on disk with each acknowledgement, so the numbers run on without gaps
across restarts and a message resent after a crash keeps its number.

Each message is made once, before it is first sent (``Outbox.sent``): a
resend after a lost connection or a restart is the same text, byte for byte,
with the ``offline`` flag it was first sent with. A transaction a RequestStartTransaction began
is ``RemoteStart`` with its ``remoteStartId`` whatever the identifier's kind; the id is the
transaction's own (kept on disk with it), so a Started sent after a reconnect or a restart names it.

Delivery is the one loop of every version (``protocol.common.delivery``: MessageAttempts and
MessageAttemptInterval are its ``tx_message_attempts`` and ``tx_message_retry_interval_s``); here
are 2.0.1's words for it. Every message can be made at once; one made while the message before
it is still on the wire is numbered as it will be once that one is answered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp.v201 import call
from ocpp.v201.enums import ChargingStateEnumType, TransactionEventEnumType, TriggerReasonEnumType

from chargepoint.core.events import (
    ActivityChanged,
    MeterSample,
    ReadingContext,
    StatusChanged,
    TokenType,
    TransactionAuthorized,
    TransactionStarted,
    TransactionStopped,
    TxPoint,
)
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Entry, Outbox, Sent
from chargepoint.protocol.common.peer import wire_call
from chargepoint.protocol.common.timefmt import iso_utc
from chargepoint.protocol.v201 import translate

log = logging.getLogger(__name__)

#: The wire form this module makes (``Sent.form``).
FORM = "ocpp2.0.1"


class TransactionEvents:
    """2.0.1's words for the outbox's delivery loop (``DeliveryWords``): TransactionEvents."""

    #: The wire form made here; 2.1's messages (``protocol.v21.tx_events``) are a form of their own.
    form = FORM

    def __init__(self, station: Station, outbox: Outbox, settings: Settings, connected_at: float,
                 spawn: Callable[[Awaitable[Any]], None]) -> None:
        self.station = station
        self.outbox = outbox
        self.settings = settings
        #: Runs follow-up work as a task of the connection (cancelled with it).
        self._spawn = spawn
        #: Events made before this connection opened were made offline (the ``offline`` flag).
        self.connected_at = connected_at

    def can_make(self, entry: Entry, in_flight: Entry | None) -> bool:
        return True  # the transaction id is the station's own, the seqNo counted here

    def wire_form(self, entry: Entry, in_flight: Entry | None = None) -> Sent:
        """``entry`` as the text its every send carries (made once: see the module doc)."""
        wire = wire_call(self.translate(entry, in_flight))
        return Sent(self.form, wire.action, wire.payload)

    def label(self, sent: Sent) -> str:
        """TransactionEvent Started, Updated or Ended: for a log line."""
        return f"TransactionEvent {json.loads(sent.payload).get('eventType', '?')}"

    # ------------------------------------------------------------ translation
    def translate(self, entry: Entry, in_flight: Entry | None = None) -> call.TransactionEvent:
        event = entry.event
        info: dict[str, Any] = {"transactionId": event.local_id}
        made_at = event.reading.timestamp if isinstance(event, MeterSample) else event.timestamp
        # seqNo: the transaction's messages answered, the one still on the wire counted as answered.
        ahead = in_flight is not None and in_flight.event.local_id == event.local_id
        common: dict[str, Any] = {"seq_no": self.outbox.answered(event.local_id) + ahead,
                                  "offline": True if made_at < self.connected_at else None}
        if isinstance(event, ActivityChanged):
            state = StatusChanged(event.evse_id, event.timestamp, activity=event.activity,
                                  plugged=event.plugged)
            info["chargingState"] = translate.charging_state(state).value
            trigger = {True: TriggerReasonEnumType.cable_plugged_in,
                       False: TriggerReasonEnumType.ev_communication_lost,
                       None: TriggerReasonEnumType.charging_state_changed}[event.ev_arrived]
            return call.TransactionEvent(
                event_type=TransactionEventEnumType.updated.value, timestamp=iso_utc(event.timestamp),
                trigger_reason=trigger.value, transaction_info=info, **common)
        if isinstance(event, TransactionAuthorized):
            if event.remote_start_id is not None:
                info["remoteStartId"] = event.remote_start_id
            trigger = {(True, False): TriggerReasonEnumType.authorized,
                       (True, True): TriggerReasonEnumType.remote_start,
                       (False, False): TriggerReasonEnumType.stop_authorized,
                       (False, True): TriggerReasonEnumType.remote_stop}[event.authorized, event.remote]
            return call.TransactionEvent(
                event_type=TransactionEventEnumType.updated.value, timestamp=iso_utc(event.timestamp),
                trigger_reason=trigger.value, transaction_info=info,
                id_token=translate.id_token(event.token) if event.token else None, **common)
        if isinstance(event, TransactionStarted):
            if event.remote_start_id is not None:
                info["remoteStartId"] = event.remote_start_id
            # What follows comes as ActivityChanged.
            info["chargingState"] = (ChargingStateEnumType.charging if event.point is TxPoint.ENERGY_TRANSFER
                                     else ChargingStateEnumType.ev_connected if event.plugged
                                     else ChargingStateEnumType.idle).value
            return call.TransactionEvent(
                event_type=TransactionEventEnumType.started.value,
                timestamp=iso_utc(event.timestamp),
                trigger_reason=_start_trigger(event).value,
                transaction_info=info,
                id_token=translate.id_token(event.token) if event.token else None,
                evse={"id": event.evse_id, "connectorId": event.connector_id},
                meter_value=[translate.energy_value(event.meter_start_wh, event.timestamp,
                                                    ReadingContext.TRANSACTION_BEGIN)],
                reservation_id=event.reservation_id,
                **common)
        if isinstance(event, MeterSample):
            current = self.settings.current
            measurands = current.aligned_measurands if event.context is ReadingContext.CLOCK \
                else current.sampled_measurands
            value = translate.meter_value(event, measurands)
            return call.TransactionEvent(
                event_type=TransactionEventEnumType.updated.value,
                timestamp=iso_utc(event.reading.timestamp),
                trigger_reason=translate.sample_trigger(event.context).value,
                transaction_info=info,
                meter_value=[value] if value["sampledValue"] else None,
                **common)
        assert isinstance(event, TransactionStopped)
        info["stoppedReason"] = translate.stopped_reason(event.reason).value
        return call.TransactionEvent(
            event_type=TransactionEventEnumType.ended.value,
            timestamp=iso_utc(event.timestamp),
            trigger_reason=translate.stop_trigger(event.reason).value,
            transaction_info=info,
            id_token=translate.id_token(event.token) if event.token else None,
            meter_value=self._ended_values(event) or None,
            **common)

    def _ended_values(self, event: TransactionStopped) -> list[dict[str, Any]]:
        """The transaction's own record in its Ended message (SampledDataTxEnded*), with the end reading
        even when none was configured: the CSMS bills from it."""
        sampled = self.settings.current.stop_tx_sampled_measurands or ["Energy.Active.Import.Register"]
        aligned = self.settings.current.stop_tx_aligned_measurands
        values = []
        for sample in event.samples:
            if sample.context is ReadingContext.TRANSACTION_BEGIN:
                continue  # its Started carried it
            clock = sample.context is ReadingContext.CLOCK
            value = translate.meter_value(sample, aligned if clock else sampled)
            if value["sampledValue"]:
                values.append(value)
        if not any(v["sampledValue"][0]["context"] == "Transaction.End" for v in values):
            values.append(translate.energy_value(event.meter_stop_wh, event.timestamp,
                                                 ReadingContext.TRANSACTION_END))
        return values

    def on_result(self, entry: Entry, result: Any) -> str | None:
        """The CSMS's word on the identifier, when it gave one; a start's id is the station's own."""
        event = entry.event
        self._verdict(entry, result)
        return event.local_id if isinstance(event, TransactionStarted) else None

    def _verdict(self, entry: Entry, result: Any) -> None:
        event = entry.event
        info = getattr(result, "id_token_info", None)
        if not isinstance(info, dict) or isinstance(event, MeterSample | ActivityChanged):
            return
        verdict = translate.auth_result(info)
        token = event.token
        if token is None or isinstance(event, TransactionAuthorized) and not event.authorized:
            return  # no identifier, or one that ended its authorization: nothing to decide on
        self._spawn(self.station.authorization.remember(token.value, verdict))
        if isinstance(event, TransactionStarted | TransactionAuthorized):
            self.station.transaction_authorized(event.local_id, verdict)


def _start_trigger(event: TransactionStarted) -> TriggerReasonEnumType:
    """Why a transaction began, as its Started says: the start point that was met."""
    # Remote whatever the identifier's kind (a card named in a RequestStartTransaction too);
    # a Central one queued by an earlier release carries no request id.
    if event.remote_start_id is not None or event.token is not None and event.token.type is TokenType.CENTRAL:
        return TriggerReasonEnumType.remote_start
    if event.point is TxPoint.EV_CONNECTED:
        return TriggerReasonEnumType.cable_plugged_in
    if event.point is TxPoint.ENERGY_TRANSFER:
        return TriggerReasonEnumType.charging_state_changed
    return TriggerReasonEnumType.authorized

