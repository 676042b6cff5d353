"""The station's configuration file: one TOML file, checked completely at start.

A technician edits this file on site, so every mistake is reported with the
file, the key and the reason, before anything touches the hardware or the
network.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from chargepoint.config.board import BoardConfig
from chargepoint.config.board_parse import check_phase_contactor, parse_board
from chargepoint.config.csms_url import PLACEHOLDER, url_problem
from chargepoint.config.energy_parse import check_energy, parse_house, parse_load, parse_solar
from chargepoint.config.firmware import parse_diagnostics, parse_firmware
from chargepoint.config.home import parse_home
from chargepoint.config.keys import set_in_file
from chargepoint.config.meter_parse import parse_meter as _meter
from chargepoint.config.model import (
    CONNECTOR_TYPES,
    MEASURANDS,
    OCPP_VERSIONS,
    TX_START_POINTS_SUPPORTED,
    TX_STOP_POINTS_SUPPORTED,
    Config,
    ConnectorConfig,
    ControlConfig,
    OcppConfig,
    SafetyConfig,
    SimulationConfig,
    StationConfig,
)
from chargepoint.config.mqtt_parse import parse_mqtt
from chargepoint.config.reader import (
    Collector,
    ConfigError,
    Reader,
    collecting,
    did_you_mean,
    report,
    table,
)
from chargepoint.config.safety_parse import SOCKET_PATH_MAX, parse_safety
from chargepoint.config.step_budget import step_budget_problem
from chargepoint.config.web import parse_web

T = TypeVar("T")


def station_section(file: str, data: dict[str, Any]) -> StationConfig:
    r = Reader(file, table(file, data, "station", required=True), "station")
    identity = r.string("identity", required=True)
    if not identity or any(c in identity for c in "/?#% ") or len(identity) > 48:
        r.problem("identity", "must be 1-48 characters without spaces, '/', '?', '#' or '%'", None)
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
        supply_phases=r.number("supply_phases", StationConfig.supply_phases, low=1, high=3, integer=True),
        nominal_voltage_v=r.number("nominal_voltage_v", StationConfig.nominal_voltage_v, low=100, high=260),
        connector_type=r.string("connector_type", StationConfig.connector_type),
        reserve_any_connector=r.boolean("reserve_any_connector", False),
    )
    if cfg.supply_phases == 2:
        r.refuse("supply_phases", "must be 1 or 3")
    if cfg.connector_type not in CONNECTOR_TYPES:
        r.refuse("connector_type", f"unknown connector {cfg.connector_type!r}; "
                                   f"known: {', '.join(CONNECTOR_TYPES)}")
    for name, limit in (("vendor", 20), ("model", 20), ("serial_number", 25)):
        if len(getattr(cfg, name)) > limit:
            r.problem(name, f"must be at most {limit} characters (OCPP BootNotification)", None)
    if not cfg.free_vend_id_tag or len(cfg.free_vend_id_tag) > 20:
        r.problem("free_vend_id_tag", "must be 1-20 characters (OCPP idTag)", None)
    r.finish()
    return cfg


def _ocpp(file: str, data: dict[str, Any]) -> OcppConfig:
    r = Reader(file, table(file, data, "ocpp"), "ocpp")
    url = r.string("csms_url", "")  # empty or absent: standalone (no CSMS)
    parsed = urlparse(url.replace(PLACEHOLDER, "identity"))
    if url and (problem := url_problem(url)):
        r.problem("csms_url", problem, None)
    versions = _versions(r)
    cfg = OcppConfig(
        csms_url=url,
        version=versions[0],
        versions=versions,
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
        security_profile=r.number("security_profile", 0, low=0, high=3, integer=True),
        authorization_key=_authorization_key(r),
        ca_bundle=r.string("ca_bundle", ""),
        response_timeout_s=r.number("response_timeout_s", 30.0, low=1, high=600),
        reconnect_min_s=r.number("reconnect_min_s", 1.0, low=0.1, high=3600),
        reconnect_max_s=r.number("reconnect_max_s", 300.0, low=0.1, high=86400),
        ping_interval_s=r.number("ping_interval_s", 20.0, low=0, high=3600),
        ping_timeout_s=r.number("ping_timeout_s", 20.0, low=1, high=3600),
        boot_on_reconnect=r.boolean("boot_on_reconnect", True),
        tx_start_points=r.string_list("tx_start_points", OcppConfig.tx_start_points,
                                      TX_START_POINTS_SUPPORTED),
        tx_stop_points=r.string_list("tx_stop_points", OcppConfig.tx_stop_points, TX_STOP_POINTS_SUPPORTED),
    )
    for name in ("tx_start_points", "tx_stop_points"):
        if not getattr(cfg, name):
            r.problem(name, "needs at least one point: a transaction needs a beginning and an end", None)
    if cfg.reconnect_max_s < cfg.reconnect_min_s:
        r.problem("reconnect_max_s", "must not be smaller than reconnect_min_s", None)
    _check_security(r, cfg, parsed.scheme)
    r.finish()
    return cfg


def _versions(r: Reader) -> tuple[str, ...]:
    """``versions`` (a list in order of preference), or the single ``version`` of earlier files."""
    supported = ", ".join(OCPP_VERSIONS)
    if "version" in r.table:
        version = r.string("version", OCPP_VERSIONS[0])
        if version not in OCPP_VERSIONS:
            return r.problem("version", f"unsupported OCPP version {version!r}; supported: {supported}",
                             OCPP_VERSIONS)
        if "versions" in r.table:
            return r.problem("version", "give either version or versions, not both", OCPP_VERSIONS)
        return (version,)
    versions = r.string_list("versions", OCPP_VERSIONS, OCPP_VERSIONS)
    if not versions:
        return r.problem("versions", f"must name at least one OCPP version ({supported})", OCPP_VERSIONS)
    if len(set(versions)) != len(versions):
        return r.problem("versions", "names a version twice", OCPP_VERSIONS)
    return versions


#: The file's Basic auth password as text: the characters 2.0.1 allows in a password, 16 to 40 of them.
PASSWORD_LENGTH = (16, 40)


def _authorization_key(r: Reader) -> str:
    """The Basic auth password's octets in hex: ``authorization_key`` is already hex (as 1.6 writes it),
    ``basic_auth_password`` is the password as the CSMS's operator gives it, sent as its UTF-8 octets.
    Two keys, so that a text password made only of hex digits is never read as hex."""
    key = r.string("authorization_key", "")
    text = r.string("basic_auth_password", "")
    if not text:
        return key
    if key:
        r.problem("basic_auth_password", "give either authorization_key (hex) or basic_auth_password (text), "
                  "not both", None)
        return key
    problem = password_text_problem(text)
    if problem is not None:
        r.problem("basic_auth_password", problem, None)
    return text.encode("utf-8").hex()


def password_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be the Basic auth password as text (the file's, or ``config set``'s), or None."""
    low, high = PASSWORD_LENGTH
    if not low <= len(text) <= high:
        return f"must be {low} to {high} characters, not {len(text)}"
    if not all(c.isascii() and c.isprintable() and not c.isspace() for c in text):
        return "must be printable ASCII without spaces"
    return None


