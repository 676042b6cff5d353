"""The OCPP 2.0.1 device model of this station, as a table: components, variables, where each value lives.

Every variable the 2.0.1 specification requires of the controllers and the
physical components this station has is here, plus the optional ones the
station has a setting for. A variable is either a view of a neutral setting
(``setting``: the same value 1.6 shows as a configuration key, the CLI and the
store see), or a read-only fact of the station (``fact``: the configuration
file, the firmware, the live status), resolved by ``device_model.DeviceModel``.

Read-only views of settings mirror how the station behaves when 2.0.1 has a
variable 1.6 did not: the readings at the start of a transaction are the
periodic ones (TxStartedMeasurands shows TxUpdatedMeasurands), the readings
kept for the end of a transaction are taken at the periodic and the clock-aligned
intervals (TxEndedInterval shows those), and the security profile changes
only through a network profile (SetNetworkProfile), never through SetVariables.
"""

from __future__ import annotations

from dataclasses import dataclass

from chargepoint.config import MEASURANDS
from chargepoint.config.model import TX_START_POINTS_SUPPORTED, TX_STOP_POINTS_SUPPORTED
from chargepoint.core import display_messages
from chargepoint.core.energy import smart_charging

READ_ONLY = "ReadOnly"
READ_WRITE = "ReadWrite"
WRITE_ONLY = "WriteOnly"

#: Where a component lives: once in the station, once per EVSE, once per connector.
STATION, EVSE, CONNECTOR = "station", "evse", "connector"

#: 2.0.1 TxStartPoint / TxStopPoint words and the station's (config.model.TX_POINTS).
TX_POINT_WORDS = {
    "ParkingBayOccupancy": "parking_bay_occupied",
    "EVConnected": "ev_connected",
    "Authorized": "authorized",
    "PowerPathClosed": "power_path_closed",
    "EnergyTransfer": "energy_transfer",
}
#: 2.0.1 ConnectorEnumType words for the station's connector types (config.model.CONNECTOR_TYPES).
CONNECTOR_WORDS = {"type2_socket": "sType2", "type2_cable": "cType2", "type1_cable": "cType1"}
#: 2.0.1 availability states of a component.
AVAILABILITY_STATES = ("Available", "Occupied", "Reserved", "Unavailable", "Faulted")
#: Most items in one NotifyReport, GetVariables or SetVariables the station sends or takes.
ITEMS_PER_REPORT = 20
ITEMS_PER_REQUEST = 64
#: Longest NotifyReport the station sends; longest frame it takes (the websockets default).
BYTES_PER_REPORT = 8192
BYTES_PER_FRAME = 1 << 20
#: Longest value reported and longest value taken by SetVariables (the schemas' limits).
REPORTING_VALUE_SIZE = 2500
CONFIGURATION_VALUE_SIZE = 1000


@dataclass(frozen=True)
class Variable:
    """One variable of one component (for EVSEs and connectors: of each of them)."""

    component: str
    name: str
    data_type: str
    mutability: str = READ_ONLY
    instance: str | None = None
    scope: str = STATION
    #: The neutral setting behind the value, if any.
    setting: str | None = None
    #: Else the read-only fact the device model computes (a name it knows).
    fact: str | None = None
    unit: str | None = None
    values: tuple[str, ...] | None = None
    min_limit: float | None = None
    max_limit: float | None = None
    attributes: tuple[str, ...] = ("Actual",)
    #: How a value is written on the wire for the setting (see device_model.CODECS).
    codec: str | None = None
    #: The change takes effect at the next restart (or reconnect) only.
    reboot_required: bool = False
    #: A read-only view of a setting another variable of the model writes.
    mirror: bool = False
    #: The value never changes while the station runs (configuration file, firmware).
    constant: bool = False
    #: A required variable of the 2.0.1 specification (the others are optional ones the station has).
    required: bool = True

    @property
    def key(self) -> str:
        """``Component.Variable`` or ``Component.Variable[Instance]`` (without the EVSE)."""
        return f"{self.component}.{self.name}" + (f"[{self.instance}]" if self.instance else "")


