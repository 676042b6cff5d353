"""The 2.0.1 firmware and log blocks (L and N): UpdateFirmware, GetLog and their notifications.

UpdateFirmware carries requestId, the location, retrieve and install times and,
for signed firmware, the signing certificate and signature into the core's
``FirmwareRequest``. A signing certificate that does not lead to an installed
manufacturer root is answered InvalidCertificate (and recorded as
InvalidFirmwareSigningCertificate) before anything is downloaded; the
signature over the package is the firmware manager's verifiers' business,
before any of it runs. GetLog uploads the diagnostics archive (DiagnosticsLog)
or the security log's events of the window (SecurityLog) through the core's
diagnostics upload.

``FirmwareReports`` sends the core's neutral statuses as
FirmwareStatusNotification / LogStatusNotification with the request's id once
the boot is accepted, and the firmware status no CSMS has received yet (the
verdict after the restart into a new version) at once; it remembers the state
it last sent so the boot's catch-up and a status being entered do not both
send it. TriggerMessage FirmwareStatusNotification / LogStatusNotification
says what runs now (Idle, without requestId, when nothing does).
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import (
    Action,
    FirmwareStatusEnumType,
    LogStatusEnumType,
    MessageTriggerEnumType,
    UpdateFirmwareStatusEnumType,
    UploadLogStatusEnumType,
)

from chargepoint.core.diagnostics import DiagnosticsState
from chargepoint.core.diagnostics import DiagnosticsStatus as Diag
from chargepoint.core.firmware import FirmwareState
from chargepoint.core.firmware import FirmwareStatus as Fw
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.common.firmware_intake import (
    INVALID_CERTIFICATE,
    LOG_ACCEPTED,
    LOG_ACCEPTED_CANCELED,
    LOG_REJECTED,
    FirmwareIntake,
)
from chargepoint.protocol.common.reports import StatusReports

logger = logging.getLogger(__name__)

S = FirmwareStatusEnumType
#: Neutral status -> the 2.0.1 status (2.0.1 has no InvalidCertificate notification: a certificate
#: refused only at verification time, it expired meanwhile, is InstallVerificationFailed).
STATUS = {Fw.IDLE: S.idle, Fw.DOWNLOAD_SCHEDULED: S.download_scheduled, Fw.DOWNLOADING: S.downloading,
          Fw.DOWNLOADED: S.downloaded, Fw.DOWNLOAD_FAILED: S.download_failed,
          Fw.SIGNATURE_VERIFIED: S.signature_verified,
          Fw.INSTALL_VERIFICATION_FAILED: S.install_verification_failed,
          Fw.INVALID_SIGNATURE: S.invalid_signature, Fw.INVALID_CERTIFICATE: S.install_verification_failed,
          Fw.REVOKED_CERTIFICATE: S.install_verification_failed, Fw.INSTALL_SCHEDULED: S.install_scheduled,
          Fw.INSTALLING: S.installing, Fw.INSTALL_REBOOTING: S.install_rebooting, Fw.INSTALLED: S.installed,
          Fw.INSTALLATION_FAILED: S.installation_failed}
LOG = {Diag.IDLE: UploadLogStatusEnumType.idle, Diag.UPLOADING: UploadLogStatusEnumType.uploading,
       Diag.UPLOADED: UploadLogStatusEnumType.uploaded,
       Diag.UPLOAD_FAILED: UploadLogStatusEnumType.upload_failure}
_ANSWER = {"accepted": UpdateFirmwareStatusEnumType.accepted,
           "accepted_canceled": UpdateFirmwareStatusEnumType.accepted_canceled,
           "rejected": UpdateFirmwareStatusEnumType.rejected,
           INVALID_CERTIFICATE: UpdateFirmwareStatusEnumType.invalid_certificate}
_LOG_ANSWER = {LOG_ACCEPTED: LogStatusEnumType.accepted,
               LOG_ACCEPTED_CANCELED: LogStatusEnumType.accepted_canceled,
               LOG_REJECTED: LogStatusEnumType.rejected}
#: The triggers this module answers (``adapter.V201Adapter.trigger`` hands them here).
TRIGGERS = (MessageTriggerEnumType.firmware_status_notification,
            MessageTriggerEnumType.log_status_notification)


def firmware_notification(state: FirmwareState, triggered: bool = False) -> Any:
    if triggered and not state.in_progress:
        return call.FirmwareStatusNotification(status=S.idle)
    return call.FirmwareStatusNotification(status=STATUS[state.status], request_id=state.request_id)


def log_notification(state: DiagnosticsState, triggered: bool = False) -> Any:
    if triggered and not state.in_progress:
        return call.LogStatusNotification(status=UploadLogStatusEnumType.idle)
    return call.LogStatusNotification(status=LOG[state.status], request_id=state.request_id)


class FirmwareReports(StatusReports):
    """The core's firmware and log statuses in 2.0.1 words, and the triggered ones."""

    def firmware_notification(self, state: FirmwareState) -> Any:
        return firmware_notification(state)

    def upload_notification(self, state: DiagnosticsState) -> Any:
        return log_notification(state)

    def triggered(self, requested: str) -> None:
        """TriggerMessage: what runs now, or Idle."""
        if requested == MessageTriggerEnumType.firmware_status_notification:
            firmware = self.services.firmware
            state = firmware.activity() if firmware is not None else FirmwareState(Fw.IDLE)
            self.send(firmware_notification(state, triggered=True))
        else:
            uploads = self.services.diagnostics
            state = uploads.activity() if uploads is not None else DiagnosticsState(Diag.IDLE)
            self.send(log_notification(state, triggered=True))

    def send(self, request: Any, then: Any = None) -> None:
        self.adapter.spawn(self._deliver(request, then))

    async def _deliver(self, request: Any, then: Any) -> None:
        try:
            await self.adapter.call(request)
        except (TimeoutError, OCPPError) as exc:
            logger.warning("%s not accepted: %s", type(request).__name__, exc or "timeout")
            return
        if then is not None:
            then()


