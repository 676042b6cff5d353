"""OCPP 2.0.1 certificate management (A02-A03, M03-M05) and security events (A04), in 2.0.1 words.

The same station security services as 1.6 (``core/security/services.py``): the
handlers (a block the adapter routes to the 2.0.1 peer) translate the CSMS's
CALLs into calls on them and the answers back; ``SecuritySession`` runs beside
the other senders of an accepted connection and delivers the security log's
unsent events as SecurityEventNotification and SignCertificate requests (the
loop is ``common/security_session.py``'s, the one 1.6 uses, over the same
log). The station manages the CSMS and manufacturer roots and its own
ChargingStationCertificate; the ISO 15118 kinds (V2G, MO) it has no use for
are refused (Rejected) or reported as none installed.
"""

from __future__ import annotations

from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import (
    Action,
    CertificateSignedStatusEnumType,
    CertificateSigningUseEnumType,
    DeleteCertificateStatusEnumType,
    GenericStatusEnumType,
    GetCertificateIdUseEnumType,
    GetInstalledCertificateStatusEnumType,
    InstallCertificateStatusEnumType,
    MessageTriggerEnumType,
    TriggerMessageStatusEnumType,
)

from chargepoint.core.security.certificates import DeleteResult, InstallResult, RootKind
from chargepoint.core.security.pki import HashData
from chargepoint.core.security.security_log import Entry, SecurityEvent
from chargepoint.core.security.services import Security
from chargepoint.core.services import Services
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.common.security_session import SecuritySession as CommonSecuritySession
from chargepoint.protocol.common.timefmt import iso_utc

#: Neutral event -> the 2.0.1 security event's type word (the specification's list of security events).
EVENT_TYPES: dict[SecurityEvent, str] = {
    SecurityEvent.FIRMWARE_UPDATED: "FirmwareUpdated",
    SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS: "FailedToAuthenticateAtCsms",
    SecurityEvent.CSMS_FAILED_TO_AUTHENTICATE: "CsmsFailedToAuthenticate",
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
    SecurityEvent.INVALID_CSMS_CERTIFICATE: "InvalidCsmsCertificate",
    SecurityEvent.INVALID_STATION_CERTIFICATE: "InvalidChargingStationCertificate",
    SecurityEvent.INVALID_TLS_VERSION: "InvalidTLSVersion",
    SecurityEvent.INVALID_TLS_CIPHER_SUITE: "InvalidTLSCipherSuite",
}
#: The 2.0.1 certificate types the station keeps, as the core's root kinds.
ROOT_KINDS = {
    GetCertificateIdUseEnumType.csms_root_certificate.value: RootKind.CSMS,
    GetCertificateIdUseEnumType.manufacturer_root_certificate.value: RootKind.MANUFACTURER,
}
_INSTALL = {
    InstallResult.ACCEPTED: InstallCertificateStatusEnumType.accepted,
    InstallResult.REJECTED: InstallCertificateStatusEnumType.rejected,
    InstallResult.FAILED: InstallCertificateStatusEnumType.failed,
}
_DELETE = {
    DeleteResult.ACCEPTED: DeleteCertificateStatusEnumType.accepted,
    DeleteResult.FAILED: DeleteCertificateStatusEnumType.failed,
    DeleteResult.NOT_FOUND: DeleteCertificateStatusEnumType.not_found,
}


def _security(adapter: Any) -> Security:
    security = adapter.services.security
    if security is None:
        raise OCPPError(description="the station's security services are not running", details={})
    return security  # type: ignore[no-any-return]


def _field(data: dict[str, Any], snake: str, camel: str) -> str:
    return str(data.get(snake, data.get(camel, "")))


def _hash_data(h: HashData) -> dict[str, str]:
    return {"hash_algorithm": h.algorithm, "issuer_name_hash": h.issuer_name_hash,
            "issuer_key_hash": h.issuer_key_hash, "serial_number": h.serial_number}