def _rw(component: str, name: str, setting: str, data_type: str, **kw: object) -> Variable:
    return Variable(component, name, data_type, READ_WRITE, setting=setting, **kw)  # type: ignore[arg-type]


def _mirror(component: str, name: str, setting: str, data_type: str, **kw: object) -> Variable:
    """A read-only view of a setting that another variable writes (see the module doc)."""
    return Variable(component, name, data_type, setting=setting, mirror=True, **kw)  # type: ignore[arg-type]


def _fact(component: str, name: str, fact: str, data_type: str, **kw: object) -> Variable:
    return Variable(component, name, data_type, fact=fact, **kw)  # type: ignore[arg-type]


#: The points the station implements, in 2.0.1 words (a value outside them is Rejected).
_TX_START = tuple(w for w, p in TX_POINT_WORDS.items() if p in TX_START_POINTS_SUPPORTED)
_TX_STOP = tuple(w for w, p in TX_POINT_WORDS.items() if p in TX_STOP_POINTS_SUPPORTED)
_OPT = {"required": False}

VARIABLES: tuple[Variable, ...] = (
    # OCPPCommCtrlr
    _fact("OCPPCommCtrlr", "FileTransferProtocols", "file_transfer_protocols", "MemberList",
          values=("FTP", "FTPS", "HTTP", "HTTPS", "SFTP"), constant=True),
    _rw("OCPPCommCtrlr", "HeartbeatInterval", "heartbeat_interval_s", "integer", unit="s", **_OPT),
    _fact("OCPPCommCtrlr", "MessageTimeout", "message_timeout_s", "integer", instance="Default", unit="s",
          constant=True),
    _rw("OCPPCommCtrlr", "MessageAttempts", "tx_message_attempts", "integer", instance="TransactionEvent"),
    _rw("OCPPCommCtrlr", "MessageAttemptInterval", "tx_message_retry_interval_s", "integer",
        instance="TransactionEvent", unit="s"),
    _rw("OCPPCommCtrlr", "NetworkConfigurationPriority", "network_priority", "SequenceList",
        reboot_required=True),
    _rw("OCPPCommCtrlr", "NetworkProfileConnectionAttempts", "network_profile_attempts", "integer"),
    _fact("OCPPCommCtrlr", "OfflineThreshold", "offline_threshold_s", "integer", unit="s", constant=True),
    _rw("OCPPCommCtrlr", "ResetRetries", "reset_retries", "integer"),
    _fact("OCPPCommCtrlr", "RetryBackOffRandomRange", "retry_random_range_s", "integer", unit="s",
          constant=True),
    _fact("OCPPCommCtrlr", "RetryBackOffRepeatTimes", "retry_repeat_times", "integer", constant=True),
    _fact("OCPPCommCtrlr", "RetryBackOffWaitMinimum", "retry_wait_minimum_s", "integer", unit="s",
          constant=True),
    _rw("OCPPCommCtrlr", "UnlockOnEVSideDisconnect", "unlock_on_ev_disconnect", "boolean"),
    _rw("OCPPCommCtrlr", "WebSocketPingInterval", "ws_ping_interval_s", "integer", unit="s"),
    # TxCtrlr
    _rw("TxCtrlr", "EVConnectionTimeOut", "connection_timeout_s", "integer", unit="s"),
    _rw("TxCtrlr", "MaxEnergyOnInvalidId", "max_energy_on_invalid_id_wh", "integer", unit="Wh", **_OPT),
    _rw("TxCtrlr", "StopTxOnEVSideDisconnect", "stop_tx_on_ev_disconnect", "boolean"),
    _rw("TxCtrlr", "StopTxOnInvalidId", "stop_tx_on_invalid_id", "boolean"),
    _rw("TxCtrlr", "TxStartPoint", "tx_start_points", "MemberList", values=_TX_START, codec="tx_points"),
    _rw("TxCtrlr", "TxStopPoint", "tx_stop_points", "MemberList", values=_TX_STOP, codec="tx_points"),
    # SampledDataCtrlr
    _mirror("SampledDataCtrlr", "TxEndedInterval", "sample_interval_s", "integer", unit="s"),
    _rw("SampledDataCtrlr", "TxEndedMeasurands", "stop_tx_sampled_measurands", "MemberList",
        values=MEASURANDS),
    _mirror("SampledDataCtrlr", "TxStartedMeasurands", "sampled_measurands", "MemberList", values=MEASURANDS),
    _rw("SampledDataCtrlr", "TxUpdatedInterval", "sample_interval_s", "integer", unit="s"),
    _rw("SampledDataCtrlr", "TxUpdatedMeasurands", "sampled_measurands", "MemberList", values=MEASURANDS),
    # AlignedDataCtrlr
    _rw("AlignedDataCtrlr", "Interval", "aligned_interval_s", "integer", unit="s"),
    _rw("AlignedDataCtrlr", "Measurands", "aligned_measurands", "MemberList", values=MEASURANDS),
    _mirror("AlignedDataCtrlr", "TxEndedInterval", "aligned_interval_s", "integer", unit="s"),
    _rw("AlignedDataCtrlr", "TxEndedMeasurands", "stop_tx_aligned_measurands", "MemberList",
        values=MEASURANDS),
    # AuthCtrlr
    _rw("AuthCtrlr", "AuthorizeRemoteStart", "authorize_remote_start", "boolean"),
    _rw("AuthCtrlr", "LocalAuthorizeOffline", "local_authorize_offline", "boolean"),
    _rw("AuthCtrlr", "LocalPreAuthorize", "local_pre_authorize", "boolean"),
    _rw("AuthCtrlr", "OfflineTxForUnknownIdEnabled", "offline_tx_for_unknown_id", "boolean", **_OPT),
    # AuthCacheCtrlr (all optional: the station has a cache)
    _fact("AuthCacheCtrlr", "Available", "true", "boolean", constant=True, **_OPT),
    _rw("AuthCacheCtrlr", "Enabled", "auth_cache_enabled", "boolean", **_OPT),
    # LocalAuthListCtrlr
    _fact("LocalAuthListCtrlr", "Available", "true", "boolean", constant=True, **_OPT),
    _fact("LocalAuthListCtrlr", "BytesPerMessage", "bytes_per_frame", "integer", constant=True),
    _rw("LocalAuthListCtrlr", "Enabled", "local_list_enabled", "boolean", **_OPT),
    _fact("LocalAuthListCtrlr", "Entries", "local_list_entries", "integer"),
    _fact("LocalAuthListCtrlr", "ItemsPerMessage", "local_list_max", "integer", constant=True),
    # SecurityCtrlr
    Variable("SecurityCtrlr", "BasicAuthPassword", "string", "WriteOnly", setting="authorization_key",
             codec="password", min_limit=16, max_limit=40, required=False),
    _fact("SecurityCtrlr", "CertificateEntries", "certificate_entries", "integer"),
    _rw("SecurityCtrlr", "CertSigningRepeatTimes", "cert_signing_repeat_times", "integer", **_OPT),
    _rw("SecurityCtrlr", "CertSigningWaitMinimum", "cert_signing_wait_minimum_s", "integer", unit="s",
        **_OPT),
    _fact("SecurityCtrlr", "Identity", "identity", "string", constant=True),
    _rw("SecurityCtrlr", "OrganizationName", "organization_name", "string"),
    Variable("SecurityCtrlr", "SecurityProfile", "integer", setting="security_profile"),
    Variable("SecurityCtrlr", "MaxCertificateChainSize", "integer", setting="certificate_chain_max_bytes",
             required=False),
    Variable("SecurityCtrlr", "AdditionalRootCertificateCheck", "boolean",
             setting="additional_root_certificate_check", required=False),
    # DeviceDataCtrlr
    *(_fact("DeviceDataCtrlr", "BytesPerMessage", fact, "integer", instance=instance, constant=True)
      for instance, fact in (("GetReport", "bytes_per_report"), ("GetVariables", "bytes_per_frame"),
                             ("SetVariables", "bytes_per_frame"))),
    _fact("DeviceDataCtrlr", "ConfigurationValueSize", "configuration_value_size", "integer", constant=True,
          **_OPT),
    *(_fact("DeviceDataCtrlr", "ItemsPerMessage", fact, "integer", instance=instance, constant=True)
      for instance, fact in (("GetReport", "items_per_report"), ("GetVariables", "items_per_request"),
                             ("SetVariables", "items_per_request"))),
    _fact("DeviceDataCtrlr", "ReportingValueSize", "reporting_value_size", "integer", constant=True, **_OPT),
    # ClockCtrlr
    _fact("ClockCtrlr", "DateTime", "date_time", "dateTime"),
    _fact("ClockCtrlr", "TimeSource", "time_source", "SequenceList",
          values=("Heartbeat", "NTP", "GPS", "RealTimeClock", "MobileNetwork", "RadioTimeTransmitter"),
          constant=True),
    # SmartChargingCtrlr: the limits of the core's engine (the ones the 1.6 keys show)
    _fact("SmartChargingCtrlr", "Available", "true", "boolean", constant=True, **_OPT),
    _fact("SmartChargingCtrlr", "Enabled", "true", "boolean", constant=True, **_OPT),
    _fact("SmartChargingCtrlr", "Entries", "charging_profile_entries", "integer", instance="ChargingProfiles",
          max_limit=smart_charging.MAX_PROFILES),
    _fact("SmartChargingCtrlr", "LimitChangeSignificance", "limit_change_significance", "decimal",
          constant=True),
    _fact("SmartChargingCtrlr", "PeriodsPerSchedule", "periods_per_schedule", "integer", constant=True),
    _fact("SmartChargingCtrlr", "ProfileStackLevel", "profile_stack_level", "integer", constant=True),
    _fact("SmartChargingCtrlr", "RateUnit", "rate_units", "MemberList", values=("A", "W"), constant=True),
    # ReservationCtrlr (all optional: the station has reservations)
    _fact("ReservationCtrlr", "Available", "true", "boolean", constant=True, **_OPT),
    _fact("ReservationCtrlr", "Enabled", "true", "boolean", constant=True, **_OPT),
    _rw("ReservationCtrlr", "NonEvseSpecific", "reserve_any_connector", "boolean", **_OPT),
    # DisplayMessageCtrlr: the operator's messages (core/display_messages.py, protocol/v201/display.py)
    _fact("DisplayMessageCtrlr", "Available", "true", "boolean", constant=True, **_OPT),
    _rw("DisplayMessageCtrlr", "Enabled", "display_messages_enabled", "boolean", **_OPT),
    _fact("DisplayMessageCtrlr", "DisplayMessages", "display_message_entries", "integer",
          max_limit=display_messages.MAX_MESSAGES),
    _fact("DisplayMessageCtrlr", "SupportedFormats", "display_formats", "MemberList",
          values=("ASCII", "HTML", "URI", "UTF8"), constant=True),
    _fact("DisplayMessageCtrlr", "SupportedPriorities", "display_priorities", "MemberList",
          values=("AlwaysFront", "InFront", "NormalCycle"), constant=True),
    # MonitoringCtrlr: the operator's variable monitors (core/monitoring.py, protocol/v201/monitoring.py)
    _fact("MonitoringCtrlr", "Available", "true", "boolean", constant=True, **_OPT),
    _fact("MonitoringCtrlr", "Enabled", "true", "boolean", constant=True, **_OPT),
    *(_fact("MonitoringCtrlr", "BytesPerMessage", "bytes_per_frame", "integer", instance=i, constant=True)
      for i in ("ClearVariableMonitoring", "SetVariableMonitoring")),
    *(_fact("MonitoringCtrlr", "ItemsPerMessage", "items_per_request", "integer", instance=i, constant=True)
      for i in ("ClearVariableMonitoring", "SetVariableMonitoring")),
    _fact("MonitoringCtrlr", "ActiveMonitoringBase", "monitoring_base", "OptionList",
          values=("All", "FactoryDefault", "HardWiredOnly"), **_OPT),
    _fact("MonitoringCtrlr", "ActiveMonitoringLevel", "monitoring_level", "integer", min_limit=0, max_limit=9,
          **_OPT),
    _rw("MonitoringCtrlr", "OfflineQueuingSeverity", "monitoring_offline_severity", "integer", **_OPT),
    # ChargingStation
    _fact("ChargingStation", "AvailabilityState", "availability_state", "OptionList",
          values=AVAILABILITY_STATES),
    _fact("ChargingStation", "Available", "true", "boolean", constant=True),
    _fact("ChargingStation", "FirmwareVersion", "firmware_version", "string", constant=True, **_OPT),
    _fact("ChargingStation", "Model", "model", "string", constant=True, **_OPT),
    _fact("ChargingStation", "SerialNumber", "serial_number", "string", constant=True, **_OPT),
    _fact("ChargingStation", "SupplyPhases", "supply_phases", "integer", constant=True),
    _fact("ChargingStation", "VendorName", "vendor", "string", constant=True, **_OPT),
    # EVSE (one per EVSE)
    _fact("EVSE", "AvailabilityState", "availability_state", "OptionList", scope=EVSE,
          values=AVAILABILITY_STATES),
    _fact("EVSE", "Available", "true", "boolean", scope=EVSE, constant=True),
    _fact("EVSE", "Power", "power_w", "decimal", scope=EVSE, unit="W", attributes=("Actual", "MaxSet")),
    _fact("EVSE", "SupplyPhases", "supply_phases", "integer", scope=EVSE, constant=True),
    # Connector (one per connector of each EVSE)
    _fact("Connector", "AvailabilityState", "availability_state", "OptionList", scope=CONNECTOR,
          values=AVAILABILITY_STATES),
    _fact("Connector", "Available", "true", "boolean", scope=CONNECTOR, constant=True),
    _fact("Connector", "ConnectorType", "connector_type", "string", scope=CONNECTOR, constant=True),
    # A fault (the hard-wired monitor's variable: see events.py)
    _fact("Connector", "Problem", "problem", "boolean", scope=CONNECTOR, **_OPT),
    _fact("Connector", "SupplyPhases", "supply_phases", "integer", scope=CONNECTOR, constant=True),
)

#: Components that exist once in the station, per EVSE, per connector.
SCOPES: dict[str, str] = {v.component: v.scope for v in VARIABLES}
#: Variable -> the neutral setting it shows (the read-only mirrors left out: they write nothing). With
#: SECRET_VARIABLES, what every station knows of 2.0.1's words whatever it offers (the registry, the
#: names a technician may type): this table, not the device model, which loads where 2.0.1 is offered.
SETTING_VARIABLES: dict[str, str] = {x.key: x.setting for x in VARIABLES if x.setting and not x.mirror}
#: Names whose values are passwords: never reported, masked in recorded frames and logs. Besides
#: the variable, the fields of SetNetworkProfile that carry a VPN or APN password.
SECRET_VARIABLES: tuple[str, ...] = ("SecurityCtrlr.BasicAuthPassword", "BasicAuthPassword", "apnPassword",
                                     "password")
