"""The station's neutral words in OCPP 2.0.1 spelling, and back.

2.0.1 keeps apart what 1.6 folded into one status: the connector status says
whether a connector can be used (five words), the charging state of a running
transaction travels in its TransactionEvents. Identifier kinds, stop reasons,
the trigger of each transaction message, reading contexts and meter values get
their 2.0.1 names here.
"""

from __future__ import annotations

from typing import Any

from ocpp.v201.enums import (
    AuthorizationStatusEnumType,
    ChargingStateEnumType,
    ConnectorStatusEnumType,
    IdTokenEnumType,
    ReadingContextEnumType,
    ReasonEnumType,
    TriggerReasonEnumType,
)

from chargepoint.core.authorization import parse_expiry
from chargepoint.core.events import (
    Activity,
    AuthResult,
    AuthStatus,
    IdToken,
    MeterSample,
    ReadingContext,
    StatusChanged,
    StopReason,
    TokenType,
)
from chargepoint.protocol.common.measurands import values_for
from chargepoint.protocol.common.timefmt import iso_utc

_TOKEN_TYPES = {
    TokenType.ISO14443: IdTokenEnumType.iso14443,
    TokenType.ISO15693: IdTokenEnumType.iso15693,
    TokenType.CENTRAL: IdTokenEnumType.central,
    TokenType.LOCAL: IdTokenEnumType.local,
    TokenType.KEY_CODE: IdTokenEnumType.key_code,
    TokenType.EMAID: IdTokenEnumType.e_maid,
    TokenType.MAC_ADDRESS: IdTokenEnumType.mac_address,
    TokenType.NO_AUTHORIZATION: IdTokenEnumType.no_authorization,
}
_TOKEN_KINDS = {wire.value: kind for kind, wire in _TOKEN_TYPES.items()}

_CHARGING_STATES = {
    Activity.CHARGING: ChargingStateEnumType.charging,
    Activity.SUSPENDED_EV: ChargingStateEnumType.suspended_ev,
    Activity.SUSPENDED_EVSE: ChargingStateEnumType.suspended_evse,
}

_STOPPED_REASONS = {
    StopReason.LOCAL: ReasonEnumType.local,
    StopReason.REMOTE: ReasonEnumType.remote,
    StopReason.EV_DISCONNECTED: ReasonEnumType.ev_disconnected,
    StopReason.DEAUTHORIZED: ReasonEnumType.de_authorized,
    StopReason.EMERGENCY_STOP: ReasonEnumType.emergency_stop,
    StopReason.POWER_LOSS: ReasonEnumType.power_loss,
    StopReason.REBOOT: ReasonEnumType.reboot,
    StopReason.SOFT_RESET: ReasonEnumType.immediate_reset,
    StopReason.HARD_RESET: ReasonEnumType.immediate_reset,
    StopReason.ENERGY_LIMIT_REACHED: ReasonEnumType.energy_limit_reached,
    StopReason.GROUND_FAULT: ReasonEnumType.ground_fault,
    StopReason.LOCAL_OUT_OF_CREDIT: ReasonEnumType.local_out_of_credit,
    StopReason.MASTER_PASS: ReasonEnumType.master_pass,
    StopReason.OVERCURRENT_FAULT: ReasonEnumType.overcurrent_fault,
    StopReason.POWER_QUALITY: ReasonEnumType.power_quality,
    StopReason.SOC_LIMIT_REACHED: ReasonEnumType.soc_limit_reached,
    StopReason.STOPPED_BY_EV: ReasonEnumType.stopped_by_ev,
    StopReason.TIME_LIMIT_REACHED: ReasonEnumType.time_limit_reached,
    StopReason.TIMEOUT: ReasonEnumType.timeout,
}

#: What made a transaction end, as the trigger of its Ended message.
_STOP_TRIGGERS = {
    StopReason.LOCAL: TriggerReasonEnumType.stop_authorized,
    StopReason.MASTER_PASS: TriggerReasonEnumType.stop_authorized,
    StopReason.REMOTE: TriggerReasonEnumType.remote_stop,
    StopReason.EV_DISCONNECTED: TriggerReasonEnumType.ev_communication_lost,
    StopReason.DEAUTHORIZED: TriggerReasonEnumType.deauthorized,
    StopReason.UNLOCK_COMMAND: TriggerReasonEnumType.unlock_command,
    StopReason.SOFT_RESET: TriggerReasonEnumType.reset_command,
    StopReason.HARD_RESET: TriggerReasonEnumType.reset_command,
    StopReason.ENERGY_LIMIT_REACHED: TriggerReasonEnumType.energy_limit_reached,
    StopReason.TIME_LIMIT_REACHED: TriggerReasonEnumType.time_limit_reached,
    StopReason.TIMEOUT: TriggerReasonEnumType.ev_connect_timeout,
    StopReason.STOPPED_BY_EV: TriggerReasonEnumType.charging_state_changed,
}