def _check_security(r: Reader, cfg: OcppConfig, scheme: str) -> None:
    """The security profile, URL scheme, password and CA bundle must fit together."""
    key = cfg.authorization_key
    if key:
        try:
            octets = bytes.fromhex(key)
        except ValueError:
            r.refuse("authorization_key", "must be hexadecimal (the Basic auth password's octets)")
        else:
            if not 16 <= len(octets) <= 20 and not r.table.get("basic_auth_password"):
                r.refuse("authorization_key", "must be 16 to 20 bytes: 32 to 40 hex digits "
                         "(a longer password: basic_auth_password, as text)")
    if cfg.security_profile in (1, 2) and not key:
        r.refuse("authorization_key", f"(or basic_auth_password) is required with security_profile "
                 f"{cfg.security_profile}")
    if cfg.security_profile >= 2 and scheme != "wss" and not cfg.standalone:
        r.refuse("csms_url", f"must be wss:// with security_profile {cfg.security_profile}")
    # Without ca_bundle a wss:// CSMS is checked against the system's CA store.
    if cfg.ca_bundle and not Path(cfg.ca_bundle).is_file():
        r.refuse("ca_bundle", f"file not found: {cfg.ca_bundle}: give the path of the CSMS's CA certificate "
                 "(PEM), or leave ca_bundle out to trust the system's CA store")


