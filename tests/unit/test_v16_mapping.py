"""Every fault the station can report has a deliberate OCPP 1.6 error code."""

from __future__ import annotations

from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus

from chargepoint.core.events import STATION_FAULTS, ConnectorStatus
from chargepoint.protocol.v16.adapter import ERROR_CODES, iso_utc
from chargepoint.safety.evse import EvseFault


def test_every_fault_has_an_error_code():
    faults = {f.value for f in EvseFault} | set(STATION_FAULTS)
    assert faults == set(ERROR_CODES)
    assert ChargePointErrorCode.no_error not in ERROR_CODES.values()


def test_every_connector_status_is_a_16_status():
    assert {s.value for s in ConnectorStatus} == {s.value for s in ChargePointStatus}


def test_timestamps_are_utc_iso8601_with_milliseconds():
    assert iso_utc(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"


def test_names_convert_between_wire_and_python_spelling():
    from chargepoint.protocol.v16.adapter import _auth_result, _camel, _snake

    assert _camel("transaction_data") == "transactionData" and _camel("reason") == "reason"
    assert _snake("idTagInfo") == "id_tag_info" and _snake("id_tag_info") == "id_tag_info"
    wire = _auth_result({"status": "Accepted", "parentIdTag": "P", "expiryDate": "2023-11-14T22:13:20Z"})
    library = _auth_result({"status": "Accepted", "parent_id_tag": "P",
                            "expiry_date": "2023-11-14T22:13:20Z"})
    assert wire == library and wire.parent_id_tag == "P" and wire.expiry == 1_700_000_000.0