class FirmwareHandlers(Block[BlockContext]):
    """UpdateFirmware and GetLog (the L and N blocks' requests), through the shared intake."""

    def __init__(self, context: BlockContext) -> None:
        super().__init__(context)
        self.intake = FirmwareIntake(context, "UpdateFirmware")

    @on(Action.update_firmware, skip_schema_validation=True)
    async def on_update_firmware(self, request_id: int, firmware: dict[str, Any], retries: int | None = None,
                                 retry_interval: int | None = None, **_: Any) -> Any:
        answer = await self.intake.answer_update(request_id, firmware, retries, retry_interval,
                                                 always_signed=False)
        return call_result.UpdateFirmware(status=_ANSWER[answer])

    @after(Action.update_firmware)
    def after_update_firmware(self, request_id: int, firmware: dict[str, Any], retries: int | None = None,
                              retry_interval: int | None = None, **_: Any) -> None:
        self.intake.start_update(request_id, firmware, retries, retry_interval)

    @on(Action.get_log, skip_schema_validation=True)
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, retries: int | None = None,
                   retry_interval: int | None = None, **_: Any) -> Any:
        status, filename, problem = self.intake.answer_log(log, log_type, request_id, retries, retry_interval)
        if problem is not None:
            return call_result.GetLog(status=LogStatusEnumType.rejected, status_info={
                "reason_code": "InvalidURL", "additional_info": problem[:512]})
        return call_result.GetLog(status=_LOG_ANSWER[status], filename=filename)

    @after(Action.get_log)
    def after_get_log(self, log: dict[str, Any], log_type: str, request_id: int, retries: int | None = None,
                      retry_interval: int | None = None, **_: Any) -> None:
        self.intake.start_log(log, log_type, request_id, retries, retry_interval)
