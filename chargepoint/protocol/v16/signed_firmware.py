"""The 1.6 Security Extension's firmware and log messages: SignedUpdateFirmware and GetLog.

SignedUpdateFirmware carries the package's signing certificate and signature
into the core's ``FirmwareRequest``; the certificate is checked when the
request arrives (an untrusted signer is answered InvalidCertificate and
recorded as InvalidFirmwareSigningCertificate, nothing is downloaded), the
signature over the package by the firmware manager's verifiers before any of
it runs. An update that came with a requestId is reported as
SignedFirmwareStatusNotification, with the security extension's richer
statuses (DownloadScheduled, SignatureVerified, InvalidSignature,
InstallScheduled, InstallRebooting...). 1.6 has no InvalidCertificate
notification status: a certificate refused only at verification time (it
expired meanwhile) is InstallVerificationFailed.

GetLog uploads the diagnostics archive (DiagnosticsLog) or the security log's
events in the window (SecurityLog) through the core's diagnostics upload; an
upload that came with a requestId is reported as LogStatusNotification.
The handlers answer at once and hand the work to the core after the answer
(``@after``), as ``firmware.py`` does.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import Action, FirmwareStatus, LogStatus, UpdateFirmwareStatus, UploadLogStatus

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

#: Neutral status -> SignedFirmwareStatusNotification status.
SIGNED = {Fw.IDLE: FirmwareStatus.idle, Fw.DOWNLOAD_SCHEDULED: FirmwareStatus.download_scheduled,
          Fw.DOWNLOADING: FirmwareStatus.downloading, Fw.DOWNLOADED: FirmwareStatus.downloaded,
          Fw.DOWNLOAD_FAILED: FirmwareStatus.download_failed,
          Fw.SIGNATURE_VERIFIED: FirmwareStatus.signature_verified,
          Fw.INSTALL_VERIFICATION_FAILED: FirmwareStatus.install_verification_failed,
          Fw.INVALID_SIGNATURE: FirmwareStatus.invalid_signature,
          Fw.INVALID_CERTIFICATE: FirmwareStatus.install_verification_failed,
          Fw.REVOKED_CERTIFICATE: FirmwareStatus.install_verification_failed,
          Fw.INSTALL_SCHEDULED: FirmwareStatus.install_scheduled, Fw.INSTALLING: FirmwareStatus.installing,
          Fw.INSTALL_REBOOTING: FirmwareStatus.install_rebooting, Fw.INSTALLED: FirmwareStatus.installed,
          Fw.INSTALLATION_FAILED: FirmwareStatus.installation_failed}
LOG = {Diag.IDLE: UploadLogStatus.idle, Diag.UPLOADING: UploadLogStatus.uploading,
       Diag.UPLOADED: UploadLogStatus.uploaded, Diag.UPLOAD_FAILED: UploadLogStatus.upload_failure}
_ANSWER = {"accepted": UpdateFirmwareStatus.accepted,
           "accepted_canceled": UpdateFirmwareStatus.accepted_canceled,
           "rejected": UpdateFirmwareStatus.rejected,
           INVALID_CERTIFICATE: UpdateFirmwareStatus.invalid_certificate}
_LOG_ANSWER = {LOG_ACCEPTED: LogStatus.accepted, LOG_ACCEPTED_CANCELED: LogStatus.accepted_canceled,
               LOG_REJECTED: LogStatus.rejected}


def signed_notification(state: FirmwareState, triggered: bool = False) -> Any:
    """The SignedFirmwareStatusNotification that says ``state`` (triggered: Idle unless one runs)."""
    if triggered and not state.in_progress:
        return call.SignedFirmwareStatusNotification(status=FirmwareStatus.idle, request_id=None)
    return call.SignedFirmwareStatusNotification(status=SIGNED[state.status], request_id=state.request_id)


def log_notification(state: DiagnosticsState, triggered: bool = False) -> Any:
    """The LogStatusNotification that says ``state`` (triggered: Idle unless a GetLog upload runs)."""
    if triggered and not (state.in_progress and state.request_id is not None):
        return call.LogStatusNotification(status=UploadLogStatus.idle, request_id=None)
    return call.LogStatusNotification(status=LOG[state.status], request_id=state.request_id)


class SignedFirmwareHandlers(Block[BlockContext]):
    """SignedUpdateFirmware and GetLog (1.6's security extension), through the shared intake."""

    def __init__(self, context: BlockContext) -> None:
        super().__init__(context)
        self.intake = FirmwareIntake(context, "SignedUpdateFirmware")

    @on(Action.signed_update_firmware, skip_schema_validation=True)
    async def on_signed_update_firmware(self, request_id: int, firmware: dict[str, Any],
                                        retries: int | None = None, retry_interval: int | None = None) -> Any:
        answer = await self.intake.answer_update(request_id, firmware, retries, retry_interval,
                                                 always_signed=True)
        return call_result.SignedUpdateFirmware(status=_ANSWER[answer])

    @after(Action.signed_update_firmware)
    def after_signed_update_firmware(self, request_id: int, firmware: dict[str, Any],
                                     retries: int | None = None, retry_interval: int | None = None) -> None:
        self.intake.start_update(request_id, firmware, retries, retry_interval)

    @on(Action.get_log, skip_schema_validation=True)
    def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int, retries: int | None = None,
                   retry_interval: int | None = None) -> Any:
        status, filename, _ = self.intake.answer_log(log, log_type, request_id, retries, retry_interval)
        return call_result.GetLog(status=_LOG_ANSWER[status], filename=filename)

    @after(Action.get_log)
    def after_get_log(self, log: dict[str, Any], log_type: str, request_id: int, retries: int | None = None,
                      retry_interval: int | None = None) -> None:
        self.intake.start_log(log, log_type, request_id, retries, retry_interval)
