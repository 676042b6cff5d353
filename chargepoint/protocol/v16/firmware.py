"""The 1.6 Firmware Management profile: UpdateFirmware, GetDiagnostics and their status notifications.

The handlers answer at once and hand the work to the core after the answer has
gone (``@after``): the firmware manager (``core/firmware``) and the diagnostics
upload (``core/diagnostics.py``). Their neutral statuses are sent as
FirmwareStatusNotification / DiagnosticsStatusNotification while connected;
the latest firmware status that no CSMS has received yet (Installed or
InstallationFailed after the restart into a new version, or a failure while
offline) is sent after the next accepted BootNotification.

1.6 has fewer firmware words than the core: DownloadScheduled,
SignatureVerified, InstallScheduled and InstallRebooting are not sent (the
1.6 core schema has no such status; the last one is still Installing), a
package refused by verification (checksum, signature, certificate) is
InstallationFailed: it was not installed. The checksum, which 1.6 cannot
carry, may come as a ``#sha256=<hex>`` fragment of the location. An update or
upload that came with a requestId (the security extension's SignedUpdateFirmware
and GetLog, ``signed_firmware.py``) is reported in that extension's words:
SignedFirmwareStatusNotification and LogStatusNotification.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from ocpp.exceptions import NotSupportedError
from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, DiagnosticsStatus, FirmwareStatus

from chargepoint.core.diagnostics import DiagnosticsRequest, DiagnosticsState
from chargepoint.core.diagnostics import DiagnosticsStatus as Diag
from chargepoint.core.firmware import FirmwareRequest, FirmwareState
from chargepoint.core.firmware import FirmwareStatus as Fw
from chargepoint.core.firmware.transfer import check_url
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.common.reports import StatusReports
from chargepoint.protocol.common.requests import field_time
from chargepoint.protocol.v16.signed_firmware import log_notification, signed_notification

log = logging.getLogger(__name__)

#: Neutral status -> the 1.6 status sent when it is reached (absent: not sent).
SENT = {Fw.DOWNLOADING: FirmwareStatus.downloading, Fw.DOWNLOADED: FirmwareStatus.downloaded,
        Fw.DOWNLOAD_FAILED: FirmwareStatus.download_failed, Fw.INSTALLING: FirmwareStatus.installing,
        Fw.INSTALLED: FirmwareStatus.installed, Fw.INSTALLATION_FAILED: FirmwareStatus.installation_failed,
        Fw.INSTALL_VERIFICATION_FAILED: FirmwareStatus.installation_failed,
        Fw.INVALID_SIGNATURE: FirmwareStatus.installation_failed,
        Fw.INVALID_CERTIFICATE: FirmwareStatus.installation_failed,
        Fw.REVOKED_CERTIFICATE: FirmwareStatus.installation_failed}
#: What a triggered report says of an update in progress that 1.6 has no word for.
NEAREST = {Fw.DOWNLOAD_SCHEDULED: FirmwareStatus.idle, Fw.SIGNATURE_VERIFIED: FirmwareStatus.downloaded,
           Fw.INSTALL_SCHEDULED: FirmwareStatus.downloaded, Fw.INSTALL_REBOOTING: FirmwareStatus.installing}
DIAGNOSTICS = {Diag.IDLE: DiagnosticsStatus.idle, Diag.UPLOADING: DiagnosticsStatus.uploading,
               Diag.UPLOADED: DiagnosticsStatus.uploaded, Diag.UPLOAD_FAILED: DiagnosticsStatus.upload_failed}




def firmware_request(location: str, retrieve_date: str, retries: int | None,
                     retry_interval: int | None, defaults: Any) -> FirmwareRequest:
    """An UpdateFirmware as the core's request (``defaults``: the [firmware] configuration)."""
    retrieve_at = field_time(retrieve_date, "retrieveDate")
    assert retrieve_at is not None
    return FirmwareRequest(
        location=location, retrieve_at=retrieve_at, install_at=None,
        retries=retries if retries is not None else defaults.retries,
        retry_interval_s=float(retry_interval if retry_interval is not None else defaults.retry_interval_s))


