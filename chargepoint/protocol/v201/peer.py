"""The 2.0.1 handlers: the CSMS's CALLs, answered at once in 2.0.1 terms.

Each handler translates the payload into a station command (through the
adapter, ``adapter.V201Adapter``) and the result back; nothing here decides
anything. Follow-up work (the restart after Reset, the message a
TriggerMessage asks for) runs after the answer has gone. Schema failures get
the 2.0.1 error code of the rule that failed (FormatViolation,
PropertyConstraintViolation, TypeConstraintViolation,
OccurrenceConstraintViolation); an action 2.0.1 defines but the station does
not implement is NotSupported, an unknown action NotImplemented. Before the
CSMS has accepted the BootNotification only what the specification allows a
Pending station to be asked is handled (also while the answer has not come:
the CSMS may ask before the station has read it); everything else is a
SecurityError.

Here are the Core handlers; each other functional block is an object of its
own over a typed context (``common/block.py``): provisioning and reports over
the device model (``provisioning``), the monitors of the N block
(``monitoring``), smart charging, reservations, security, firmware and logs,
display messages. The adapter builds them and routes their CALLs here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Protocol

from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError,
    NotSupportedError,
    OccurrenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    SecurityError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call
from ocpp.routing import after, on
from ocpp.v201 import ChargePoint as LibChargePoint
from ocpp.v201 import call_result
from ocpp.v201.enums import (
    Action,
    ClearCacheStatusEnumType,
    RegistrationStatusEnumType,
    SendLocalListStatusEnumType,
    UpdateEnumType,
)

from chargepoint.core.authorization import Entry as ListEntry
from chargepoint.protocol.common.block import BlockContext
from chargepoint.protocol.common.errors import schema_error
from chargepoint.protocol.common.peer import RobustPeer, brief
from chargepoint.protocol.v201 import VERSION
from chargepoint.protocol.v201.security import after_security_trigger, security_trigger
from chargepoint.protocol.v201.translate import auth_result

#: jsonschema rule that failed -> the 2.0.1 error code for it.
SCHEMA_ERRORS: dict[str, type[OCPPError]] = {
    "type": TypeConstraintViolationError,
    "maxLength": PropertyConstraintViolationError,
    "required": OccurrenceConstraintViolationError,
    "minItems": OccurrenceConstraintViolationError,
    "maxItems": OccurrenceConstraintViolationError,
    "additionalProperties": FormatViolationError,
    "enum": PropertyConstraintViolationError,
    "minimum": PropertyConstraintViolationError,
    "maximum": PropertyConstraintViolationError,
    "pattern": PropertyConstraintViolationError,
    "format": PropertyConstraintViolationError,
    "multipleOf": PropertyConstraintViolationError,
}

#: The device model's actions (``provisioning.ProvisioningHandlers``).
PROVISIONING = ("GetVariables", "SetVariables", "GetBaseReport", "SetNetworkProfile")
#: What a CSMS may ask of a station whose BootNotification it has answered Pending.
ALLOWED_WHILE_PENDING = (*PROVISIONING, "GetReport", "TriggerMessage")

_LIST_UPDATE = {"accepted": SendLocalListStatusEnumType.accepted,
                "failed": SendLocalListStatusEnumType.failed,
                "version_mismatch": SendLocalListStatusEnumType.version_mismatch}


def schema_error_201(action: str, payload: Any) -> OCPPError | None:
    """The 2.0.1 CALLERROR for a CALL payload that breaks its schema, or None."""
    return schema_error(action, payload, VERSION, SCHEMA_ERRORS, FormatViolationError)


class Adapter(BlockContext, Protocol):
    """What the Core handlers ask of the 2.0.1 adapter (``adapter.V201Adapter``)."""

    registration: str | None

    def request_start(self, id_token: dict, remote_start_id: int, evse_id: int | None,
                      charging_profile: dict | None = None) -> Any: ...
    def request_stop(self, transaction_id: str) -> Any: ...
    def change_availability(self, operational_status: str, evse: dict | None) -> Any: ...
    def reset(self, kind: str, evse_id: int | None) -> Any: ...
    def after_reset(self, kind: str, evse_id: int | None) -> None: ...
    async def unlock(self, evse_id: int, connector_id: int) -> Any: ...
    def trigger(self, requested: str, evse: dict | None) -> Any: ...
    def after_trigger(self, requested: str, evse: dict | None) -> None: ...
    def incoming_data_transfer(self, vendor_id: str, message_id: str | None, data: Any) -> Any: ...


class RobustV201Peer(RobustPeer, LibChargePoint):
    """The library's 2.0.1 charge point with 2.0.1-correct errors; handlers delegate to the adapter."""

    call_results = call_result
    #: The version whose schemas and actions the CALLs are checked against: 2.1 builds on this
    #: peer (``protocol.v21``) and sets its own, with the library's 2.1 modules.
    ocpp_version: str = VERSION
    actions: type[StrEnum] = Action

    def __init__(self, identity: str, ws: Any, adapter: Adapter, response_timeout: float) -> None:
        super().__init__(identity, ws, response_timeout=response_timeout)
        self.adapter = adapter

    async def _handle_call(self, msg: Call) -> Any:
        """CALLERRORs for what the library would not answer rightly; descriptions capped."""
        if msg.action not in self.route_map:
            try:
                self.actions(msg.action)
            except ValueError:
                raise NotImplementedError(description=f"{brief(msg.action, 60)} is not an OCPP "
                                                      f"{self.ocpp_version} action", details={}) from None
            raise NotSupportedError(
                description=f"{msg.action} is not supported by this charging station", details={})
        registration = self.adapter.registration
        waiting = registration in (None, RegistrationStatusEnumType.pending)
        if registration != RegistrationStatusEnumType.accepted and not (
                waiting and msg.action in ALLOWED_WHILE_PENDING):
            raise SecurityError(description=f"{msg.action} before the BootNotification was accepted "
                                            f"({registration or 'not answered'})",
                                details={})
        error = schema_error(msg.action, msg.payload, self.ocpp_version, SCHEMA_ERRORS,
                             FormatViolationError)
        if error is not None:
            error.description = brief(error.description)
            raise error
        return await super()._handle_call(msg)


