"""The configuration's typed sections and their defaults.

This module owns the defaults; nobody else invents them. The schema is small
dataclasses plus a table of checks (``loader.py``) rather than a validation
framework: the daemon must stay small on a Raspberry Pi and the rules are few
and plain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chargepoint.config.board import BoardConfig


MEASURANDS = (
    "Energy.Active.Import.Register",
    "Energy.Active.Export.Register",
    "Power.Active.Import",
    "Current.Import",
    "Current.Offered",
    "Voltage",
    "Frequency",
    "Power.Factor",
)


#: The OCPP versions this release speaks, in the default order of preference.
OCPP_VERSIONS = ("2.0.1", "1.6")


@dataclass(frozen=True)
class StationConfig:
    identity: str
    vendor: str = "chargepoint"
    model: str = "Pi AC"
    serial_number: str = ""
    max_current_a: float = 32.0
    free_vend: bool = False
    free_vend_id_tag: str = "FREEVEND"
    #: Where the state database lives (transactions and their messages, settings
    #: changed by the CSMS, availability, local authorization).
    state_dir: str = "/var/lib/chargepoint"
    #: After a power cut, carry on a transaction whose EV is still plugged in
    #: (instead of stopping it with reason PowerLoss).
    resume_after_power_loss: bool = False
    #: Most transaction messages kept while the CSMS is unreachable.
    outbox_max_entries: int = 10_000
    #: A corrupt state database: refuse to start (False) or set it aside and start afresh.
    recreate_corrupt_state: bool = False
    #: How long an authorization waits for the EV to be plugged in (or a
    #: plugged EV for an authorization) before it lapses; OCPP ConnectionTimeOut.
    connection_timeout_s: float = 60.0


@dataclass(frozen=True)
class OcppConfig:
    csms_url: str
    #: The preferred version (the first of ``versions``).
    version: str = "2.0.1"
    heartbeat_interval_s: int = 300
    meter_value_sample_interval_s: int = 60
    meter_values_sampled_data: tuple[str, ...] = (
        "Energy.Active.Import.Register",
        "Power.Active.Import",
        "Current.Import",
    )
    authorize_remote_tx_requests: bool = False
    #: Offline behaviour (see chargepoint/authorization.py).
    local_pre_authorize: bool = False
    local_authorize_offline: bool = True
    allow_offline_tx_for_unknown_id: bool = False
    authorization_cache_enabled: bool = True
    local_auth_list_enabled: bool = True
    clock_aligned_data_interval_s: int = 0
    meter_values_aligned_data: tuple[str, ...] = ("Energy.Active.Import.Register",)
    stop_txn_sampled_data: tuple[str, ...] = ("Energy.Active.Import.Register",)
    stop_txn_aligned_data: tuple[str, ...] = ()
    minimum_status_duration_s: int = 0
    stop_transaction_on_ev_side_disconnect: bool = True
    transaction_message_attempts: int = 3
    transaction_message_retry_interval_s: int = 10
    #: 0 = no authentication, 1 = HTTP Basic over ws://, 2 = Basic over TLS (wss://).
    security_profile: int = 0
    #: Basic auth password as OCPP defines AuthorizationKey: 32-40 hex digits.
    authorization_key: str = ""
    #: PEM file of the CA(s) that signed the CSMS's certificate (wss://).
    ca_bundle: str = ""
    response_timeout_s: float = 30.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 300.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    #: OCPP versions offered to the CSMS as WebSocket subprotocols, in order of preference;
    #: the CSMS picks one.
    versions: tuple[str, ...] = OCPP_VERSIONS


@dataclass(frozen=True)
class ConnectorConfig:
    id: int
    max_current_a: float = 32.0
    #: Modbus unit id of this connector's meter (None: meter.unit_id + id - 1).
    meter_unit_id: int | None = None


@dataclass(frozen=True)
class SimulationConfig:
    """The simulated hardware used with ``hal.backend = "sim"``."""

    speed: float = 1.0
    ev_max_current_a: float = 16.0
    ev_phases: int = 3
    ev_capacity_wh: float = 60_000.0
    ev_soc: float = 0.5
    cable_ohms: float | None = 220.0
    voltage_v: float = 230.0
    #: "none": EVs come when a test, the demo or a technician says so;
    #: "cycle": a driver plugs in, charges cycle_charge_s, leaves for cycle_idle_s, again.
    driver: str = "none"
    cycle_charge_s: float = 300.0
    cycle_idle_s: float = 60.0
    #: Card the cycling driver taps to start and end (empty: rely on free vend).
    driver_card: str = ""
    #: Keep the simulated meter's register in state_dir across restarts, as a
    #: real meter keeps it through a power cut.
    persist_meter: bool = True


@dataclass(frozen=True)
class MeterConfig:
    """The energy meter(s): the simulation's, or a Modbus meter of a mapped model."""

    poll_interval_s: float = 1.0
    #: "sim": the physical simulation's meter; "sim-modbus": the same values
    #: served by a simulated Modbus TCP meter on loopback and read through the
    #: real driver; "modbus": a real meter on RS-485 (RTU) or Modbus TCP.
    kind: str = "sim"
    #: A shipped register map (``chargepoint meter --list``), unless map_file is set.
    model: str = "sdm630"
    #: A register map of one's own (TOML, same format as the shipped ones).
    map_file: str = ""
    transport: str = "rtu"
    port: str = "/dev/ttyUSB0"
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    host: str = ""
    tcp_port: int = 502
    #: Unit id of connector 1's meter; connector N uses unit_id + N - 1
    #: unless its [[connectors]] table sets meter_unit_id.
    unit_id: int = 1
    timeout_s: float = 0.5
    #: Extra attempts of a request that got no or a garbled answer.
    retries: int = 1
    #: Most power the metered circuit can draw, for the plausibility check of
    #: the import register; 0 = the connector's rating on 3 phases at 253 V.
    max_power_w: float = 0.0


@dataclass(frozen=True)
class SafetyConfig:
    tick_s: float = 0.01
    contactor_settle_s: float = 0.2
    ventilation_available: bool = False
    rcd_auto_reclose_attempts: int = 0


@dataclass(frozen=True)
class ControlConfig:
    """The local control API: a Unix socket the ``chargepoint`` CLI talks to."""

    #: Where the daemon serves it (a Unix socket; nothing listens on the network).
    socket: str = "/run/chargepoint/control.sock"
    #: Group allowed to use it (mode 0660); if the group does not exist, the daemon's own.
    group: str = "chargepoint"
    enabled: bool = True


@dataclass(frozen=True)
class Config:
    station: StationConfig
    ocpp: OcppConfig
    connectors: tuple[ConnectorConfig, ...]
    hal_backend: str = "sim"
    simulation: SimulationConfig = field(default_factory=SimulationConfig)
    meter: MeterConfig = field(default_factory=MeterConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    control: ControlConfig = field(default_factory=ControlConfig)
    #: The Raspberry Pi board profile (``[board]``, see chargepoint/board.py); None without one.
    board: BoardConfig | None = None
    source: str = "<defaults>"
