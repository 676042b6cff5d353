"""The 1.6 RemoteTrigger profile: TriggerMessage, answered at once, the message sent after.

The CSMS asks for a message now instead of waiting for the station to send it
when due. The answer is Accepted or Rejected at once; the requested message is
built from the station's state when it leaves, after the answer (the ``@after``
hook hands it to a task of the adapter: a handler that awaited a CALL of its
own would hold up every CALL behind it).

connectorId, where 1.6 gives it a meaning: StatusNotification for one
connector, for connector 0 (the station) or, without it, for the station and
every connector; MeterValues of one connector or, without it, of every
connector with a reading. A connector the station does not have is Rejected,
for every requested message. MeterValues for connector 0 (a main meter) and
for a connector with no meter reading yet are Rejected: there is nothing true
to send. The other messages are the station's as a whole.
"""

from __future__ import annotations

from typing import Any, Protocol

from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (
    Action,
    DiagnosticsStatus,
    FirmwareStatus,
    MessageTrigger,
    RegistrationStatus,
    TriggerMessageStatus,
)

from chargepoint.core.events import MeterSample, ReadingContext, StatusChanged
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Outbox
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.v16 import firmware, translate

#: Measurands of a triggered MeterValues when MeterValuesSampledData is empty (1.6's default one).
DEFAULT_MEASURANDS = ["Energy.Active.Import.Register"]


class Target(Protocol):
    """What a trigger needs of the 1.6 adapter (``adapter.V16Adapter``)."""

    station: Station
    settings: Settings
    outbox: Outbox

    def boot_request(self) -> Any: ...
    def boot_accepted(self, result: Any) -> None: ...
    def status_request(self, status: StatusChanged) -> Any: ...
    def send_triggered(self, request: Any, then: Any = None) -> None: ...


def connectors_for(target: Target, requested: str, connector_id: int | None) -> list[int] | None:
    """The connectors the requested message is about ([] for the station's own messages), or
    None when it cannot be sent (Rejected)."""
    station = target.station
    if connector_id is not None and connector_id != 0 and connector_id not in station.connectors:
        return None
    if requested == MessageTrigger.status_notification:
        return [0, *station.connectors] if connector_id is None else [connector_id]
    if requested == MessageTrigger.meter_values:
        wanted = list(station.connectors) if connector_id is None else [connector_id]
        with_reading = [e for e in wanted if e != 0 and station.view(e).last_reading is not None]
        if not with_reading or (connector_id is not None and with_reading != wanted):
            return None
        return with_reading
    return []


def requests(target: Target, requested: str, connectors: list[int]) -> list[tuple[Any, Any]]:
    """The CALLs that say what was asked for, from the state now, each with what to do with its answer."""
    if requested == MessageTrigger.boot_notification:
        return [(target.boot_request(), lambda result: _booted(target, result))]
    if requested == MessageTrigger.heartbeat:
        return [(call.Heartbeat(), None)]
    if requested == MessageTrigger.diagnostics_status_notification:
        diagnostics = target.services.diagnostics  # None: no upload set up, so none runs: idle, truly
        if diagnostics is None:
            return [(call.DiagnosticsStatusNotification(status=DiagnosticsStatus.idle), None)]
        return [(firmware.diagnostics_notification(diagnostics.activity()), None)]
    if requested == MessageTrigger.firmware_status_notification:
        manager = target.services.firmware
        if manager is None:
            return [(call.FirmwareStatusNotification(status=FirmwareStatus.idle), None)]
        return [(firmware.firmware_notification(manager.activity(), triggered=True), None)]
    if requested == MessageTrigger.status_notification:
        return [(target.status_request(target.station.status_of(e)), None) for e in connectors]
    return [(_meter_values(target, e), None) for e in connectors]


def _meter_values(target: Target, evse_id: int) -> Any:
    """The connector's newest reading (the meter is polled continuously), of the sampled measurands,
    with the transaction it belongs to when one runs and the CSMS has its id."""
    view = target.station.view(evse_id)
    reading = view.last_reading
    assert reading is not None  # connectors_for checked
    tx = view.session.transaction if view.session is not None else None
    sample = MeterSample(evse_id, tx.local_id if tx else "", reading, ReadingContext.TRIGGER,
                         view.evse.offered_a if view.evse is not None else None, view.connector_id)
    remote_id = target.outbox.remote_id(tx.local_id) if tx is not None else None
    measurands = target.settings.current.sampled_measurands or DEFAULT_MEASURANDS
    return call.MeterValues(connector_id=evse_id, meter_value=[translate.meter_value(sample, measurands)],
                            transaction_id=int(remote_id) if remote_id is not None else None)


def _booted(target: Target, result: Any) -> None:
    """A triggered BootNotification's answer: Accepted registers the station (also one whose own
    BootNotification was answered Pending) and its interval applies, as at boot."""
    if result.status == RegistrationStatus.accepted:
        target.boot_accepted(result)


class TriggerHandlers(Block[BlockContext]):
    """The RemoteTrigger profile's block (TriggerMessage), routed to the 1.6 peer by the adapter."""


    @on(Action.trigger_message, skip_schema_validation=True)
    def on_trigger_message(self, requested_message: str, connector_id: int | None = None) -> Any:
        if requested_message not in _IMPLEMENTED:
            status = TriggerMessageStatus.not_implemented
        elif connectors_for(self.context, requested_message, connector_id) is None:
            status = TriggerMessageStatus.rejected
        else:
            status = TriggerMessageStatus.accepted
        return call_result.TriggerMessage(status=status)

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, connector_id: int | None = None) -> None:
        if requested_message not in _IMPLEMENTED:
            return
        connectors = connectors_for(self.context, requested_message, connector_id)
        if connectors is None:
            return
        for request, then in requests(self.context, requested_message, connectors):
            self.context.send_triggered(request, then)


#: The requested messages of the 1.6 core schema (the security extension adds others).
_IMPLEMENTED = {MessageTrigger.boot_notification, MessageTrigger.diagnostics_status_notification,
                MessageTrigger.firmware_status_notification, MessageTrigger.heartbeat,
                MessageTrigger.meter_values, MessageTrigger.status_notification}
