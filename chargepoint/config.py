"""The station's configuration file: one TOML file, checked completely at start.

A technician edits this file on site, so every mistake is reported with the
file, the key and the reason, before anything touches the hardware or the
network. This module owns the defaults; nobody else invents them.

The schema is written as small dataclasses plus a table of checks rather than
with a validation framework: the daemon must stay small on a Raspberry Pi and
the rules are few and plain.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

if TYPE_CHECKING:
    from chargepoint.board import BoardConfig


class ConfigError(Exception):
    """A configuration file that cannot be used, with where and why."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(f"{file}: {key}: {reason}")


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
    version: str = "1.6"
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


class _Reader:
    """Reads one TOML table with type checks that name the offending key."""

    def __init__(self, file: str, table: dict[str, Any], prefix: str) -> None:
        self.file = file
        self.table = table
        self.prefix = prefix
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def fail(self, name: str, reason: str) -> ConfigError:
        return ConfigError(self.file, self.key(name), reason)

    def _get(self, name: str, default: Any, required: bool) -> Any:
        self.used.add(name)
        if name not in self.table:
            if required:
                raise self.fail(name, "is required")
            return default
        return self.table[name]

    def string(self, name: str, default: str = "", *, required: bool = False) -> str:
        value = self._get(name, default, required)
        if not isinstance(value, str):
            raise self.fail(name, f"must be a string, not {type(value).__name__}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, default, False)
        if not isinstance(value, bool):
            raise self.fail(name, f"must be true or false, not {value!r}")
        return value

    def number(
        self, name: str, default: float | None, *, low: float | None = None,
        high: float | None = None, integer: bool = False, optional: bool = False,
    ) -> Any:
        value = self._get(name, default, False)
        if value is None and optional:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(name, f"must be a number, not {value!r}")
        if integer and not float(value).is_integer():
            raise self.fail(name, f"must be a whole number, not {value!r}")
        if low is not None and value < low:
            raise self.fail(name, f"must be at least {low:g}, not {value:g}")
        if high is not None and value > high:
            raise self.fail(name, f"must be at most {high:g}, not {value:g}")
        return int(value) if integer else float(value)

    def string_list(self, name: str, default: tuple[str, ...], allowed: tuple[str, ...]) -> tuple[str, ...]:
        value = self._get(name, list(default), False)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, "must be a list of strings")
        for item in value:
            if item not in allowed:
                raise self.fail(name, f"unknown value {item!r}; allowed: {', '.join(allowed)}")
        return tuple(value)

    def finish(self) -> None:
        unknown = sorted(set(self.table) - self.used)
        if unknown:
            raise self.fail(unknown[0], "unknown key (misspelt?)")


def _table(file: str, data: dict[str, Any], name: str, *, required: bool = False) -> dict[str, Any]:
    if name not in data:
        if required:
            raise ConfigError(file, name, "section is required")
        return {}
    value = data[name]
    if not isinstance(value, dict):
        raise ConfigError(file, name, "must be a table ([" + name + "])")
    return value


def _station(file: str, data: dict[str, Any]) -> StationConfig:
    r = _Reader(file, _table(file, data, "station", required=True), "station")
    identity = r.string("identity", required=True)
    if not identity or any(c in identity for c in "/?#% ") or len(identity) > 48:
        raise r.fail("identity", "must be 1-48 characters without spaces, '/', '?', '#' or '%'")
    cfg = StationConfig(
        identity=identity,
        vendor=r.string("vendor", StationConfig.vendor),
        model=r.string("model", StationConfig.model),
        serial_number=r.string("serial_number", ""),
        max_current_a=r.number("max_current_a", StationConfig.max_current_a, low=6, high=80),
        free_vend=r.boolean("free_vend", False),
        free_vend_id_tag=r.string("free_vend_id_tag", StationConfig.free_vend_id_tag),
        state_dir=r.string("state_dir", StationConfig.state_dir),
        resume_after_power_loss=r.boolean("resume_after_power_loss", False),
        outbox_max_entries=r.number("outbox_max_entries", 10_000, low=100, high=1_000_000, integer=True),
        recreate_corrupt_state=r.boolean("recreate_corrupt_state", False),
        connection_timeout_s=r.number("connection_timeout_s", 60.0, low=1, high=3600),
    )
    for name, limit in (("vendor", 20), ("model", 20), ("serial_number", 25)):
        if len(getattr(cfg, name)) > limit:
            raise r.fail(name, f"must be at most {limit} characters (OCPP BootNotification)")
    if not cfg.free_vend_id_tag or len(cfg.free_vend_id_tag) > 20:
        raise r.fail("free_vend_id_tag", "must be 1-20 characters (OCPP idTag)")
    r.finish()
    return cfg


