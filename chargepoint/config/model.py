"""The configuration's typed sections and their defaults.

This module owns the defaults; nobody else invents them. The schema is small
dataclasses plus a table of checks (``loader.py``) rather than a validation
framework: the daemon must stay small on a Raspberry Pi and the rules are few
and plain.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chargepoint.config.firmware import DiagnosticsConfig, FirmwareConfig
from chargepoint.config.home import HomeConfig
from chargepoint.config.web import WebConfig

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
    # Export, and single phases of the power and power factor (OCPP: measurand.phase).
    "Power.Active.Export",
    "Current.Export",
    "Power.Active.Import.L1", "Power.Active.Import.L2", "Power.Active.Import.L3",
    "Power.Active.Export.L1", "Power.Active.Export.L2", "Power.Active.Export.L3",
    "Power.Factor.L1", "Power.Factor.L2", "Power.Factor.L3",
)

#: The moments a transaction may begin or end at, in the station's words: the
#: car park's bay detector, the EV plugged in, the driver authorized, both (the
#: power path closed), energy flowing, a signed meter reading (not supported).
TX_POINTS = ("parking_bay_occupied", "ev_connected", "authorized", "power_path_closed", "energy_transfer")
#: The points the station implements (core/tx_points.py): what its pilot, its authorization and its
#: contactor tell. A bay detector and signed meter readings are not fitted: those points are refused
#: (in the file, and when a CSMS sets TxStartPoint / TxStopPoint), never accepted and ignored.
TX_START_POINTS_SUPPORTED = ("ev_connected", "authorized", "power_path_closed", "energy_transfer")
TX_STOP_POINTS_SUPPORTED = ("ev_connected", "authorized", "power_path_closed", "energy_transfer")
#: Connectors the station may have: a Type 2 socket, a tethered Type 2 or Type 1 cable.
CONNECTOR_TYPES = ("type2_socket", "type2_cable", "type1_cable")


#: The OCPP versions this release speaks, in the default order of preference.
OCPP_VERSIONS = ("2.1", "2.0.1", "1.6")


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
    #: Phases the station is wired with (1 or 3), and the mains voltage per phase:
    #: with max_current_a they make the rated power each EVSE reports.
    supply_phases: int = 3
    nominal_voltage_v: float = 230.0
    #: What the EV plugs into (one of CONNECTOR_TYPES).
    connector_type: str = "type2_socket"
    #: A reservation may be for "any connector" (the station keeps one free for it), besides
    #: reservations of one connector; OCPP 1.6 ReserveConnectorZeroSupported.
    reserve_any_connector: bool = False


@dataclass(frozen=True)
class OcppConfig:
    #: The operator's central system; empty = standalone (a home station: no CSMS,
    #: cards from ``chargepoint cards`` or free vend; see core/cards.py).
    csms_url: str = ""
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
    #: 0 = no authentication, 1 = HTTP Basic over ws://, 2 = Basic over TLS (wss://),
    #: 3 = TLS with the station's own client certificate (core/security/certificates.py).
    security_profile: int = 0
    #: The Basic auth password's octets in hex (the file's ``authorization_key``, or its
    #: ``basic_auth_password`` text as UTF-8): 16 to 20 octets from a hex key, 16 to 40 from text.
    authorization_key: str = ""
    #: PEM file of the CA(s) that signed the CSMS's certificate (wss://).
    ca_bundle: str = ""
    response_timeout_s: float = 30.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 300.0
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    #: OCPP 1.6: a new connection of a station the CSMS registered in this run begins with a
    #: BootNotification again (CSMSs that learn a station from it on each connection); False: with
    #: its statuses only (CSMSs that take every BootNotification for a restart).
    boot_on_reconnect: bool = True
    #: When a transaction begins: the first of these moments (TX_POINTS); by default once the EV
    #: is plugged in and the driver authorized (as OCPP 1.6 knows it; used with a 2.0.1 or 2.1 CSMS).
    tx_start_points: tuple[str, ...] = ("power_path_closed",)
    #: When it ends: as soon as one of these no longer holds (the EV unplugged or
    #: the authorization ended).
    tx_stop_points: tuple[str, ...] = ("ev_connected", "authorized")
    #: OCPP versions offered to the CSMS as WebSocket subprotocols, in order of preference;
    #: the CSMS picks one.
    versions: tuple[str, ...] = OCPP_VERSIONS

    @property
    def standalone(self) -> bool:
        """No CSMS configured: nothing is sent anywhere, the local cards decide."""
        return not self.csms_url

    @property
    def tx_points_apply(self) -> bool:
        """``tx_start_points`` / ``tx_stop_points`` are 2.0.1's (and 2.1's) device model: without a
        CSMS, or offering only 1.6, the station begins and ends transactions as 1.6 knows them."""
        return not self.standalone and bool({"2.0.1", "2.1"} & set(self.versions))


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
    #: A simulated phase contactor (hardware.md, "Phase switching: KM2"): the EV gets one or three phases.
    phase_contactor: bool = False


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
    """The safety loop and its supervisor process (``chargepoint supervise``)."""

    tick_s: float = 0.01
    contactor_settle_s: float = 0.2
    ventilation_available: bool = False
    rcd_auto_reclose_attempts: int = 0
    #: How long a charging connector goes on after the daemon's channel drops, so a daemon
    #: restart (an update, a crash) does not end the driver's session; 0 stops at once.
    orphan_grace_s: float = 120.0
    #: The current offered during that grace: no smart-charging or load-management claim
    #: is kept up to date while the daemon is gone, so a cautious cap replaces them.
    orphan_limit_a: float = 16.0
    #: The supervisor's Unix socket; "" = the backend's default (``config.safety_parse.channel_path``).
    channel: str = ""


@dataclass(frozen=True)
class ControlConfig:
    """The local control API: a Unix socket the ``chargepoint`` CLI talks to."""

    #: Where the daemon serves it (a Unix socket; nothing listens on the network).
    socket: str = "/run/chargepoint/control.sock"
    #: Group allowed to use it (mode 0660); if the group does not exist, the daemon's own.
    group: str = "chargepoint"
    enabled: bool = True


@dataclass(frozen=True)
class MqttConfig:
    """Publishing to an MQTT broker (and Home Assistant discovery); off unless enabled."""

    enabled: bool = False
    host: str = "localhost"
    port: int = 1883
    username: str = ""
    #: Never shown: not in ``repr``, masked in ``chargepoint config get``, never logged.
    password: str = field(default="", repr=False)
    #: TLS to the broker; ca_file empty = the system's CA store.
    tls: bool = False
    ca_file: str = ""
    #: A client certificate (PEM) and its key, for brokers that want one (key may be in the cert file).
    client_cert: str = ""
    client_key: str = ""
    #: Topics begin with this; empty = ``chargepoint/<station identity>``.
    topic_prefix: str = ""
    #: Accept commands on topics: start, stop, availability, limit, plan, the solar mode (anyone who may
    #: publish there may use them).
    commands: bool = False
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    #: Meter values and state are published this often (station clock), and at once on a status change.
    interval_s: float = 5.0
    #: Reconnect backoff towards the broker (exponential with jitter, real time).
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    keepalive_s: int = 30
    #: The largest packet the broker may send (KiB, its topic and payload); a bigger one is read past and
    #: dropped, never held in memory (commands are a few hundred bytes).
    max_message_kb: int = 16


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
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    #: The Raspberry Pi board profile (``[board]``, see chargepoint/board.py); None without one.
    board: BoardConfig | None = None
    source: str = "<defaults>"
    #: The web dashboard and metrics (``[web]``, see chargepoint/config/web.py).
    web: WebConfig = field(default_factory=WebConfig)
    #: The dotted keys the file sets (``config get`` tells them from defaults; see config/keys.py).
    file_keys: frozenset[str] = frozenset()
    #: Load management on the main fuse (``[load]``), solar charging (``[solar]``), the simulated house.
    load: LoadConfig = field(default_factory=lambda: LoadConfig())
    solar: SolarConfig = field(default_factory=lambda: SolarConfig())
    house: HouseConfig = field(default_factory=lambda: HouseConfig())
    #: Firmware updates and diagnostics (``[firmware]``, ``[diagnostics]``: chargepoint/config/firmware.py).
    firmware: FirmwareConfig = field(default_factory=FirmwareConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    #: The homeowner's tariff (``[home]``, chargepoint/config/home.py).
    home: HomeConfig = field(default_factory=HomeConfig)



#: Solar charging modes: everything the other limits allow, surplus only, 6 A always plus surplus.
SOLAR_MODES = ("fast", "pv", "minpv", "off")


@dataclass(frozen=True)
class LoadConfig:
    """Load management on the house's main fuse (``[load]``, its grid meter in ``[load.meter]``)."""

    enabled: bool = False
    #: The main fuse's rating per phase, and what is kept free below it.
    main_fuse_a: float = 25.0
    margin_a: float = 1.0
    #: Current per phase the whole station may draw while the grid meter is stale or failing.
    fallback_a: float = 6.0
    #: A grid meter without a good reading for this long is stale: the fallback applies.
    stale_after_s: float = 5.0
    #: The grid meter at the house connection: the same keys as ``[meter]`` (kind, model, bus, unit id).
    meter: MeterConfig = field(default_factory=MeterConfig)


