"""The station's neutral words in OCPP 1.6 spelling, and back.

1.6 folds availability, the plug and the session into one of nine connector
statuses; the core keeps them as separate facts and this module derives the
1.6 status from them. Stop reasons, identifier statuses, reading contexts and
fault names get their 1.6 names here too.
"""

from __future__ import annotations

from typing import Any

from ocpp.v16.enums import (
    AuthorizationStatus,
    ChargePointErrorCode,
    ChargePointStatus,
    Reason,
)
from ocpp.v16.enums import ReadingContext as WireContext

from chargepoint.core.authorization import parse_expiry
from chargepoint.core.events import (
    Activity,
    AuthResult,
    AuthStatus,
    MeterSample,
    ReadingContext,
    StatusChanged,
    StopReason,
)
from chargepoint.protocol.common.measurands import format_number, values_for
from chargepoint.protocol.common.peer import snake
from chargepoint.protocol.common.timefmt import iso_utc

#: Station fault names to 1.6 error codes.
ERROR_CODES = {
    "rcd": ChargePointErrorCode.ground_failure,
    "emergency_stop": ChargePointErrorCode.other_error,
    "diode": ChargePointErrorCode.ev_communication_error,
    "pilot": ChargePointErrorCode.ev_communication_error,
    "short": ChargePointErrorCode.ev_communication_error,
    "ventilation": ChargePointErrorCode.other_error,
    "proximity": ChargePointErrorCode.other_error,
    "contactor_mismatch": ChargePointErrorCode.power_switch_failure,
    "welded": ChargePointErrorCode.power_switch_failure,
    "heartbeat": ChargePointErrorCode.power_switch_failure,
    "power_meter_failure": ChargePointErrorCode.power_meter_failure,
    "internal": ChargePointErrorCode.internal_error,
    "supervisor": ChargePointErrorCode.internal_error,
    "storage": ChargePointErrorCode.internal_error,
}

_IN_TRANSACTION = {
    Activity.STARTING: ChargePointStatus.preparing,
    Activity.CHARGING: ChargePointStatus.charging,
    Activity.SUSPENDED_EV: ChargePointStatus.suspended_ev,
    Activity.SUSPENDED_EVSE: ChargePointStatus.suspended_evse,
}

_REASON_BY_KEY = {r.value.lower(): r for r in Reason}
#: Neutral stop reasons 1.6 has no word for, and the 1.6 reason that comes closest.
_CLOSEST_REASON = {
    StopReason.GROUND_FAULT: Reason.emergency_stop,
    StopReason.OVERCURRENT_FAULT: Reason.emergency_stop,
    StopReason.STOPPED_BY_EV: Reason.local,
    StopReason.MASTER_PASS: Reason.local,
}

_CONTEXTS = {
    ReadingContext.TRANSACTION_BEGIN: WireContext.transaction_begin,
    ReadingContext.PERIODIC: WireContext.sample_periodic,
    ReadingContext.CLOCK: WireContext.sample_clock,
    ReadingContext.TRANSACTION_END: WireContext.transaction_end,
    ReadingContext.TRIGGER: WireContext.trigger,
}


def connector_status(s: StatusChanged) -> ChargePointStatus:
    """The one 1.6 status that sums up the facts (a fault wins, then a running transaction)."""
    if s.fault:
        return ChargePointStatus.faulted
    if s.activity in _IN_TRANSACTION:
        return _IN_TRANSACTION[s.activity]
    if not s.operative:
        return ChargePointStatus.unavailable
    if s.activity is Activity.FINISHING:
        return ChargePointStatus.finishing
    if s.activity is Activity.AUTHORIZED:
        return ChargePointStatus.preparing
    if s.reserved:  # an EV plugged in there without the reserved card changes nothing for others
        return ChargePointStatus.reserved
    if s.plugged:
        return ChargePointStatus.preparing
    return ChargePointStatus.available


def error_code(s: StatusChanged) -> ChargePointErrorCode:
    problem = s.fault or s.warning
    return ERROR_CODES.get(problem or "", ChargePointErrorCode.no_error)


def stop_reason(reason: StopReason) -> Reason:
    """A neutral stop reason as 1.6 says it (the closest 1.6 reason where it has none)."""
    exact = _REASON_BY_KEY.get(reason.value.replace("_", ""))
    return exact or _CLOSEST_REASON.get(reason, Reason.other)


def reading_context(context: ReadingContext) -> str:
    return _CONTEXTS[context].value


def auth_result(info: dict[str, Any]) -> AuthResult:
    """An IdTagInfo (keys in wire or library spelling) as the station's AuthResult."""
    info = {snake(name): value for name, value in info.items()}
    status = AuthStatus.parse(AuthorizationStatus(info["status"]).value)
    return AuthResult(status, group_id=info.get("parent_id_tag"),
                      expiry=parse_expiry(info.get("expiry_date")))


def authorization_status(status: AuthStatus) -> AuthorizationStatus:
    """A neutral identifier status as 1.6 says it (statuses 1.6 lacks are Invalid)."""
    for member in AuthorizationStatus:
        if member.value.lower() == status.value.replace("_", ""):
            return member
    return AuthorizationStatus.invalid


def meter_value(sample: MeterSample, measurands: list[str]) -> dict[str, Any]:
    """A MeterValue (timestamp and sampled values) of ``measurands`` from one sample."""
    sampled = []
    context = reading_context(sample.context)
    for value in values_for(sample.reading, measurands, sample.offered_a):
        item: dict[str, Any] = {"value": format_number(value.value), "context": context,
                                "measurand": value.measurand, "location": "Outlet"}
        if value.unit:
            item["unit"] = value.unit
        if value.phase:
            item["phase"] = value.phase
        sampled.append(item)
    return {"timestamp": iso_utc(sample.reading.timestamp), "sampledValue": sampled}
