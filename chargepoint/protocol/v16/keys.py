"""OCPP 1.6 configuration keys: the 1.6 view of the station's neutral settings.

Each writable key is a core setting under its 1.6 name; the read-only keys are
facts of this station that 1.6 asks for (list lengths, the feature profiles).
GetConfiguration and ChangeConfiguration go through this catalogue, and so does
the technician's ``chargepoint config get/set`` when given a 1.6 key, so a
value set through any of them is the same setting with the same rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chargepoint.core.energy import smart_charging
from chargepoint.core.settings import LOCAL_LIST_MAX_LENGTH, MEASURANDS_MAX_LENGTH, SetResult, Settings

GET_CONFIGURATION_MAX_KEYS = 64
FEATURE_PROFILES = ("Core", "FirmwareManagement", "LocalAuthListManagement", "SmartCharging", "Reservation",
                    "RemoteTrigger")
#: ChargingScheduleAllowedChargingRateUnit: amperes and watts (the engine converts watts).
ALLOWED_CHARGING_RATE_UNITS = "Current,Power"

#: 1.6 key -> the neutral setting it shows.
SETTING_KEYS: dict[str, str] = {
    "AllowOfflineTxForUnknownId": "offline_tx_for_unknown_id",
    "AuthorizationCacheEnabled": "auth_cache_enabled",
    "AuthorizationKey": "authorization_key",
    "AuthorizeRemoteTxRequests": "authorize_remote_start",
    "ClockAlignedDataInterval": "aligned_interval_s",
    "ConnectionTimeOut": "connection_timeout_s",
    "ConnectorPhaseRotation": "phase_rotation",
    "HeartbeatInterval": "heartbeat_interval_s",
    "LocalAuthListEnabled": "local_list_enabled",
    "LocalAuthorizeOffline": "local_authorize_offline",
    "LocalPreAuthorize": "local_pre_authorize",
    "MaxEnergyOnInvalidId": "max_energy_on_invalid_id_wh",
    "MeterValuesAlignedData": "aligned_measurands",
    "MeterValuesSampledData": "sampled_measurands",
    "MeterValueSampleInterval": "sample_interval_s",
    "MinimumStatusDuration": "minimum_status_duration_s",
    "ResetRetries": "reset_retries",
    "SecurityProfile": "security_profile",
    "StopTransactionOnEVSideDisconnect": "stop_tx_on_ev_disconnect",
    "StopTransactionOnInvalidId": "stop_tx_on_invalid_id",
    "StopTxnAlignedData": "stop_tx_aligned_measurands",
    "StopTxnSampledData": "stop_tx_sampled_measurands",
    "TransactionMessageAttempts": "tx_message_attempts",
    "TransactionMessageRetryInterval": "tx_message_retry_interval_s",
    "UnlockConnectorOnEVSideDisconnect": "unlock_on_ev_disconnect",
    "WebSocketPingInterval": "ws_ping_interval_s",
    # The security extension's writable key: the Subject O of the station's signing requests.
    "CpoName": "organization_name",
    # The ISO 15118 extension's keys: how a signing request left without a certificate is repeated.
    "CertSigningWaitMinimum": "cert_signing_wait_minimum_s",
    "CertSigningRepeatTimes": "cert_signing_repeat_times",
}
#: Read-only 1.6 keys that show a neutral setting (set in the configuration file, not by the CSMS).
READONLY_SETTING_KEYS: dict[str, str] = {
    "ReserveConnectorZeroSupported": "reserve_any_connector",
    # The security extension's read-only keys (the technician may set them: chargepoint config set).
    "CertificateSignedMaxChainSize": "certificate_chain_max_bytes",
    "CertificateStoreMaxLength": "certificate_store_max_length",
    "AdditionalRootCertificateCheck": "additional_root_certificate_check",
}
#: Keys whose value is a password: never reported, masked in recorded frames.
SECRET_KEYS = ("AuthorizationKey",)
#: AuthorizationKey as the 1.6 security whitepaper bounds it: 16 to 20 octets, in hex.
AUTHORIZATION_KEY_HEX_DIGITS = (32, 40)
#: The reverse: neutral setting -> its 1.6 key.
KEY_OF: dict[str, str] = {setting: key for key, setting in SETTING_KEYS.items()}


class ChangeStatus(StrEnum):
    """ChangeConfiguration's answers (the 1.6 ConfigurationStatus)."""

    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


_CHANGE = {SetResult.ACCEPTED: ChangeStatus.ACCEPTED, SetResult.REJECTED: ChangeStatus.REJECTED,
           SetResult.REBOOT_REQUIRED: ChangeStatus.REBOOT_REQUIRED}


@dataclass(frozen=True)
class KeyInfo:
    key: str
    readonly: bool
    secret: bool
    #: The value as text (None for a write-only secret).
    value: str | None
    #: The neutral setting behind it (None for a read-only 1.6 fact).
    setting: str | None
    kind: str


