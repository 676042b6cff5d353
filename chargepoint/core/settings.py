"""Run-time settings the operator can read and change (OCPP configuration keys).

One store with typed definitions: the 1.6 adapter shows it as configuration
keys, a 2.0.1 adapter would show the same values as device-model variables.
Initial values come from the configuration file; values the CSMS changes are
written to the state database and win over the file after a restart, as OCPP
expects of ChangeConfiguration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from chargepoint.config import MEASURANDS, Config


class SetResult(StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


Value = int | bool | str

#: Longest comma-separated measurand lists the station accepts.
MEASURANDS_MAX_LENGTH = len(MEASURANDS)
GET_CONFIGURATION_MAX_KEYS = 64
PHASE_ROTATIONS = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")
FEATURE_PROFILES = ("Core", "LocalAuthListManagement")
#: Longest local authorization list, and most entries in one SendLocalList.
LOCAL_LIST_MAX_LENGTH = 10_000


@dataclass(frozen=True)
class Definition:
    """A setting's name, type and rules."""

    name: str
    kind: type  # int, bool or str (comma-separated lists are str)
    readonly: bool = False
    low: int | None = None
    high: int | None = None
    #: For comma-separated lists: the allowed items and the longest list.
    allowed: tuple[str, ...] | None = None
    max_items: int | None = None
    reboot_required: bool = False
    #: Write-only: never reported back (the Basic auth password).
    secret: bool = False
    check: Callable[[str], bool] | None = None


def _hex_key(text: str) -> bool:
    """AuthorizationKey: 16 to 20 octets written as 32 to 40 hex digits."""
    if not 32 <= len(text) <= 40 or len(text) % 2:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _phase_rotation(text: str) -> bool:
    for item in filter(None, (i.strip() for i in text.split(","))):
        connector, _, rotation = item.partition(".")
        if not connector.isdigit() or rotation not in PHASE_ROTATIONS:
            return False
    return True


def _definitions(connectors: int) -> list[Definition]:
    lists = dict(allowed=MEASURANDS, max_items=MEASURANDS_MAX_LENGTH)
    return [
        Definition("AllowOfflineTxForUnknownId", bool),
        Definition("AuthorizationCacheEnabled", bool),
        Definition("AuthorizationKey", str, secret=True, check=_hex_key),
        Definition("AuthorizeRemoteTxRequests", bool),
        Definition("ClockAlignedDataInterval", int, low=0, high=86400),
        Definition("ConnectionTimeOut", int, low=1, high=3600),
        Definition("ConnectorPhaseRotation", str, check=_phase_rotation),
        Definition("ConnectorPhaseRotationMaxLength", int, readonly=True),
        Definition("GetConfigurationMaxKeys", int, readonly=True),
        Definition("HeartbeatInterval", int, low=1, high=86400),
        Definition("LocalAuthListEnabled", bool),
        Definition("LocalAuthListMaxLength", int, readonly=True),
        Definition("LocalAuthorizeOffline", bool),
        Definition("LocalPreAuthorize", bool),
        Definition("MeterValuesAlignedData", str, **lists),
        Definition("MeterValuesAlignedDataMaxLength", int, readonly=True),
        Definition("MeterValuesSampledData", str, **lists),
        Definition("MeterValuesSampledDataMaxLength", int, readonly=True),
        Definition("MeterValueSampleInterval", int, low=0, high=86400),
        Definition("MinimumStatusDuration", int, low=0, high=3600),
        Definition("NumberOfConnectors", int, readonly=True),
        Definition("ResetRetries", int, low=0, high=10),
        Definition("SecurityProfile", int, low=0, high=3),
        Definition("SendLocalListMaxLength", int, readonly=True),
        Definition("StopTransactionOnEVSideDisconnect", bool),
        Definition("StopTransactionOnInvalidId", bool),
        Definition("StopTxnAlignedData", str, **lists),
        Definition("StopTxnAlignedDataMaxLength", int, readonly=True),
        Definition("StopTxnSampledData", str, **lists),
        Definition("StopTxnSampledDataMaxLength", int, readonly=True),
        Definition("SupportedFeatureProfiles", str, readonly=True),
        Definition("SupportedFeatureProfilesMaxLength", int, readonly=True),
        Definition("TransactionMessageAttempts", int, low=1, high=100),
        Definition("TransactionMessageRetryInterval", int, low=1, high=86400),
        Definition("UnlockConnectorOnEVSideDisconnect", bool),
        Definition("WebSocketPingInterval", int, low=0, high=3600),
    ]