class V201Peer(RobustV201Peer):
    """The station's 2.0.1 peer: the Core handlers of the station. The other blocks are objects
    of their own that the adapter routes here (``adapter.V201Adapter.block_types``)."""

    # ---- handlers: answers at once; follow-up work is scheduled ----
    @on(Action.request_start_transaction, skip_schema_validation=True)
    def on_request_start(self, id_token: dict, remote_start_id: int, evse_id: int | None = None,
                         charging_profile: dict | None = None, **_: Any) -> Any:
        return self.adapter.request_start(id_token, remote_start_id, evse_id, charging_profile)

    @on(Action.request_stop_transaction, skip_schema_validation=True)
    def on_request_stop(self, transaction_id: str, **_: Any) -> Any:
        return self.adapter.request_stop(transaction_id)

    @on(Action.change_availability, skip_schema_validation=True)
    def on_change_availability(self, operational_status: str, evse: dict | None = None, **_: Any) -> Any:
        return self.adapter.change_availability(operational_status, evse)

    @on(Action.clear_cache, skip_schema_validation=True)
    async def on_clear_cache(self, **_: Any) -> Any:
        await self.adapter.station.authorization.clear_cache()
        return call_result.ClearCache(status=ClearCacheStatusEnumType.accepted)

    @on(Action.get_local_list_version, skip_schema_validation=True)
    def on_get_local_list_version(self, **_: Any) -> Any:
        return call_result.GetLocalListVersion(
            version_number=self.adapter.station.authorization.list_version)

    @on(Action.send_local_list, skip_schema_validation=True)
    async def on_send_local_list(self, version_number: int, update_type: str,
                                 local_authorization_list: list[dict] | None = None, **_: Any) -> Any:
        entries = [(str(item["id_token"]["id_token"]), _list_entry(item.get("id_token_info")))
                   for item in local_authorization_list or []]
        status = await self.adapter.station.authorization.update_list(
            version_number, update_type == UpdateEnumType.full, entries)
        return call_result.SendLocalList(status=_LIST_UPDATE[status.value])

    @on(Action.data_transfer, skip_schema_validation=True)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None, data: Any = None,
                         **_: Any) -> Any:
        return self.adapter.incoming_data_transfer(vendor_id, message_id, data)

    @on(Action.reset, skip_schema_validation=True)
    def on_reset(self, type: str, evse_id: int | None = None, **_: Any) -> Any:
        return self.adapter.reset(type, evse_id)

    @after(Action.reset)
    def after_reset(self, type: str, evse_id: int | None = None, **_: Any) -> None:
        self.adapter.after_reset(type, evse_id)

    @on(Action.unlock_connector, skip_schema_validation=True)
    async def on_unlock_connector(self, evse_id: int, connector_id: int, **_: Any) -> Any:
        return await self.adapter.unlock(evse_id, connector_id)

    @on(Action.trigger_message, skip_schema_validation=True)
    def on_trigger_message(self, requested_message: str, evse: dict | None = None, **_: Any) -> Any:
        status = security_trigger(self.adapter.services, requested_message)
        if status is not None:
            return call_result.TriggerMessage(status=status)
        return self.adapter.trigger(requested_message, evse)

    @after(Action.trigger_message)
    def after_trigger_message(self, requested_message: str, evse: dict | None = None, **_: Any) -> None:
        if not after_security_trigger(self.adapter, requested_message):
            self.adapter.after_trigger(requested_message, evse)


def _list_entry(info: dict[str, Any] | None) -> ListEntry | None:
    """A local list entry from an IdTokenInfo; None (no info) removes the identifier."""
    if info is None:
        return None
    result = auth_result(info)
    return ListEntry(result.status, result.expiry, result.group_id)
