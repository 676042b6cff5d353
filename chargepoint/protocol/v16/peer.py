"""The 1.6 handlers: the CSMS's CALLs, answered at once in 1.6 terms.

Each handler translates the payload into a station command and the result
back; nothing here decides anything. Follow-up work (the restart after Reset)
runs after the answer has gone. Schema failures get the 1.6 error code of the
rule that failed (FormationViolation, PropertyConstraintViolation,
TypeConstraintViolation, OccurenceConstraintViolation), an action 1.6 defines
but the station does not implement is NotSupported and an unknown action
NotImplemented.
"""

from __future__ import annotations

from typing import Any, Protocol

from ocpp.exceptions import (
    FormationViolationError,
    NotImplementedError,
    NotSupportedError,
    OccurenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as LibChargePoint
from ocpp.v16 import call_result
from ocpp.v16.enums import (
    Action,
    AvailabilityStatus,
    AvailabilityType,
    ClearCacheStatus,
    DataTransferStatus,
    ResetStatus,
    UnlockStatus,
    UpdateStatus,
    UpdateType,
)

from chargepoint.core.authorization import Entry as ListEntry
from chargepoint.core.commands import AvailabilityChange, UnlockResult
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Outbox
from chargepoint.protocol.common.errors import schema_error
from chargepoint.protocol.common.peer import RobustPeer, brief
from chargepoint.protocol.v16.keys import SECRET_KEYS, KeyCatalogue
from chargepoint.protocol.v16.translate import auth_result

#: jsonschema rule that failed -> the 1.6 error code for it.
SCHEMA_ERRORS: dict[str, type[OCPPError]] = {
    "type": TypeConstraintViolationError,
    "maxLength": TypeConstraintViolationError,
    "required": OccurenceConstraintViolationError,
    "minItems": OccurenceConstraintViolationError,
    "maxItems": OccurenceConstraintViolationError,
    "additionalProperties": FormationViolationError,
    "enum": PropertyConstraintViolationError,
    "minimum": PropertyConstraintViolationError,
    "maximum": PropertyConstraintViolationError,
    "pattern": PropertyConstraintViolationError,
    "format": PropertyConstraintViolationError,
    "multipleOf": PropertyConstraintViolationError,
}
#: Actions whose numbers the library validates as Decimal (precision rules).
DECIMAL_ACTIONS = ("SetChargingProfile", "RemoteStartTransaction")

_AVAILABILITY = {AvailabilityChange.ACCEPTED: AvailabilityStatus.accepted,
                 AvailabilityChange.SCHEDULED: AvailabilityStatus.scheduled,
                 AvailabilityChange.REJECTED: AvailabilityStatus.rejected}
_UNLOCK = {UnlockResult.UNLOCKED: UnlockStatus.unlocked, UnlockResult.FAILED: UnlockStatus.unlock_failed,
           UnlockResult.NO_LOCK: UnlockStatus.not_supported,
           UnlockResult.UNKNOWN_CONNECTOR: UnlockStatus.not_supported}
_LIST_UPDATE = {"accepted": UpdateStatus.accepted, "failed": UpdateStatus.failed,
                "version_mismatch": UpdateStatus.version_mismatch}


def schema_error_16(action: str, payload: Any) -> OCPPError | None:
    """The 1.6 CALLERROR for a CALL payload that breaks its schema, or None."""
    return schema_error(action, payload, "1.6", SCHEMA_ERRORS, FormationViolationError,
                        decimal=action in DECIMAL_ACTIONS)


class Adapter(Protocol):
    """What the handlers ask of the 1.6 adapter (``adapter.V16Adapter``)."""

    station: Station
    outbox: Outbox
    keys: KeyCatalogue

    def remote_start(self, id_tag: str, connector_id: int | None, charging_profile: dict | None) -> str: ...
    def remote_stop(self, transaction_id: int) -> str: ...
    def get_configuration(self, keys: list[str] | None) -> Any: ...
    def incoming_data_transfer(self, vendor_id: str, message_id: str | None,
                               data: str | None) -> tuple[str, str | None]: ...
    def schedule_reset(self, kind: str) -> None: ...


class Peer16(RobustPeer, LibChargePoint):
    """The library's 1.6 charge point with 1.6-correct errors; the Core profile's handlers, which
    delegate to the adapter.

    The Smart Charging, Reservation, RemoteTrigger and Firmware Management profiles and the
    security extension are blocks of their own that the adapter routes here
    (``adapter.V16Adapter.block_types``)."""

    call_results = call_result
    secret_names = SECRET_KEYS

    def __init__(self, identity: str, ws: Any, adapter: Adapter, response_timeout: float) -> None:
        super().__init__(identity, ws, response_timeout=response_timeout)
        self.adapter = adapter

    async def _handle_call(self, msg: Call) -> Any:
        """CALLERRORs for what the library would not answer rightly; their descriptions are
        capped (a schema failure quotes the value, which may be megabytes). The library
        answers them, and ``LibraryLog`` writes the one line."""
        if msg.action not in self.route_map:
            try:
                Action(msg.action)
            except ValueError:
                raise NotImplementedError(
                    description=f"{brief(msg.action, 60)} is not an OCPP 1.6 action", details={}) from None
            raise NotSupportedError(
                description=f"{msg.action} is not supported by this charge point", details={})
        error = schema_error_16(msg.action, msg.payload)
        if error is not None:
            error.description = brief(error.description)
            self.invalid(f"{msg.action}: {error.code}")
            raise error
        return await super()._handle_call(msg)

    # ---- handlers: answers at once; follow-up work is scheduled ----
    @on(Action.remote_start_transaction, skip_schema_validation=True)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                        charging_profile: dict | None = None) -> Any:
        return call_result.RemoteStartTransaction(
            status=self.adapter.remote_start(id_tag, connector_id, charging_profile))

    @on(Action.remote_stop_transaction, skip_schema_validation=True)
    def on_remote_stop(self, transaction_id: int) -> Any:
        return call_result.RemoteStopTransaction(status=self.adapter.remote_stop(transaction_id))

    @on(Action.change_availability, skip_schema_validation=True)
    def on_change_availability(self, connector_id: int, type: str) -> Any:
        operative = type == AvailabilityType.operative
        result = self.adapter.station.change_availability(connector_id, operative)
        return call_result.ChangeAvailability(status=_AVAILABILITY[result])

    @on(Action.change_configuration, skip_schema_validation=True)
    def on_change_configuration(self, key: str, value: str) -> Any:
        return call_result.ChangeConfiguration(status=self.adapter.keys.change(key, value).value)

    @on(Action.get_configuration, skip_schema_validation=True)
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        return self.adapter.get_configuration(key)

    @on(Action.clear_cache, skip_schema_validation=True)
    async def on_clear_cache(self) -> Any:
        await self.adapter.station.authorization.clear_cache()
        return call_result.ClearCache(status=ClearCacheStatus.accepted)

    @on(Action.get_local_list_version, skip_schema_validation=True)
    def on_get_local_list_version(self) -> Any:
        return call_result.GetLocalListVersion(
            list_version=self.adapter.station.authorization.list_version)

    @on(Action.send_local_list, skip_schema_validation=True)
    async def on_send_local_list(self, list_version: int, update_type: str,
                                 local_authorization_list: list[dict] | None = None) -> Any:
        entries = [(item["id_tag"], _list_entry(item.get("id_tag_info")))
                   for item in local_authorization_list or []]
        status = await self.adapter.station.authorization.update_list(
            list_version, update_type == UpdateType.full, entries)
        return call_result.SendLocalList(status=_LIST_UPDATE[status.value])

    @on(Action.data_transfer, skip_schema_validation=True)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None,
                         data: str | None = None) -> Any:
        status, reply = self.adapter.incoming_data_transfer(vendor_id, message_id, data)
        return call_result.DataTransfer(status=DataTransferStatus(status), data=reply)

    @on(Action.reset, skip_schema_validation=True)
    def on_reset(self, type: str) -> Any:
        return call_result.Reset(status=ResetStatus.accepted)

    @after(Action.reset)
    def after_reset(self, type: str) -> None:
        self.adapter.schedule_reset(type)

    @on(Action.unlock_connector, skip_schema_validation=True)
    async def on_unlock_connector(self, connector_id: int) -> Any:
        # Awaited here, but in the CALL's own task (see RobustPeer): the frame
        # reader goes on reading answers while a transaction is stopped first.
        result = await self.adapter.station.unlock(connector_id)
        return call_result.UnlockConnector(status=_UNLOCK[result])


def _list_entry(info: dict[str, Any] | None) -> ListEntry | None:
    """A local list entry from an IdTagInfo; None (no info) removes the id."""
    if info is None:
        return None
    result = auth_result(info)
    return ListEntry(result.status, result.expiry, result.group_id)