def firmware_notification(state: FirmwareState, triggered: bool = False) -> Any | None:
    """The FirmwareStatusNotification that says ``state`` (None: 1.6 has nothing to say for it)."""
    if triggered:
        busy = state.in_progress
        status = SENT.get(state.status) or NEAREST[state.status] if busy else FirmwareStatus.idle
    else:
        status = SENT.get(state.status)
    return None if status is None else call.FirmwareStatusNotification(status=status)


def diagnostics_notification(state: DiagnosticsState) -> Any:
    return call.DiagnosticsStatusNotification(status=DIAGNOSTICS[state.status])


class FirmwareReports(StatusReports):
    """The core's firmware and upload statuses in 1.6 words: a signed update's (one with a requestId)
    and a GetLog upload's in the security extension's, the others in Firmware Management's."""

    def firmware_notification(self, state: FirmwareState) -> Any:
        return signed_notification(state) if state.request_id is not None else firmware_notification(state)

    def upload_notification(self, state: DiagnosticsState) -> Any:
        return log_notification(state) if state.request_id is not None else diagnostics_notification(state)

    def send(self, request: Any, then: Callable[[], None] | None = None) -> None:
        self.adapter.send_triggered(request, None if then is None else lambda _result: then())


class FirmwareHandlers(Block[BlockContext]):
    """The Firmware Management profile's block, routed to the 1.6 peer by the adapter."""


    def _firmware(self) -> Any:
        manager = self.context.services.firmware
        if manager is None:
            raise NotSupportedError(description="firmware updates are not set up on this station", details={})
        return manager

    @on(Action.update_firmware, skip_schema_validation=True)
    def on_update_firmware(self, location: str, retrieve_date: str, retries: int | None = None,
                           retry_interval: int | None = None) -> Any:
        self._firmware()
        firmware_request(location, retrieve_date, retries, retry_interval, self.context.config.firmware)
        return call_result.UpdateFirmware()

    @after(Action.update_firmware)
    def after_update_firmware(self, location: str, retrieve_date: str, retries: int | None = None,
                              retry_interval: int | None = None) -> None:
        request = firmware_request(location, retrieve_date, retries, retry_interval,
                                   self.context.config.firmware)
        problem = check_url(location)
        if problem is not None:  # 1.6 has no refusal: the download fails, and says why
            log.warning("UpdateFirmware: %s", problem)
        self._firmware().update(request)

    def _diagnostics(self) -> Any:
        diagnostics = self.context.services.diagnostics
        if diagnostics is None:
            raise NotSupportedError(description="diagnostics uploads are not set up here", details={})
        return diagnostics

    @on(Action.get_diagnostics, skip_schema_validation=True)
    def on_get_diagnostics(self, location: str, retries: int | None = None, retry_interval: int | None = None,
                           start_time: str | None = None, stop_time: str | None = None) -> Any:
        diagnostics = self._diagnostics()
        field_time(start_time, "startTime"), field_time(stop_time, "stopTime")
        problem = check_url(location)
        if problem is not None:
            log.warning("GetDiagnostics refused: %s", problem)
            return call_result.GetDiagnostics()  # no file name: nothing will be uploaded
        return call_result.GetDiagnostics(file_name=diagnostics.next_name())

    @after(Action.get_diagnostics)
    def after_get_diagnostics(self, location: str, retries: int | None = None,
                              retry_interval: int | None = None, start_time: str | None = None,
                              stop_time: str | None = None) -> None:
        if check_url(location) is not None:
            return
        defaults = self.context.config.diagnostics
        self._diagnostics().request(DiagnosticsRequest(
            location=location, start_at=field_time(start_time, "startTime"),
            stop_at=field_time(stop_time, "stopTime"),
            retries=retries if retries is not None else defaults.retries,
            retry_interval_s=float(defaults.retry_interval_s if retry_interval is None else retry_interval)))
