"""OCPP 2.0.1 provisioning: GetVariables, SetVariables, GetBaseReport and SetNetworkProfile.

A block of ``ocpp`` library handlers the adapter routes to the 2.0.1 peer; its
context (``context.Context201``) gives the device model and the connection's
CALL. The handlers translate only:
the device model decides values and refusals, ``core.security.network_profiles`` keeps
the profiles.

A base report is answered at once and sent afterwards, from the library's
``@after`` hook (a task of its own: a handler that awaited its own CALL would
wait for ever on the library's one-CALL lock), as NotifyReport messages of at
most ``ITEMS_PER_REPORT`` items and ``BYTES_PER_REPORT`` bytes, numbered from 0
with ``tbc`` on all but the last. The report is taken when the CSMS asks, so
the parts agree with each other however long sending them takes.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import OccurrenceConstraintViolationError, OCPPError
from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from chargepoint.core.security.network_profiles import NetworkProfile
from chargepoint.protocol.common.block import Block
from chargepoint.protocol.v201.context import Context201
from chargepoint.protocol.v201.reports import custom_report
from chargepoint.protocol.v201.variables import BYTES_PER_REPORT, ITEMS_PER_REPORT, ITEMS_PER_REQUEST

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)

#: Room a NotifyReport frame needs besides its items (the CALL's array, ids, fields).
REPORT_ENVELOPE_BYTES = 256
#: OCPP versions a network profile may name: the ones this station speaks.
PROFILE_VERSIONS = {"OCPP16": "1.6", "OCPP20": "2.0.1", "OCPP201": "2.0.1", "OCPP21": "2.1"}


def report_chunks(items: list[dict[str, Any]], max_items: int = ITEMS_PER_REPORT,
                  max_bytes: int = BYTES_PER_REPORT) -> list[list[dict[str, Any]]]:
    """``items`` cut into NotifyReport parts within both limits (an item too big alone goes alone).

    Sizes are measured in the library's snake_case spelling, which is never
    shorter than the camelCase one on the wire.
    """
    chunks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = REPORT_ENVELOPE_BYTES
    for item in items:
        length = len(json.dumps(item, separators=(",", ":")).encode()) + 1
        if current and (len(current) >= max_items or size + length > max_bytes):
            chunks.append(current)
            current, size = [], REPORT_ENVELOPE_BYTES
        current.append(item)
        size += length
    if current:
        chunks.append(current)
    return chunks


def _status_info(code: str, text: str) -> dict[str, str]:
    return {"reason_code": code, "additional_info": text[:512]}


class ProvisioningHandlers(Block[Context201]):
    """The provisioning block (B): variables, base and custom reports, network profiles."""

    def __init__(self, context: Context201) -> None:
        super().__init__(context)
        #: Base and custom reports taken and not yet sent, by requestId.
        self._pending_reports: dict[int, list[dict[str, Any]]] = {}

    # ------------------------------------------------------------ variables
    @on(Action.get_variables)
    def on_get_variables(self, get_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        _check_items(len(get_variable_data), "GetVariables")
        results = self.context.device_model.get_variables(get_variable_data)
        return call_result.GetVariables(get_variable_result=results)

    @on(Action.set_variables)
    def on_set_variables(self, set_variable_data: list[dict[str, Any]], **_: Any) -> Any:
        _check_items(len(set_variable_data), "SetVariables")
        results = self.context.device_model.set_variables(set_variable_data)
        for result in results:
            if result["attribute_status"] in ("Accepted", "RebootRequired"):
                log.info("%s%s set over OCPP (%s)", result["component"]["name"],
                         "." + result["variable"]["name"], result["attribute_status"])
        return call_result.SetVariables(set_variable_result=results)

    # --------------------------------------------------------------- reports
    @on(Action.get_base_report)
    def on_get_base_report(self, request_id: int, report_base: str, **_: Any) -> Any:
        items = self.context.device_model.report(report_base)
        if items is None:
            return call_result.GetBaseReport(status="NotSupported")
        if not items:
            return call_result.GetBaseReport(status="EmptyResultSet")
        self._pending_reports[request_id] = items
        return call_result.GetBaseReport(status="Accepted")

    @after(Action.get_base_report)
    async def send_base_report(self, request_id: int, report_base: str, **_: Any) -> None:
        items = self._pending_reports.pop(request_id, None)
        if items is None:
            return
        chunks = report_chunks(items)
        generated_at = datetime.fromtimestamp(self.context.device_model.clock(), tz=UTC).isoformat() \
            .replace("+00:00", "Z")
        for seq_no, chunk in enumerate(chunks):
            request = call.NotifyReport(request_id=request_id, generated_at=generated_at, seq_no=seq_no,
                                        report_data=chunk, tbc=seq_no < len(chunks) - 1)
            try:
                await self.context.call(request)
            except (OCPPError, TimeoutError) as exc:
                log.warning("%s report %d: part %d of %d not delivered (%s); the rest not sent",
                            report_base, request_id, seq_no + 1, len(chunks),
                            type(exc).__name__ if isinstance(exc, TimeoutError) else exc)
                return
        log.info("%s report %d sent in %d part(s), %d item(s)", report_base, request_id, len(chunks),
                 len(items))

    @on(Action.get_report)
    def on_get_report(self, request_id: int, component_criteria: list[str] | None = None,
                      component_variable: list[dict[str, Any]] | None = None, **_: Any) -> Any:
        items = custom_report(self.context.device_model, component_criteria, component_variable)
        if not items:
            return call_result.GetReport(status="EmptyResultSet")
        self._pending_reports[request_id] = items
        return call_result.GetReport(status="Accepted")

    @after(Action.get_report)
    async def send_custom_report(self, request_id: int, **_: Any) -> None:
        await self.send_base_report(request_id, "Custom")

    # ------------------------------------------------------- network profile
    @on(Action.set_network_profile)
    def on_set_network_profile(self, configuration_slot: int, connection_data: dict[str, Any],
                               **_: Any) -> Any:
        reason = _unsupported(connection_data)
        if reason is None:
            profile = NetworkProfile(
                slot=configuration_slot, url=connection_data["ocpp_csms_url"],
                security_profile=connection_data["security_profile"],
                message_timeout_s=connection_data["message_timeout"],
                details={"ocpp_version": PROFILE_VERSIONS.get(connection_data.get("ocpp_version") or ""),
                         "interface": connection_data["ocpp_interface"]})
            reason = self.context.device_model.network_profiles.store(profile)
        if reason is not None:
            log.warning("network profile for slot %d refused: %s", configuration_slot, reason)
            return call_result.SetNetworkProfile(status="Rejected",
                                                 status_info=_status_info("InvalidValue", reason))
        log.info("network profile stored in slot %d: %s, security profile %d", configuration_slot,
                 connection_data["ocpp_csms_url"], connection_data["security_profile"])
        return call_result.SetNetworkProfile(status="Accepted")


def _unsupported(data: dict[str, Any]) -> str | None:
    """What this station cannot do of a profile, in words (None: nothing)."""

    # 2.1 makes the version optional (absent: the one spoken) and adds a profile's own identity and password.
    version = data.get("ocpp_version")
    if version is not None and version not in PROFILE_VERSIONS:
        return f"OCPP version {version} is not spoken (only {', '.join(PROFILE_VERSIONS)})"
    if data.get("identity") is not None or data.get("basic_auth_password") is not None:
        return "a profile's own identity and password are not supported: the station's are used"
    if data["ocpp_transport"] != "JSON":
        return "only the JSON transport (OCPP-J over WebSocket) is supported"
    if data.get("apn") is not None:
        return "this station has no cellular modem to dial an APN"
    if data.get("vpn") is not None:
        return "this station has no VPN client"
    return None


def _check_items(count: int, action: str) -> None:
    if count > ITEMS_PER_REQUEST:
        raise OccurrenceConstraintViolationError(
            description=f"{action} with {count} items; at most {ITEMS_PER_REQUEST} "
                        f"(DeviceDataCtrlr.ItemsPerMessage[{action}])")