class KeyCatalogue:
    """The 1.6 configuration keys of one station."""

    def __init__(self, settings: Settings, evse_count: int) -> None:
        self.settings = settings
        self.readonly: dict[str, int | str] = {
            "ChargeProfileMaxStackLevel": smart_charging.MAX_STACK_LEVEL,
            "ChargingScheduleAllowedChargingRateUnit": ALLOWED_CHARGING_RATE_UNITS,
            "ChargingScheduleMaxPeriods": smart_charging.MAX_PERIODS,
            "MaxChargingProfilesInstalled": smart_charging.MAX_PROFILES,
            "ConnectorPhaseRotationMaxLength": evse_count + 1,
            "GetConfigurationMaxKeys": GET_CONFIGURATION_MAX_KEYS,
            "LocalAuthListMaxLength": LOCAL_LIST_MAX_LENGTH,
            "MeterValuesAlignedDataMaxLength": MEASURANDS_MAX_LENGTH,
            "MeterValuesSampledDataMaxLength": MEASURANDS_MAX_LENGTH,
            "NumberOfConnectors": evse_count,
            "SendLocalListMaxLength": LOCAL_LIST_MAX_LENGTH,
            "StopTxnAlignedDataMaxLength": MEASURANDS_MAX_LENGTH,
            "StopTxnSampledDataMaxLength": MEASURANDS_MAX_LENGTH,
            "SupportedFeatureProfiles": ",".join(FEATURE_PROFILES),
            "SupportedFeatureProfilesMaxLength": len(FEATURE_PROFILES),
            **{key: settings.as_text(setting) for key, setting in READONLY_SETTING_KEYS.items()},
        }

    def keys(self) -> list[str]:
        """Every key, in the 1.6 specification's alphabetical order."""
        return sorted([*SETTING_KEYS, *self.readonly], key=str.lower)

    def knows(self, key: str) -> bool:
        return key in SETTING_KEYS or key in self.readonly

    def readable(self) -> list[str]:
        """Keys GetConfiguration reports without being asked (write-only secrets excluded)."""
        return [key for key in self.keys() if not self.info(key).secret]

    def info(self, key: str) -> KeyInfo:
        """What a known key holds (KeyError for an unknown one)."""
        if key in READONLY_SETTING_KEYS:  # read now: the technician may have changed it
            setting = READONLY_SETTING_KEYS[key]
            kind = self.settings.definitions[setting].kind.__name__
            return KeyInfo(key, True, False, self.settings.as_text(setting), setting, kind)
        if key in self.readonly:
            value = self.readonly[key]
            return KeyInfo(key, True, False, str(value), None, type(value).__name__)
        setting = SETTING_KEYS[key]
        definition = self.settings.definitions[setting]
        text = None if definition.secret else self.settings.as_text(setting)
        return KeyInfo(key, False, definition.secret, text, setting, definition.kind.__name__)

    def typed_value(self, key: str) -> int | bool | str | None:
        """The value in its own type (None for a secret)."""
        if key in READONLY_SETTING_KEYS:
            return self.settings.get(READONLY_SETTING_KEYS[key])
        if key in self.readonly:
            return self.readonly[key]
        setting = SETTING_KEYS[key]
        return None if self.settings.definitions[setting].secret else self.settings.get(setting)

    def change(self, key: str, text: str) -> ChangeStatus:
        """ChangeConfiguration: the setting's rules decide, read-only keys are rejected."""
        if key in self.readonly:
            return ChangeStatus.REJECTED
        setting = SETTING_KEYS.get(key)
        if setting is None:
            return ChangeStatus.NOT_SUPPORTED
        if key == "AuthorizationKey" and _authorization_key_refusal(text):
            return ChangeStatus.REJECTED
        return _CHANGE[self.settings.set(setting, text)]

    def refusal(self, key: str, text: str) -> str | None:
        """Why ``change(key, text)`` is rejected, in words (with 1.6 names where they appear)."""
        if key in READONLY_SETTING_KEYS:
            return f"{key} is read-only (the configuration file sets {READONLY_SETTING_KEYS[key]})"
        if key in self.readonly:
            return f"{key} is read-only"
        if key == "AuthorizationKey" and (reason := _authorization_key_refusal(text)):
            return reason
        reason = self.settings.refusal(SETTING_KEYS[key], text)
        if reason is None:
            return None
        for setting, other in KEY_OF.items():  # a guard may name another setting
            reason = reason.replace(setting, other)
        return reason


def _authorization_key_refusal(text: str) -> str | None:
    """1.6 keeps to its own bound (the station's store also holds a 2.0.1 password of up to 40 octets)."""
    low, high = AUTHORIZATION_KEY_HEX_DIGITS
    if low <= len(text) <= high and not len(text) % 2 and all(c in "0123456789abcdefABCDEF" for c in text):
        return None
    return f"must be {low} to {high} hexadecimal digits ({low // 2} to {high // 2} octets)"