def initial_values(config: Config) -> dict[str, Value]:
    """The settings as the configuration file sets them."""
    o = config.ocpp
    n = len(config.connectors)
    return {
        "AllowOfflineTxForUnknownId": o.allow_offline_tx_for_unknown_id,
        "AuthorizationCacheEnabled": o.authorization_cache_enabled,
        "AuthorizationKey": o.authorization_key,
        "AuthorizeRemoteTxRequests": o.authorize_remote_tx_requests,
        "ClockAlignedDataInterval": o.clock_aligned_data_interval_s,
        "ConnectionTimeOut": int(config.station.connection_timeout_s),
        "ConnectorPhaseRotation": ",".join(f"{c.id}.Unknown" for c in config.connectors),
        "ConnectorPhaseRotationMaxLength": n + 1,
        "GetConfigurationMaxKeys": GET_CONFIGURATION_MAX_KEYS,
        "HeartbeatInterval": o.heartbeat_interval_s,
        "LocalAuthListEnabled": o.local_auth_list_enabled,
        "LocalAuthListMaxLength": LOCAL_LIST_MAX_LENGTH,
        "LocalAuthorizeOffline": o.local_authorize_offline,
        "LocalPreAuthorize": o.local_pre_authorize,
        "MeterValuesAlignedData": ",".join(o.meter_values_aligned_data),
        "MeterValuesAlignedDataMaxLength": MEASURANDS_MAX_LENGTH,
        "MeterValuesSampledData": ",".join(o.meter_values_sampled_data),
        "MeterValuesSampledDataMaxLength": MEASURANDS_MAX_LENGTH,
        "MeterValueSampleInterval": o.meter_value_sample_interval_s,
        "MinimumStatusDuration": o.minimum_status_duration_s,
        "NumberOfConnectors": n,
        "ResetRetries": 1,
        "SecurityProfile": o.security_profile,
        "SendLocalListMaxLength": LOCAL_LIST_MAX_LENGTH,
        "StopTransactionOnEVSideDisconnect": o.stop_transaction_on_ev_side_disconnect,
        "StopTransactionOnInvalidId": True,
        "StopTxnAlignedData": ",".join(o.stop_txn_aligned_data),
        "StopTxnAlignedDataMaxLength": MEASURANDS_MAX_LENGTH,
        "StopTxnSampledData": ",".join(o.stop_txn_sampled_data),
        "StopTxnSampledDataMaxLength": MEASURANDS_MAX_LENGTH,
        "SupportedFeatureProfiles": ",".join(FEATURE_PROFILES),
        "SupportedFeatureProfilesMaxLength": len(FEATURE_PROFILES),
        "TransactionMessageAttempts": o.transaction_message_attempts,
        "TransactionMessageRetryInterval": o.transaction_message_retry_interval_s,
        "UnlockConnectorOnEVSideDisconnect": True,
        "WebSocketPingInterval": int(o.ping_interval_s),
    }


class Settings:
    """Typed key/value settings with validation on every write."""

    def __init__(self, config: Config) -> None:
        self.definitions = {d.name: d for d in _definitions(len(config.connectors))}
        self._values: dict[str, Value] = initial_values(config)
        #: Called as ``listener(name, value)`` after every accepted change.
        self.listeners: list[Callable[[str, Value], None]] = []
        #: Extra rule for a write: return a reason to refuse it, or None.
        self.guards: dict[str, Callable[[Value], str | None]] = {}

    def restore(self, stored: dict[str, str]) -> None:
        """Take back values the CSMS set before a restart (they win over the file).

        A stored value that this release no longer accepts is skipped: the
        file's value stands, rather than the daemon refusing to start.
        """
        for name, text in stored.items():
            definition = self.definitions.get(name)
            if definition is not None and not definition.readonly:
                value = self._parse(definition, text)
                if value is not None:
                    self._values[name] = value

    def get(self, name: str) -> Value:
        return self._values[name]

    def csl(self, name: str) -> list[str]:
        """A comma-separated list setting as a list."""
        value = str(self._values[name])
        return [item.strip() for item in value.split(",") if item.strip()]

    def set(self, name: str, text: str) -> SetResult:
        """Change a setting from its text form, as the CSMS sends it."""
        definition = self.definitions.get(name)
        if definition is None:
            return SetResult.NOT_SUPPORTED
        if definition.readonly:
            return SetResult.REJECTED
        value = self._parse(definition, text)
        if value is None:
            return SetResult.REJECTED
        guard = self.guards.get(name)
        if guard is not None and guard(value) is not None:
            return SetResult.REJECTED
        self._values[name] = value
        for listener in list(self.listeners):
            listener(name, value)
        return SetResult.REBOOT_REQUIRED if definition.reboot_required else SetResult.ACCEPTED

    @staticmethod
    def _parse(d: Definition, text: str) -> Value | None:
        text = text.strip()
        if d.kind is bool:
            return {"true": True, "false": False}.get(text.lower())
        if d.kind is int:
            try:
                number = int(text)
            except ValueError:
                return None
            if (d.low is not None and number < d.low) or (d.high is not None and number > d.high):
                return None
            return number
        if d.check is not None and not d.check(text):
            return None
        if d.allowed is not None:
            items = [item.strip() for item in text.split(",") if item.strip()]
            if any(item not in d.allowed for item in items):
                return None
            if d.max_items is not None and len(items) > d.max_items:
                return None
            return ",".join(items)
        return text

    def as_text(self, name: str) -> str:
        value = self._values[name]
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def readable(self) -> list[str]:
        """Names GetConfiguration may report (write-only secrets excluded)."""
        return [name for name, d in self.definitions.items() if not d.secret]
