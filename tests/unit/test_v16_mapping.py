"""The 1.6 adapter's words for the core's facts: statuses, error codes, reasons, identifiers."""

from __future__ import annotations

import itertools

from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, Reason

from chargepoint.core.events import STATION_FAULTS, Activity, AuthStatus, StatusChanged, StopReason
from chargepoint.protocol.common.peer import camel, snake
from chargepoint.protocol.common.timefmt import iso_utc
from chargepoint.protocol.v16.translate import (
    ERROR_CODES,
    auth_result,
    authorization_status,
    connector_status,
    error_code,
    stop_reason,
)
from chargepoint.safety.evse import EvseFault


def test_every_fault_has_an_error_code():
    faults = {f.value for f in EvseFault} | set(STATION_FAULTS)
    assert faults == set(ERROR_CODES)
    assert ChargePointErrorCode.no_error not in ERROR_CODES.values()


def test_the_facts_reach_every_16_status_but_reserved():
    """Reservations are not built yet; every other 1.6 status follows from some facts."""
    seen = {connector_status(StatusChanged(1, 0.0, operative=op, activity=act, plugged=plugged, fault=fault))
            for op, act, plugged, fault in itertools.product(
                (True, False), Activity, (True, False), (None, "rcd"))}
    assert seen == set(ChargePointStatus) - {ChargePointStatus.reserved}


def test_status_precedence_fault_then_transaction_then_availability():
    assert connector_status(StatusChanged(1, 0, activity=Activity.CHARGING, fault="welded")) == "Faulted"
    assert connector_status(StatusChanged(1, 0, operative=False, activity=Activity.CHARGING,
                                          plugged=True)) == "Charging"
    assert connector_status(StatusChanged(1, 0, operative=False, activity=Activity.FINISHING,
                                          plugged=True)) == "Unavailable"
    assert connector_status(StatusChanged(1, 0, activity=Activity.STARTING, plugged=True)) == "Preparing"
    assert connector_status(StatusChanged(1, 0, activity=Activity.AUTHORIZED)) == "Preparing"
    assert connector_status(StatusChanged(1, 0, plugged=True)) == "Preparing"
    assert connector_status(StatusChanged(1, 0)) == "Available"
    meter = StatusChanged(1, 0, warning="power_meter_failure")
    assert (connector_status(meter), error_code(meter)) == ("Available", "PowerMeterFailure")


def test_every_stop_reason_has_a_16_reason():
    said = {stop_reason(r) for r in StopReason}
    assert said == set(Reason), "every 1.6 reason is reachable, and nothing else is sent"
    assert stop_reason(StopReason.EV_DISCONNECTED) == Reason.ev_disconnected
    assert stop_reason(StopReason.DEAUTHORIZED) == Reason.de_authorized
    assert stop_reason(StopReason.TIMEOUT) == Reason.other


def test_identifier_statuses_both_ways():
    for status in ("Accepted", "Blocked", "Expired", "Invalid", "ConcurrentTx"):
        assert authorization_status(auth_result({"status": status}).status) == status
    assert authorization_status(AuthStatus.NO_CREDIT) == "Invalid"


def test_timestamps_are_utc_iso8601_with_milliseconds():
    assert iso_utc(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"


def test_names_convert_between_wire_and_python_spelling():
    assert camel("transaction_data") == "transactionData" and camel("reason") == "reason"
    assert snake("idTagInfo") == "id_tag_info" and snake("id_tag_info") == "id_tag_info"
    wire = auth_result({"status": "Accepted", "parentIdTag": "P", "expiryDate": "2023-11-14T22:13:20Z"})
    library = auth_result({"status": "Accepted", "parent_id_tag": "P", "expiry_date": "2023-11-14T22:13:20Z"})
    assert wire == library and wire.group_id == "P" and wire.expiry == 1_700_000_000.0
