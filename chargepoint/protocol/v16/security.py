"""The OCPP 1.6 Security Extension in 1.6 words: certificates, security events, extended triggers.

Handlers (a block the adapter routes to the 1.6 peer) translate the CSMS's
CALLs into calls on the station's security services (``core/security/services.py``)
and the answers back; ``SecuritySession`` runs beside the other senders of a
connection: it delivers the security log's unsent events as
SecurityEventNotification (oldest first, each marked sent once the CSMS has
answered it, so events of an outage arrive after the reconnect; the loop is
``common/security_session.py``'s, shared with 2.0.1) and sends
SignCertificate when the station wants a certificate (renewal, or the CSMS's
ExtendedTriggerMessage SignChargePointCertificate).

ExtendedTriggerMessage reuses the RemoteTrigger machinery (``trigger.py``)
for the messages both know; FirmwareStatusNotification is answered as the
extension's SignedFirmwareStatusNotification and LogStatusNotification with
the GetLog upload in progress (Idle when none runs), as ``signed_firmware.py``
says them.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import after, on
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (
    Action,
    CertificateSignedStatus,
    CertificateStatus,
    CertificateUse,
    DeleteCertificateStatus,
    GenericStatus,
    GetInstalledCertificateStatus,
    MessageTrigger,
    TriggerMessageStatus,
    UploadLogStatus,
)

from chargepoint.core.firmware import FirmwareState, FirmwareStatus
from chargepoint.core.security.certificates import DeleteResult, InstallResult, RootKind
from chargepoint.core.security.pki import HashData
from chargepoint.core.security.security_log import Entry as SecurityLogEntry
from chargepoint.core.security.security_log import SecurityEvent
from chargepoint.core.security.services import Security
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.common.security_session import SecuritySession as CommonSecuritySession
from chargepoint.protocol.common.timefmt import iso_utc
from chargepoint.protocol.v16 import signed_firmware, trigger

log = logging.getLogger(__name__)

#: Neutral event -> the 1.6 security whitepaper's name for it.
EVENT_NAMES: dict[SecurityEvent, str] = {
    SecurityEvent.FIRMWARE_UPDATED: "FirmwareUpdated",
    SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS: "FailedToAuthenticateAtCentralSystem",
    SecurityEvent.CSMS_FAILED_TO_AUTHENTICATE: "CentralSystemFailedToAuthenticate",
    SecurityEvent.SETTING_SYSTEM_TIME: "SettingSystemTime",
    SecurityEvent.STARTUP_OF_THE_DEVICE: "StartupOfTheDevice",
    SecurityEvent.RESET_OR_REBOOT: "ResetOrReboot",
    SecurityEvent.SECURITY_LOG_WAS_CLEARED: "SecurityLogWasCleared",
    SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS: "ReconfigurationOfSecurityParameters",
    SecurityEvent.MEMORY_EXHAUSTION: "MemoryExhaustion",
    SecurityEvent.INVALID_MESSAGES: "InvalidMessages",
    SecurityEvent.ATTEMPTED_REPLAY_ATTACKS: "AttemptedReplayAttacks",
    SecurityEvent.TAMPER_DETECTION_ACTIVATED: "TamperDetectionActivated",
    SecurityEvent.INVALID_FIRMWARE_SIGNATURE: "InvalidFirmwareSignature",
    SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE: "InvalidFirmwareSigningCertificate",
    SecurityEvent.INVALID_CSMS_CERTIFICATE: "InvalidCentralSystemCertificate",
    SecurityEvent.INVALID_STATION_CERTIFICATE: "InvalidChargePointCertificate",
    SecurityEvent.INVALID_TLS_VERSION: "InvalidTLSVersion",
    SecurityEvent.INVALID_TLS_CIPHER_SUITE: "InvalidTLSCipherSuite",
}
_ROOT_KIND = {
    CertificateUse.central_system_root_certificate: RootKind.CSMS,
    CertificateUse.manufacturer_root_certificate: RootKind.MANUFACTURER,
}
_INSTALL = {
    InstallResult.ACCEPTED: CertificateStatus.accepted,
    InstallResult.REJECTED: CertificateStatus.rejected,
    InstallResult.FAILED: CertificateStatus.failed,
}
_DELETE = {
    DeleteResult.ACCEPTED: DeleteCertificateStatus.accepted,
    DeleteResult.FAILED: DeleteCertificateStatus.failed,
    DeleteResult.NOT_FOUND: DeleteCertificateStatus.not_found,
}
#: ExtendedTriggerMessage's messages; the ones RemoteTrigger knows go through ``trigger.py``.
_EXTENDED = {
    MessageTrigger.boot_notification,
    MessageTrigger.firmware_status_notification,
    MessageTrigger.heartbeat,
    MessageTrigger.meter_values,
    MessageTrigger.status_notification,
    MessageTrigger.log_status_notification,
    MessageTrigger.sign_charge_point_certificate,
}


def _security(adapter: Any) -> Security:
    security = adapter.services.security
    if security is None:
        raise OCPPError(description="the station's security services are not running", details={})
    return security  # type: ignore[no-any-return]


def _field(data: dict[str, Any], snake: str, camel: str) -> str:
    return str(data.get(snake, data.get(camel, "")))


class SecurityHandlers(Block[BlockContext]):
    """The 1.6 security extension's block, routed to the 1.6 peer by the adapter."""


    @on(Action.install_certificate, skip_schema_validation=True)
    async def on_install_certificate(self, certificate_type: str, certificate: str) -> Any:
        result = await _security(self.context).install_root(
            _ROOT_KIND[CertificateUse(certificate_type)], certificate
        )
        return call_result.InstallCertificate(status=_INSTALL[result])

    @on(Action.delete_certificate, skip_schema_validation=True)
    async def on_delete_certificate(self, certificate_hash_data: dict[str, Any]) -> Any:
        d = certificate_hash_data
        wanted = HashData(
            _field(d, "hash_algorithm", "hashAlgorithm"),
            _field(d, "issuer_name_hash", "issuerNameHash"),
            _field(d, "issuer_key_hash", "issuerKeyHash"),
            _field(d, "serial_number", "serialNumber"),
        )
        result = await _security(self.context).delete_root(wanted)
        return call_result.DeleteCertificate(status=_DELETE[result])

    @on(Action.get_installed_certificate_ids, skip_schema_validation=True)
    async def on_get_installed_certificate_ids(self, certificate_type: str) -> Any:
        ids = await _security(self.context).installed_ids(_ROOT_KIND[CertificateUse(certificate_type)])
        if not ids:
            return call_result.GetInstalledCertificateIds(status=GetInstalledCertificateStatus.not_found)
        return call_result.GetInstalledCertificateIds(
            status=GetInstalledCertificateStatus.accepted,
            certificate_hash_data=[
                {
                    "hashAlgorithm": h.algorithm,
                    "issuerNameHash": h.issuer_name_hash,
                    "issuerKeyHash": h.issuer_key_hash,
                    "serialNumber": h.serial_number,
                }
                for h in ids
            ],
        )

    @on(Action.certificate_signed, skip_schema_validation=True)
    async def on_certificate_signed(self, certificate_chain: str) -> Any:
        accepted = await _security(self.context).accept_certificate(certificate_chain)
        return call_result.CertificateSigned(
            status=CertificateSignedStatus.accepted if accepted else CertificateSignedStatus.rejected
        )

    @on(Action.extended_trigger_message, skip_schema_validation=True)
    def on_extended_trigger_message(self, requested_message: str, connector_id: int | None = None) -> Any:
        if requested_message not in _EXTENDED:
            status = TriggerMessageStatus.not_implemented
        elif (
            requested_message == MessageTrigger.sign_charge_point_certificate
            and self.context.services.security is None
        ):
            status = TriggerMessageStatus.rejected
        elif trigger.connectors_for(self.context, requested_message, connector_id) is None:
            status = TriggerMessageStatus.rejected
        else:
            status = TriggerMessageStatus.accepted
        return call_result.ExtendedTriggerMessage(status=status)

    @after(Action.extended_trigger_message)
    def after_extended_trigger_message(self, requested_message: str, connector_id: int | None = None) -> None:
        if requested_message not in _EXTENDED:
            return
        connectors = trigger.connectors_for(self.context, requested_message, connector_id)
        if connectors is None:
            return
        if requested_message == MessageTrigger.sign_charge_point_certificate:
            if self.context.services.security is not None:
                self.context.security_session.want_certificate()
            return
        services = self.context.services
        if requested_message == MessageTrigger.log_status_notification:
            if services.diagnostics is None:  # no uploads set up, so none runs: Idle, truly
                request = call.LogStatusNotification(status=UploadLogStatus.idle, request_id=None)
            else:
                request = signed_firmware.log_notification(services.diagnostics.activity(), True)
            self.context.send_triggered(request)
            return
        if requested_message == MessageTrigger.firmware_status_notification:
            idle = FirmwareState(FirmwareStatus.IDLE)  # no updates set up, so none runs
            state = services.firmware.activity() if services.firmware is not None else idle
            self.context.send_triggered(signed_firmware.signed_notification(state, True))
            return
        for request, then in trigger.requests(self.context, requested_message, connectors):
            self.context.send_triggered(request, then)


class SecuritySession(CommonSecuritySession):
    """The security senders of one 1.6 connection (``common/security_session.py``) in 1.6 words."""

    def event_request(self, entry: SecurityLogEntry) -> Any:
        return call.SecurityEventNotification(
            type=EVENT_NAMES[entry.kind], timestamp=iso_utc(entry.at), tech_info=entry.info or None
        )

    def csr_request(self, csr: str) -> Any:
        return call.SignCertificate(csr=csr)

    def csr_accepted(self, result: Any) -> bool:
        return bool(result.status == GenericStatus.accepted)