_CONTEXTS = {
    ReadingContext.TRANSACTION_BEGIN: ReadingContextEnumType.transaction_begin,
    ReadingContext.PERIODIC: ReadingContextEnumType.sample_periodic,
    ReadingContext.CLOCK: ReadingContextEnumType.sample_clock,
    ReadingContext.TRANSACTION_END: ReadingContextEnumType.transaction_end,
    ReadingContext.TRIGGER: ReadingContextEnumType.trigger,
}


def connector_status(s: StatusChanged) -> ConnectorStatusEnumType:
    """The 2.0.1 connector status: usable or not, held for someone, and by whom (a fault wins)."""
    if s.fault:
        return ConnectorStatusEnumType.faulted
    in_transaction = s.activity not in (Activity.IDLE, Activity.AUTHORIZED, Activity.FINISHING)
    if not s.operative and not in_transaction:
        return ConnectorStatusEnumType.unavailable
    if s.reserved and not in_transaction:  # an EV plugged in without the reserved card changes nothing
        return ConnectorStatusEnumType.reserved
    if s.plugged or in_transaction:
        return ConnectorStatusEnumType.occupied
    return ConnectorStatusEnumType.available


def charging_state(s: StatusChanged) -> ChargingStateEnumType:
    """The charging state of the transaction on a connector (EVConnected while it starts)."""
    if s.activity in _CHARGING_STATES:
        if s.activity is Activity.SUSPENDED_EV and not s.plugged:
            return ChargingStateEnumType.idle  # the EV left, the transaction is kept
        return _CHARGING_STATES[s.activity]
    return ChargingStateEnumType.ev_connected if s.plugged else ChargingStateEnumType.idle


def stopped_reason(reason: StopReason) -> ReasonEnumType:
    return _STOPPED_REASONS.get(reason, ReasonEnumType.other)


def stop_trigger(reason: StopReason) -> TriggerReasonEnumType:
    return _STOP_TRIGGERS.get(reason, TriggerReasonEnumType.abnormal_condition)


def sample_trigger(context: ReadingContext) -> TriggerReasonEnumType:
    if context is ReadingContext.CLOCK:
        return TriggerReasonEnumType.meter_value_clock
    if context is ReadingContext.TRIGGER:
        return TriggerReasonEnumType.trigger
    return TriggerReasonEnumType.meter_value_periodic


def id_token(token: IdToken) -> dict[str, str]:
    """An identifier in wire form (IdTokenType)."""
    return {"idToken": token.value, "type": _TOKEN_TYPES[token.type].value}


def token_of(wire: dict[str, Any]) -> IdToken:
    """An IdTokenType (wire or library spelling) as the station's identifier."""
    value = wire.get("idToken", wire.get("id_token"))
    return IdToken(str(value), _TOKEN_KINDS.get(str(wire.get("type")), TokenType.LOCAL))


def auth_result(info: dict[str, Any]) -> AuthResult:
    """An IdTokenInfoType (keys in wire or library spelling) as the station's AuthResult."""
    status = AuthStatus.parse(AuthorizationStatusEnumType(info["status"]).value)
    group = info.get("groupIdToken", info.get("group_id_token"))
    expiry = info.get("cacheExpiryDateTime", info.get("cache_expiry_date_time"))
    return AuthResult(status, group_id=token_of(group).value if isinstance(group, dict) else None,
                      expiry=parse_expiry(expiry))


def id_token_info(result: AuthResult) -> dict[str, Any]:
    """The station's AuthResult as an IdTokenInfoType (for tests and the bench CSMS)."""
    status = next((m for m in AuthorizationStatusEnumType
                   if m.value.lower() == result.status.value.replace("_", "")),
                  AuthorizationStatusEnumType.invalid)
    info: dict[str, Any] = {"status": status.value}
    if result.expiry is not None:
        info["cacheExpiryDateTime"] = iso_utc(result.expiry)
    if result.group_id:
        info["groupIdToken"] = {"idToken": result.group_id, "type": IdTokenEnumType.central.value}
    return info


def meter_value(sample: MeterSample, measurands: list[str],
                context: ReadingContext | None = None) -> dict[str, Any]:
    """A reading as a MeterValueType: values are numbers and units an object in 2.0.1."""
    wire_context = _CONTEXTS[context or sample.context].value
    sampled = []
    for value in values_for(sample.reading, measurands, sample.offered_a):
        item: dict[str, Any] = {"value": round(value.value, 3), "context": wire_context,
                                "measurand": value.measurand, "location": "Outlet"}
        if value.unit:
            item["unitOfMeasure"] = {"unit": value.unit}
        if value.phase:
            item["phase"] = value.phase
        sampled.append(item)
    return {"timestamp": iso_utc(sample.reading.timestamp), "sampledValue": sampled}


def energy_value(energy_wh: float, timestamp: float, context: ReadingContext) -> dict[str, Any]:
    """The import register alone (the begin of a transaction, which keeps only its energy)."""
    return {"timestamp": iso_utc(timestamp), "sampledValue": [{
        "value": round(energy_wh, 3), "context": _CONTEXTS[context].value,
        "measurand": "Energy.Active.Import.Register", "location": "Outlet",
        "unitOfMeasure": {"unit": "Wh"}}]}