class SecurityHandlers(Block[BlockContext]):
    """The 2.0.1 certificate block (A, M); the Core TriggerMessage handler asks
    ``security_trigger`` / ``after_security_trigger`` about SignChargingStationCertificate."""


    @on(Action.install_certificate, skip_schema_validation=True)
    async def on_install_certificate(self, certificate_type: str, certificate: str, **_: Any) -> Any:
        kind = ROOT_KINDS.get(certificate_type)
        if kind is None:  # V2G and MO roots: no ISO 15118 on this station
            return call_result.InstallCertificate(status=InstallCertificateStatusEnumType.rejected)
        result = await _security(self.context).install_root(kind, certificate)
        return call_result.InstallCertificate(status=_INSTALL[result])

    @on(Action.delete_certificate, skip_schema_validation=True)
    async def on_delete_certificate(self, certificate_hash_data: dict[str, Any], **_: Any) -> Any:
        d = certificate_hash_data
        wanted = HashData(_field(d, "hash_algorithm", "hashAlgorithm"),
                          _field(d, "issuer_name_hash", "issuerNameHash"),
                          _field(d, "issuer_key_hash", "issuerKeyHash"),
                          _field(d, "serial_number", "serialNumber"))
        result = await _security(self.context).delete_root(wanted)
        return call_result.DeleteCertificate(status=_DELETE[result])

    @on(Action.get_installed_certificate_ids, skip_schema_validation=True)
    async def on_get_installed_certificate_ids(self, certificate_type: list[str] | None = None,
                                               **_: Any) -> Any:
        wanted = certificate_type or list(ROOT_KINDS)  # none asked for: every type
        security = _security(self.context)
        chain = [{"certificate_type": word, "certificate_hash_data": _hash_data(h)}
                 for word in wanted if word in ROOT_KINDS
                 for h in await security.installed_ids(ROOT_KINDS[word])]
        if not chain:
            return call_result.GetInstalledCertificateIds(
                status=GetInstalledCertificateStatusEnumType.notFound)
        return call_result.GetInstalledCertificateIds(
            status=GetInstalledCertificateStatusEnumType.accepted, certificate_hash_data_chain=chain)

    @on(Action.certificate_signed, skip_schema_validation=True)
    async def on_certificate_signed(self, certificate_chain: str, certificate_type: str | None = None,
                                    **_: Any) -> Any:
        if certificate_type not in (None, CertificateSigningUseEnumType.charging_station_certificate):
            return call_result.CertificateSigned(status=CertificateSignedStatusEnumType.rejected)
        accepted = await _security(self.context).accept_certificate(certificate_chain,
                                                                     check_organization=True)
        return call_result.CertificateSigned(status=CertificateSignedStatusEnumType.accepted if accepted
                                             else CertificateSignedStatusEnumType.rejected)

def security_trigger(services: Services, requested: str) -> TriggerMessageStatusEnumType | None:
    """TriggerMessage's answer for the security messages; None for the others."""
    if requested != MessageTriggerEnumType.sign_charging_station_certificate:
        return None
    if services.security is None:
        return TriggerMessageStatusEnumType.rejected
    return TriggerMessageStatusEnumType.accepted


def after_security_trigger(context: BlockContext, requested: str) -> bool:
    """Send what a TriggerMessage for a security message asked for; False if it was not one."""
    if requested != MessageTriggerEnumType.sign_charging_station_certificate:
        return False
    if context.services.security is not None:
        context.security_session.want_certificate()
    return True


class SecuritySession(CommonSecuritySession):
    """The security senders of one 2.0.1 connection in 2.0.1 words."""

    def event_request(self, entry: Entry) -> Any:
        return call.SecurityEventNotification(type=EVENT_TYPES[entry.kind], timestamp=iso_utc(entry.at),
                                              tech_info=entry.info or None)

    def csr_request(self, csr: str) -> Any:
        return call.SignCertificate(csr=csr,
                                    certificate_type=CertificateSigningUseEnumType.charging_station_certificate)

    def csr_accepted(self, result: Any) -> bool:
        return bool(result.status == GenericStatusEnumType.accepted)