def connectors_section(file: str, data: dict[str, Any],
                       station: StationConfig) -> tuple[ConnectorConfig, ...]:
    raw = data.get("connectors", [{"id": 1}])
    if not isinstance(raw, list) or not raw:
        raise ConfigError(file, "connectors", "must be one or more [[connectors]] tables")
    result = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigError(file, f"connectors[{index}]", "must be a table")
        r = Reader(file, entry, f"connectors[{index}]")
        connector = ConnectorConfig(
            id=r.number("id", None, low=1, high=99, integer=True),
            max_current_a=r.number("max_current_a", station.max_current_a, low=6, high=80),
            meter_unit_id=r.number("meter_unit_id", None, low=1, high=247, integer=True, optional=True),
        )
        r.finish()
        if connector.id != index + 1:
            r.refuse("id", f"connectors must be numbered 1, 2, ... in order; expected {index + 1}")
        result.append(connector)
    return tuple(result)


def simulation_section(file: str, data: dict[str, Any]) -> SimulationConfig:
    r = Reader(file, table(file, data, "simulation"), "simulation")
    d = SimulationConfig()
    cfg = SimulationConfig(
        speed=r.number("speed", d.speed, low=0.01, high=1000),
        ev_max_current_a=r.number("ev_max_current_a", d.ev_max_current_a, low=6, high=80),
        ev_phases=r.number("ev_phases", d.ev_phases, low=1, high=3, integer=True),
        ev_capacity_wh=r.number("ev_capacity_wh", d.ev_capacity_wh, low=100, high=500_000),
        ev_soc=r.number("ev_soc", d.ev_soc, low=0, high=1),
        cable_ohms=_cable_ohms(r, d.cable_ohms),
        voltage_v=r.number("voltage_v", d.voltage_v, low=100, high=260),
        driver=r.string("driver", d.driver),
        cycle_charge_s=r.number("cycle_charge_s", d.cycle_charge_s, low=1, high=86400),
        cycle_idle_s=r.number("cycle_idle_s", d.cycle_idle_s, low=1, high=86400),
        driver_card=r.string("driver_card", d.driver_card),
        persist_meter=r.boolean("persist_meter", d.persist_meter),
        phase_contactor=r.boolean("phase_contactor", d.phase_contactor),
    )
    if cfg.driver not in ("none", "cycle"):
        r.refuse("driver", f"unknown driver {cfg.driver!r}; available: none, cycle")
    if cfg.ev_phases == 2:
        r.refuse("ev_phases", "must be 1 or 3")
    r.finish()
    return cfg


def _cable_ohms(r: Reader, default: float | None) -> float | None:
    """The simulated cable's PP resistor; None for a tethered cable (both keys are always read)."""
    tethered = r.boolean("tethered", False)
    ohms = r.number("cable_ohms", default, low=1, high=100_000)
    return None if tethered else ohms


def _control(file: str, data: dict[str, Any]) -> ControlConfig:
    r = Reader(file, table(file, data, "control"), "control")
    d = ControlConfig()
    cfg = ControlConfig(
        socket=r.string("socket", d.socket),
        group=r.string("group", d.group),
        enabled=r.boolean("enabled", d.enabled),
    )
    if not cfg.socket.startswith("/"):
        r.refuse("socket", f"must be an absolute path, not {cfg.socket!r}")
    if len(cfg.socket.encode()) > SOCKET_PATH_MAX:
        r.refuse("socket", f"must be at most {SOCKET_PATH_MAX} bytes long (a Unix socket path)")
    if not cfg.group or not all(c.isalnum() or c in "_-." for c in cfg.group):
        r.refuse("group", f"must be a group name (letters, digits, '_', '-', '.'), not {cfg.group!r}")
    r.finish()
    return cfg


