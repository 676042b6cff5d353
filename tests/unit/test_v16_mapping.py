"""Every fault the station can report has a deliberate OCPP 1.6 error code."""

from __future__ import annotations

from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus

from chargepoint.events import STATION_FAULTS, ConnectorStatus
from chargepoint.evse import EvseFault
from chargepoint.protocol.v16 import ERROR_CODES, iso_utc


def test_every_fault_has_an_error_code():
    faults = {f.value for f in EvseFault} | set(STATION_FAULTS)
    assert faults == set(ERROR_CODES)
    assert ChargePointErrorCode.no_error not in ERROR_CODES.values()


def test_every_connector_status_is_a_16_status():
    assert {s.value for s in ConnectorStatus} == {s.value for s in ChargePointStatus}


def test_timestamps_are_utc_iso8601_with_milliseconds():
    assert iso_utc(1_700_000_000.25) == "2023-11-14T22:13:20.250Z"
