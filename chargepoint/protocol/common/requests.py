"""What both OCPP versions ask of the firmware and log core, in the same words.

The 1.6 security extension's SignedUpdateFirmware / GetLog and 2.0.1's
UpdateFirmware / GetLog carry the same fields (the library passes them in
snake_case), so one translation serves both; a date-time that does not parse
is the PropertyConstraintViolation both versions name.
"""

from __future__ import annotations

from typing import Any

from ocpp.exceptions import PropertyConstraintViolationError

from chargepoint.core.diagnostics import DiagnosticsRequest, LogKind
from chargepoint.core.firmware import FirmwareRequest
from chargepoint.protocol.common.timefmt import parse_iso

#: The logType word of the security log (the same in 1.6's security extension and 2.0.1).
SECURITY_LOG = "SecurityLog"


def field_time(text: str | None, field: str) -> float | None:
    """A payload's date-time field as a timestamp (None if absent); the CALLERROR if it is no date."""
    if text is None:
        return None
    try:
        return parse_iso(text)
    except ValueError:
        raise PropertyConstraintViolationError(
            description=f"{field}: {str(text)[:40]!r} is not an ISO 8601 date-time", details={}) from None


def firmware_request(request_id: int | None, firmware: dict[str, Any], retries: int | None,
                     retry_interval: int | None, defaults: Any) -> FirmwareRequest:
    """A (signed) firmware update as the core's request (``defaults``: the [firmware] configuration)."""
    retrieve_at = field_time(firmware.get("retrieve_date_time"), "retrieveDateTime")
    assert retrieve_at is not None  # required by the schema
    return FirmwareRequest(
        location=str(firmware.get("location", "")), retrieve_at=retrieve_at,
        install_at=field_time(firmware.get("install_date_time"), "installDateTime"),
        retries=retries if retries is not None else defaults.retries,
        retry_interval_s=float(retry_interval if retry_interval is not None else defaults.retry_interval_s),
        request_id=request_id, signature=firmware.get("signature"),
        signing_certificate=firmware.get("signing_certificate"))


def log_request(log_type: str, request_id: int, parameters: dict[str, Any], retries: int | None,
                retry_interval: int | None, defaults: Any) -> DiagnosticsRequest:
    """A GetLog as the core's upload request (``defaults``: the [diagnostics] configuration)."""
    return DiagnosticsRequest(
        location=str(parameters.get("remote_location", "")),
        start_at=field_time(parameters.get("oldest_timestamp"), "oldestTimestamp"),
        stop_at=field_time(parameters.get("latest_timestamp"), "latestTimestamp"),
        retries=retries if retries is not None else defaults.retries,
        retry_interval_s=float(defaults.retry_interval_s if retry_interval is None else retry_interval),
        request_id=request_id,
        kind=LogKind.SECURITY if str(log_type) == SECURITY_LOG else LogKind.DIAGNOSTICS)