def _ocpp(file: str, data: dict[str, Any]) -> OcppConfig:
    r = _Reader(file, _table(file, data, "ocpp", required=True), "ocpp")
    url = r.string("csms_url", required=True)
    parsed = urlparse(url)
    if parsed.scheme not in ("ws", "wss") or not parsed.hostname:
        raise r.fail("csms_url", f"must be a ws:// or wss:// URL with a host, not {url!r}")
    version = r.string("version", "1.6")
    if version != "1.6":
        raise r.fail("version", f"unsupported OCPP version {version!r}; supported: 1.6")
    cfg = OcppConfig(
        csms_url=url,
        version=version,
        heartbeat_interval_s=r.number("heartbeat_interval_s", 300, low=1, high=86400, integer=True),
        meter_value_sample_interval_s=r.number(
            "meter_value_sample_interval_s", 60, low=0, high=86400, integer=True
        ),
        meter_values_sampled_data=r.string_list(
            "meter_values_sampled_data", OcppConfig.meter_values_sampled_data, MEASURANDS
        ),
        authorize_remote_tx_requests=r.boolean("authorize_remote_tx_requests", False),
        local_pre_authorize=r.boolean("local_pre_authorize", False),
        local_authorize_offline=r.boolean("local_authorize_offline", True),
        allow_offline_tx_for_unknown_id=r.boolean("allow_offline_tx_for_unknown_id", False),
        authorization_cache_enabled=r.boolean("authorization_cache_enabled", True),
        local_auth_list_enabled=r.boolean("local_auth_list_enabled", True),
        clock_aligned_data_interval_s=r.number(
            "clock_aligned_data_interval_s", 0, low=0, high=86400, integer=True),
        meter_values_aligned_data=r.string_list(
            "meter_values_aligned_data", OcppConfig.meter_values_aligned_data, MEASURANDS),
        stop_txn_sampled_data=r.string_list(
            "stop_txn_sampled_data", OcppConfig.stop_txn_sampled_data, MEASURANDS),
        stop_txn_aligned_data=r.string_list(
            "stop_txn_aligned_data", OcppConfig.stop_txn_aligned_data, MEASURANDS),
        minimum_status_duration_s=r.number("minimum_status_duration_s", 0, low=0, high=3600,
                                           integer=True),
        stop_transaction_on_ev_side_disconnect=r.boolean("stop_transaction_on_ev_side_disconnect", True),
        transaction_message_attempts=r.number("transaction_message_attempts", 3, low=1, high=100,
                                              integer=True),
        transaction_message_retry_interval_s=r.number(
            "transaction_message_retry_interval_s", 10, low=1, high=86400, integer=True),
        security_profile=r.number("security_profile", 0, low=0, high=2, integer=True),
        authorization_key=r.string("authorization_key", ""),
        ca_bundle=r.string("ca_bundle", ""),
        response_timeout_s=r.number("response_timeout_s", 30.0, low=1, high=600),
        reconnect_min_s=r.number("reconnect_min_s", 1.0, low=0.1, high=3600),
        reconnect_max_s=r.number("reconnect_max_s", 300.0, low=0.1, high=86400),
        ping_interval_s=r.number("ping_interval_s", 20.0, low=0, high=3600),
        ping_timeout_s=r.number("ping_timeout_s", 20.0, low=1, high=3600),
    )
    if cfg.reconnect_max_s < cfg.reconnect_min_s:
        raise r.fail("reconnect_max_s", "must not be smaller than reconnect_min_s")
    _check_security(r, cfg, parsed.scheme)
    r.finish()
    return cfg


def _check_security(r: _Reader, cfg: OcppConfig, scheme: str) -> None:
    """The security profile, URL scheme, password and CA bundle must fit together."""
    key = cfg.authorization_key
    if key:
        try:
            octets = bytes.fromhex(key)
        except ValueError:
            raise r.fail("authorization_key", "must be hexadecimal (OCPP AuthorizationKey)") from None
        if not 16 <= len(octets) <= 20:
            raise r.fail("authorization_key", "must be 16 to 20 bytes: 32 to 40 hex digits")
    if cfg.security_profile >= 1 and not key:
        raise r.fail("authorization_key", f"is required with security_profile {cfg.security_profile}")
    if cfg.security_profile == 2 and scheme != "wss":
        raise r.fail("csms_url", "must be wss:// with security_profile 2")
    # Without ca_bundle a wss:// CSMS is checked against the system's CA store.
    if cfg.ca_bundle and not Path(cfg.ca_bundle).is_file():
        raise r.fail("ca_bundle", f"file not found: {cfg.ca_bundle}")