HAL_BACKENDS = ("sim", "raspberrypi")
TOP_LEVEL = ("station", "ocpp", "connectors", "hal", "simulation", "meter", "safety", "control",
             "board", "mqtt", "web", "load", "solar", "house", "firmware", "diagnostics", "home")


def board_section(file: str, data: dict[str, Any], backend: str) -> BoardConfig | None:
    """The ``[board]`` profile, checked by chargepoint.config.board; required on the Pi backend."""
    if "board" not in data:
        if backend == "raspberrypi":
            raise ConfigError(file, "board", 'section is required with hal.backend = "raspberrypi"')
        return None
    return parse_board(file, table(file, data, "board"))


def hal_backend(hal: Reader) -> str:
    """``hal.backend``, checked (the supervisor's view reads this key of ``[hal]`` alone)."""
    backend = hal.string("backend", "sim")
    if backend not in HAL_BACKENDS:
        return hal.problem("backend", f"unknown backend {backend!r}; available: {', '.join(HAL_BACKENDS)}"
                           + did_you_mean(backend, HAL_BACKENDS), "sim")
    return backend


def check_step_budget(file: str, safety: SafetyConfig | None, board: BoardConfig | None) -> None:
    """A safety step too long for the heartbeat (``step_budget.py``): recorded while collecting, else
    raised."""
    if safety is None or board is None:
        return  # the section's own problem is reported already
    problem = step_budget_problem(file, safety.tick_s, board)
    if problem is None:
        return
    collector = collecting.get()
    if collector is None:
        raise problem
    collector.add(problem)


def check_raspberrypi(file: str, cfg: Config) -> None:
    """What the Raspberry Pi backend needs from the other sections (and a phase contactor, any backend)."""
    check_phase_contactor(file, cfg)
    if cfg.hal_backend != "raspberrypi":
        return
    if len(cfg.connectors) != 1:
        report(ConfigError(file, "connectors", "the raspberrypi board drives one connector; "
                                               f"{len(cfg.connectors)} are configured"))
    if cfg.meter.kind != "modbus":
        report(ConfigError(file, "meter.kind", f'must be "modbus" with hal.backend = "raspberrypi" '
                                               f"(a real meter), not {cfg.meter.kind!r}"))


def _section(parse_one: Callable[[], T]) -> T | None:
    """One section's parse; while collecting, its first fatal problem is recorded and None returned."""
    collector = collecting.get()
    if collector is None:
        return parse_one()
    try:
        return parse_one()
    except ConfigError as exc:
        collector.add(exc)
        return None