@dataclass(frozen=True)
class SolarConfig:
    """Charging from solar surplus (``[solar]``); pv and minpv need the grid meter of ``[load]``."""

    #: The mode at the first start; ``chargepoint mode`` changes it and the change is kept.
    mode: str = "fast"
    #: pv: export must have covered 6 A on the phases in use this long before charging starts ...
    enable_delay_s: float = 60.0
    #: ... and the surplus must have been short this long before it pauses.
    disable_delay_s: float = 180.0
    #: Fewest seconds between two switches (start or pause) of one connector: the contactor and the car.
    min_switch_interval_s: float = 60.0
    #: pv: while charging, the surplus may fall this far below 6 A (drawn from the grid) before it is short.
    hysteresis_a: float = 1.0


@dataclass(frozen=True)
class HouseConfig:
    """The simulated house behind the simulated grid meter (``[house]``, hal.backend "sim" only)."""

    #: Base load of the house (W), with a morning and an evening peak on top.
    base_load_w: float = 400.0
    #: Peak power of the PV system on a clear day at noon (W).
    pv_peak_w: float = 8000.0
    #: Share of the time clouds cover the sun (0 = clear day), drawn from a seeded generator.
    cloudiness: float = 0.3
    seed: int = 1
    #: Time of day (hours) at which the simulated day begins.
    day_start_h: float = 6.0
    #: How many times faster than the station's clock the house's day runs (the demo compresses a day).
    time_factor: float = 1.0