def _connectors(file: str, data: dict[str, Any], station: StationConfig) -> tuple[ConnectorConfig, ...]:
    raw = data.get("connectors", [{"id": 1}])
    if not isinstance(raw, list) or not raw:
        raise ConfigError(file, "connectors", "must be one or more [[connectors]] tables")
    result = []
    for index, table in enumerate(raw):
        if not isinstance(table, dict):
            raise ConfigError(file, f"connectors[{index}]", "must be a table")
        r = _Reader(file, table, f"connectors[{index}]")
        connector = ConnectorConfig(
            id=r.number("id", None, low=1, high=99, integer=True),
            max_current_a=r.number("max_current_a", station.max_current_a, low=6, high=80),
            meter_unit_id=r.number("meter_unit_id", None, low=1, high=247, integer=True, optional=True),
        )
        r.finish()
        if connector.id != index + 1:
            raise r.fail("id", f"connectors must be numbered 1, 2, ... in order; expected {index + 1}")
        result.append(connector)
    return tuple(result)


def _simulation(file: str, data: dict[str, Any]) -> SimulationConfig:
    r = _Reader(file, _table(file, data, "simulation"), "simulation")
    d = SimulationConfig()
    cfg = SimulationConfig(
        speed=r.number("speed", d.speed, low=0.01, high=1000),
        ev_max_current_a=r.number("ev_max_current_a", d.ev_max_current_a, low=6, high=80),
        ev_phases=r.number("ev_phases", d.ev_phases, low=1, high=3, integer=True),
        ev_capacity_wh=r.number("ev_capacity_wh", d.ev_capacity_wh, low=100, high=500_000),
        ev_soc=r.number("ev_soc", d.ev_soc, low=0, high=1),
        cable_ohms=None if r.boolean("tethered", False)
        else r.number("cable_ohms", d.cable_ohms, low=1, high=100_000),
        voltage_v=r.number("voltage_v", d.voltage_v, low=100, high=260),
        driver=r.string("driver", d.driver),
        cycle_charge_s=r.number("cycle_charge_s", d.cycle_charge_s, low=1, high=86400),
        cycle_idle_s=r.number("cycle_idle_s", d.cycle_idle_s, low=1, high=86400),
        driver_card=r.string("driver_card", d.driver_card),
        persist_meter=r.boolean("persist_meter", d.persist_meter),
    )
    if cfg.driver not in ("none", "cycle"):
        raise r.fail("driver", f"unknown driver {cfg.driver!r}; available: none, cycle")
    if cfg.ev_phases == 2:
        raise r.fail("ev_phases", "must be 1 or 3")
    r.finish()
    return cfg


METER_KINDS = ("sim", "sim-modbus", "modbus")
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def _meter(file: str, data: dict[str, Any]) -> MeterConfig:
    from dataclasses import replace

    from hal.meters.registermap import MapError, load_map, shipped_models

    r = _Reader(file, _table(file, data, "meter"), "meter")
    d = MeterConfig()
    cfg = MeterConfig(
        poll_interval_s=r.number("poll_interval_s", d.poll_interval_s, low=0.1, high=3600),
        kind=r.string("kind", d.kind),
        model=r.string("model", d.model),
        map_file=r.string("map_file", d.map_file),
        transport=r.string("transport", d.transport),
        port=r.string("port", d.port),
        baudrate=r.number("baudrate", d.baudrate, integer=True),
        parity=r.string("parity", d.parity),
        stopbits=r.number("stopbits", d.stopbits, low=1, high=2, integer=True),
        host=r.string("host", d.host),
        tcp_port=r.number("tcp_port", d.tcp_port, low=1, high=65535, integer=True),
        unit_id=r.number("unit_id", d.unit_id, low=1, high=247, integer=True),
        timeout_s=r.number("timeout_s", d.timeout_s, low=0.05, high=10),
        retries=r.number("retries", d.retries, low=0, high=5, integer=True),
        max_power_w=r.number("max_power_w", d.max_power_w, low=0, high=1_000_000),
    )
    if cfg.kind not in METER_KINDS:
        raise r.fail("kind", f"unknown meter kind {cfg.kind!r}; known: {', '.join(METER_KINDS)}")
    if cfg.map_file:
        path = Path(cfg.map_file)
        if not path.is_absolute():
            path = Path(file).parent / path
        try:
            load_map(path=path)
        except MapError as exc:
            raise r.fail("map_file", f"register map rejected: {exc}") from None
        cfg = replace(cfg, map_file=str(path))
    elif cfg.model not in shipped_models():
        raise r.fail("model", f"unknown meter model {cfg.model!r}; shipped: "
                     f"{', '.join(sorted(shipped_models()))} (or give map_file)")
    if cfg.transport not in ("rtu", "tcp"):
        raise r.fail("transport", f"must be 'rtu' or 'tcp', not {cfg.transport!r}")
    if cfg.baudrate not in BAUD_RATES:
        raise r.fail("baudrate", f"must be one of {', '.join(map(str, BAUD_RATES))}")
    if cfg.parity not in ("N", "E", "O"):
        raise r.fail("parity", f"must be 'N', 'E' or 'O', not {cfg.parity!r}")
    if cfg.kind == "modbus" and cfg.transport == "tcp" and not cfg.host:
        raise r.fail("host", "is required with transport = 'tcp'")
    if cfg.kind == "modbus" and cfg.transport == "rtu" and not cfg.port:
        raise r.fail("port", "is required with transport = 'rtu'")
    r.finish()
    return cfg