def parse(data: dict[str, Any], file: str = "<config>") -> Config:
    """Validate a parsed TOML document and build the configuration."""
    collector = collecting.get()
    for key in data:
        if key not in TOP_LEVEL:
            error = ConfigError(file, key, f"unknown section; known: {', '.join(TOP_LEVEL)}"
                                           + did_you_mean(key, TOP_LEVEL))
            if collector is None:
                raise error
            collector.add(error)
    station = _section(lambda: station_section(file, data))
    hal = Reader(file, _section(lambda: table(file, data, "hal")) or {}, "hal")
    backend = hal_backend(hal)
    hal.finish()
    parts = {
        "station": station,
        "ocpp": _section(lambda: _ocpp(file, data)),
        "connectors": _section(lambda: connectors_section(file, data,
                                                          station or StationConfig(identity="-"))),
        "simulation": _section(lambda: simulation_section(file, data)),
        "meter": _section(lambda: _meter(file, data)),
        "safety": _section(lambda: parse_safety(file, data)),
        "control": _section(lambda: _control(file, data)),
        "board": _section(lambda: board_section(file, data, backend)),
        "mqtt": _section(lambda: parse_mqtt(file, data, station.identity if station else "-")),
        "web": _section(lambda: parse_web(file, data)),
        "load": _section(lambda: parse_load(file, data, _meter)),
        "solar": _section(lambda: parse_solar(file, data)),
        "house": _section(lambda: parse_house(file, data)),
        "firmware": _section(lambda: parse_firmware(file, data)),
        "diagnostics": _section(lambda: parse_diagnostics(file, data)),
        "home": _section(lambda: parse_home(file, data)),
    }
    check_step_budget(file, parts["safety"], parts["board"])
    if collector is None:
        config = Config(hal_backend=backend, source=file, file_keys=set_in_file(data),
                        **parts)  # type: ignore[arg-type]
        check_raspberrypi(file, config)
        check_energy(file, config)
        return config
    # Checking the whole file: the rules across sections too, on what the sections gave
    # (a section that could not be read keeps its defaults), so every problem is listed at once.
    partial = _assemble(file, data, backend, parts)
    if partial is not None:
        for rule in (check_raspberrypi, check_energy):
            try:
                rule(file, partial)
            except ConfigError as exc:
                collector.add(exc)
    collector.partial = partial
    if collector.errors:
        raise collector.errors[0]
    assert partial is not None
    return partial


def _assemble(file: str, data: dict[str, Any], backend: str, parts: dict[str, Any]) -> Config | None:
    """The configuration from the sections read, defaults for those that could not be; None without
    the three every station needs (station, ocpp, connectors)."""
    if any(parts[name] is None for name in ("station", "ocpp", "connectors")):
        return None
    given = {name: part for name, part in parts.items() if part is not None or name == "board"}
    return Config(hal_backend=backend, source=file, file_keys=set_in_file(data), **given)


def check(path: str | Path, at_start: Callable[[Config], list[ConfigError]] | None = None,
          ) -> tuple[Config | None, list[ConfigError]]:
    """Every problem of a configuration file at once (``chargepoint check-config``).

    ``load`` stops at the first problem, which is right for the daemon; a
    technician editing the file wants the whole list: each key's problem is
    recorded and its default used to go on, and a section whose check cannot go
    on contributes its first problem. ``at_start`` adds the refusals the daemon
    makes only when it starts (outside this package: a dashboard on the network
    without a password), run on what could be read. The Config is returned when
    there is no problem.
    """
    collector = Collector()
    token = collecting.set(collector)
    try:
        config: Config | None = load(path)
    except ConfigError as exc:
        collector.add(exc)
        config = None
    finally:
        collecting.reset(token)
    if at_start is not None and collector.partial is not None:
        for problem in at_start(collector.partial):
            collector.add(problem)
    return (config if not collector.errors else None), collector.errors


def accepted_keys(data: dict[str, Any]) -> set[str]:
    """The dotted keys the loader reads for ``data`` (``connectors.id`` for every connector)."""
    collector = Collector()
    token = collecting.set(collector)
    try:
        parse(data)
    except ConfigError:
        pass
    finally:
        collecting.reset(token)
    return collector.keys_read


def load(path: str | Path) -> Config:
    """Read and validate a configuration file; raise ConfigError naming what is wrong."""
    return parse(read_toml(path), str(path))


def read_toml(path: str | Path) -> dict[str, Any]:
    """The file's TOML document; a missing, unreadable or malformed file is a ConfigError."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(file, "-", "file not found: check the path (a station's is usually "
                                     "/etc/chargepoint/chargepoint.toml)") from None
    except PermissionError as exc:
        raise ConfigError(file, "-", f"cannot be read: {exc.strerror}: run as a user that may read it "
                                     "(the service's user, or with sudo), or fix its permissions") from None
    except OSError as exc:
        raise ConfigError(file, "-", f"cannot be read: {exc.strerror}: give the path of the "
                                     "configuration file itself") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "-", f"not valid TOML: {exc}: fix the TOML at that line and column") from None
    return data