def _safety(file: str, data: dict[str, Any]) -> SafetyConfig:
    r = _Reader(file, _table(file, data, "safety"), "safety")
    d = SafetyConfig()
    cfg = SafetyConfig(
        tick_s=r.number("tick_s", d.tick_s, low=0.001, high=0.05),
        contactor_settle_s=r.number("contactor_settle_s", d.contactor_settle_s, low=0.01, high=2),
        ventilation_available=r.boolean("ventilation_available", d.ventilation_available),
        rcd_auto_reclose_attempts=r.number(
            "rcd_auto_reclose_attempts", d.rcd_auto_reclose_attempts, low=0, high=10, integer=True
        ),
    )
    r.finish()
    return cfg


#: Longest path of a Unix socket (sun_path holds 108 bytes with the final NUL).
SOCKET_PATH_MAX = 107


def _control(file: str, data: dict[str, Any]) -> ControlConfig:
    r = _Reader(file, _table(file, data, "control"), "control")
    d = ControlConfig()
    cfg = ControlConfig(
        socket=r.string("socket", d.socket),
        group=r.string("group", d.group),
        enabled=r.boolean("enabled", d.enabled),
    )
    if not cfg.socket.startswith("/"):
        raise r.fail("socket", f"must be an absolute path, not {cfg.socket!r}")
    if len(cfg.socket.encode()) > SOCKET_PATH_MAX:
        raise r.fail("socket", f"must be at most {SOCKET_PATH_MAX} bytes long (a Unix socket path)")
    if not cfg.group or not all(c.isalnum() or c in "_-." for c in cfg.group):
        raise r.fail("group", f"must be a group name (letters, digits, '_', '-', '.'), not {cfg.group!r}")
    r.finish()
    return cfg


HAL_BACKENDS = ("sim", "raspberrypi")
TOP_LEVEL = ("station", "ocpp", "connectors", "hal", "simulation", "meter", "safety", "control",
             "board")


def _board(file: str, data: dict[str, Any], backend: str) -> BoardConfig | None:
    """The ``[board]`` profile, checked by chargepoint.board; required on the Pi backend."""
    if "board" not in data:
        if backend == "raspberrypi":
            raise ConfigError(file, "board", 'section is required with hal.backend = "raspberrypi"')
        return None
    from chargepoint.board import parse_board

    return parse_board(file, _table(file, data, "board"))


def _check_raspberrypi(file: str, cfg: Config) -> None:
    """What the Raspberry Pi backend needs from the other sections."""
    if cfg.hal_backend != "raspberrypi":
        return
    if len(cfg.connectors) != 1:
        raise ConfigError(file, "connectors", "the raspberrypi board drives one connector; "
                                              f"{len(cfg.connectors)} are configured")
    if cfg.meter.kind != "modbus":
        raise ConfigError(file, "meter.kind", f'must be "modbus" with hal.backend = "raspberrypi" '
                                              f"(a real meter), not {cfg.meter.kind!r}")


def parse(data: dict[str, Any], file: str = "<config>") -> Config:
    """Validate a parsed TOML document and build the configuration."""
    for key in data:
        if key not in TOP_LEVEL:
            raise ConfigError(file, key, f"unknown section; known: {', '.join(TOP_LEVEL)}")
    station = _station(file, data)
    hal = _Reader(file, _table(file, data, "hal"), "hal")
    backend = hal.string("backend", "sim")
    if backend not in HAL_BACKENDS:
        raise hal.fail("backend", f"unknown backend {backend!r}; available: {', '.join(HAL_BACKENDS)}")
    hal.finish()
    config = Config(
        station=station,
        ocpp=_ocpp(file, data),
        connectors=_connectors(file, data, station),
        hal_backend=backend,
        simulation=_simulation(file, data),
        meter=_meter(file, data),
        safety=_safety(file, data),
        control=_control(file, data),
        board=_board(file, data, backend),
        source=file,
    )
    _check_raspberrypi(file, config)
    return config


def load(path: str | Path) -> Config:
    """Read and validate a configuration file; raise ConfigError naming what is wrong."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "-", "file not found") from None
    except OSError as exc:
        raise ConfigError(file, "-", f"cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}") from None
    return parse(data, file)
