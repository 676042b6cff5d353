"""Parsing and checking the ``[board]`` section into a ``BoardConfig``.

Every mistake is reported with the file, the key and the reason, like the rest
of the configuration. Beyond types and ranges it checks what the hardware
needs: hardware PWM on the chosen GPIO, ADC settings the chip has, a divider
that keeps the pilot inside the ADC's range, each GPIO used once and none taken
by the ADC's bus, and protective inputs that read "tripped" when their signal
is lost.
"""

from __future__ import annotations

from typing import Any

from chargepoint.config.board import (
    ADC_TYPES,
    GPIO_MAX,
    I2C1_PINS,
    MODELS,
    PILOT_RANGE_V,
    PULLS,
    RFID_BAUD,
    RFID_TYPES,
    SPI0_PINS,
    AdcConfig,
    BoardConfig,
    ClassificationConfig,
    ContactorConfig,
    DividerConfig,
    HeartbeatConfig,
    InputConfig,
    PhaseContactorConfig,
    ProximityConfig,
    PwmConfig,
    RcdConfig,
    RfidConfig,
    ShuntTripConfig,
)
from chargepoint.config.reader import ConfigError, Reader, report
from chargepoint.safety.iec61851 import PilotBands, PilotClassifier
from hal.pi.ads1x15 import ADDRESSES, DATA_RATES, FASTEST, PGA_BITS
from hal.pi.pwm import PWM_CHANNELS, PWM_DEVICES


def _section(file: str, parent: Reader, name: str, *, required: bool = False) -> dict[str, Any] | None:
    parent.used.add(name)
    key = parent.key(name)
    if name not in parent.table:
        if required:
            raise ConfigError(file, key, "section is required")
        return None
    value = parent.table[name]
    if not isinstance(value, dict):
        raise ConfigError(file, key, f"must be a table ([{key}])")
    return value


def _choice(r: Reader, name: str, default: str, allowed: tuple[str, ...]) -> str:
    value = r.string(name, default)
    if value not in allowed:
        # Checking the whole file, the default stands in (the keys that depend on it are still checked).
        return r.problem(name, f"must be one of {', '.join(repr(a) for a in allowed)}, not {value!r}",
                         default)
    return value


def _pin(r: Reader, name: str, default: int | None, *, optional: bool = False) -> Any:
    return r.number(name, default, low=0, high=GPIO_MAX, integer=True, optional=optional)


def _pwm(file: str, board: Reader, model: str) -> PwmConfig:
    r = Reader(file, _section(file, board, "pwm") or {}, "board.pwm")
    backend = _choice(r, "backend", "sysfs", ("sysfs", "gpiozero"))
    gpio = _pin(r, "gpio", 18)
    channels = PWM_CHANNELS[model]
    if backend == "sysfs" and gpio not in channels:
        r.refuse("gpio", f"GPIO{gpio} has no hardware PWM; use one of "
                       f"{', '.join(f'GPIO{g}' for g in sorted(channels))}")
    default_channel = channels.get(gpio, 0)
    channel = r.number("channel", default_channel, low=0, high=15, integer=True)
    if backend == "sysfs" and channel != default_channel:
        r.refuse("channel", f"GPIO{gpio} is PWM channel {default_channel} on a {model}, not {channel} "
                          "(leave the key out to get the right one)")
    r.used.add("chip")
    chip: int | str = 0 if model != "pi5" else PWM_DEVICES[model]
    if "chip" in r.table:
        chip = r.table["chip"]
        if isinstance(chip, bool) or not isinstance(chip, (int, str)) or \
                (isinstance(chip, int) and not 0 <= chip <= 64) or chip == "":
            r.refuse("chip", f"must be the N of /sys/class/pwm/pwmchipN or a PWM device name such as "
                           f"{PWM_DEVICES['pi5']!r}, not {chip!r}")
    cfg = PwmConfig(
        backend=backend, gpio=gpio, chip=chip, channel=channel,
        inverted=r.boolean("inverted", False),
        negative_pin=_pin(r, "negative_pin", None, optional=True),
        negative_active_high=r.boolean("negative_active_high", True),
    )
    r.finish()
    return cfg


def _adc(file: str, board: Reader) -> AdcConfig:
    r = Reader(file, _section(file, board, "adc") or {}, "board.adc")
    kind = _choice(r, "type", "ads1115", ADC_TYPES)
    if kind == "mcp3008":
        cfg = AdcConfig(
            type=kind,
            spi_port=r.number("spi_port", 0, low=0, high=1, integer=True),
            spi_device=r.number("spi_device", 0, low=0, high=1, integer=True),
            v_ref=r.number("v_ref", 3.3, low=1.0, high=5.5),
            burst_samples=r.number("burst_samples", 64, low=8, high=2000, integer=True),
            cp_channel=r.number("cp_channel", 0, low=0, high=7, integer=True),
            pp_channel=r.number("pp_channel", 1, low=0, high=7, integer=True),
        )
        if cfg.cp_channel == cfg.pp_channel:
            r.refuse("pp_channel", "must differ from cp_channel")
    else:
        address = r.number("address", 0x48, integer=True)
        if address not in ADDRESSES:
            r.refuse("address", f"must be one of {', '.join(f'0x{a:02X}' for a in ADDRESSES)} "
                              f"(the ADDR pin), not 0x{address:02X}")
        full_scale = r.number("full_scale_v", 4.096)
        if full_scale not in PGA_BITS:
            r.refuse("full_scale_v", f"must be one of {', '.join(str(v) for v in sorted(PGA_BITS))}")
        rates = DATA_RATES[kind]
        data_rate = r.number("data_rate", FASTEST[kind], integer=True)
        if data_rate not in rates:
            r.refuse("data_rate", f"an {kind.upper()} runs at {', '.join(map(str, sorted(rates)))} SPS, "
                                f"not {data_rate}")
        cfg = AdcConfig(
            type=kind,
            i2c_bus=r.number("i2c_bus", 1, low=0, high=31, integer=True),
            address=address, full_scale_v=full_scale, data_rate=data_rate,
            vdd_v=r.number("vdd_v", 3.3, low=2.0, high=5.5),
            cp_high_channel=r.number("cp_high_channel", 0, low=0, high=3, integer=True),
            cp_low_channel=r.number("cp_low_channel", 1, low=0, high=3, integer=True),
            pp_channel=r.number("pp_channel", 2, low=0, high=3, integer=True),
        )
        used = [("cp_high_channel", cfg.cp_high_channel), ("cp_low_channel", cfg.cp_low_channel),
                ("pp_channel", cfg.pp_channel)]
        for index, (key, channel) in enumerate(used):
            if any(channel == other for _, other in used[:index]):
                r.refuse(key, f"AIN{channel} is already used by another signal")
    r.finish()
    return cfg


def _divider(file: str, board: Reader, adc: AdcConfig) -> DividerConfig:
    r = Reader(file, _section(file, board, "cp_divider") or {}, "board.cp_divider")
    d = DividerConfig()
    cfg = DividerConfig(
        r_in_ohms=r.number("r_in_ohms", d.r_in_ohms, low=1000, high=10_000_000),
        r_ref_ohms=r.number("r_ref_ohms", d.r_ref_ohms, low=100, high=10_000_000),
        r_gnd_ohms=r.number("r_gnd_ohms", d.r_gnd_ohms, low=100, high=10_000_000),
        v_ref=r.number("v_ref", d.v_ref, low=0.5, high=5.5),
    )
    r.finish()
    from hal.pi.pilot import OffsetDivider

    divider = OffsetDivider(cfg.r_in_ohms, cfg.r_ref_ohms, cfg.r_gnd_ohms, cfg.v_ref)
    low, high = (divider.to_adc(v) for v in PILOT_RANGE_V)
    if low < 0.0 or high > adc.input_max_v:
        raise ConfigError(file, "board.cp_divider",
                          f"maps the pilot's {PILOT_RANGE_V[0]:g}..{PILOT_RANGE_V[1]:+g} V to "
                          f"{low:.3f}..{high:.3f} V, outside the ADC's 0..{adc.input_max_v:g} V")
    return cfg


def _pp(file: str, board: Reader) -> ProximityConfig:
    r = Reader(file, _section(file, board, "pp") or {}, "board.pp")
    d = ProximityConfig()
    cfg = ProximityConfig(
        enabled=r.boolean("enabled", d.enabled),
        pullup_ohms=r.number("pullup_ohms", d.pullup_ohms, low=100, high=100_000),
        supply_v=r.number("supply_v", d.supply_v, low=1.0, high=5.5),
        interval_s=r.number("interval_s", d.interval_s, low=0.0, high=5.0),
    )
    r.finish()
    return cfg


def _contactor(file: str, board: Reader) -> ContactorConfig:
    r = Reader(file, _section(file, board, "contactor", required=True) or {}, "board.contactor")
    cfg = ContactorConfig(
        pin=_pin(r, "pin", None),
        active_high=r.boolean("active_high", True),
        aux_pin=_pin(r, "aux_pin", None, optional=True),
        aux_active_high=r.boolean("aux_active_high", True),
        aux_pull=_choice(r, "aux_pull", "off", PULLS),
    )
    r.finish()
    return cfg


def _fail_safe(r: Reader, active_high: bool, pull: str) -> None:
    """A protective input must read "tripped" when its signal is lost.

    The pull decides what a broken wire, an unpowered RCM or a lost 12 V reads;
    if that is the healthy level, the protection silently stops working. Wire
    the signal so it is energised while healthy (the RCM's "OK" output, a
    normally-closed loop) and let the pull read as the trip.
    """
    if (pull == "up" and not active_high) or (pull == "down" and active_high):
        level = "high" if pull == "up" else "low"
        r.refuse("active_high", f"with pull = {pull!r} a broken wire or a dead device reads {level}, "
                              "which this setting calls healthy: not fail-safe. Wire the signal so it "
                              "is energised while healthy and the pulled level means tripped "
                              "(hardware.md, RCD / residual current monitor)")


def _input(file: str, board: Reader, name: str) -> InputConfig | None:
    table = _section(file, board, name)
    if table is None:
        return None
    r = Reader(file, table, f"board.{name}")
    cfg = InputConfig(pin=_pin(r, "pin", None), active_high=r.boolean("active_high", False),
                      pull=_choice(r, "pull", "off", PULLS))
    _fail_safe(r, cfg.active_high, cfg.pull)
    r.finish()
    return cfg


#: The highest G the pump can make: the +12 V rail. Its reading must stay inside the ADC's range.
GATE_MAX_V = 12.0


def _heartbeat(file: str, board: Reader, adc: AdcConfig) -> HeartbeatConfig | None:
    table = _section(file, board, "heartbeat")
    if table is None:
        return None
    r = Reader(file, table, "board.heartbeat")
    mcp = adc.type == "mcp3008"
    cfg = HeartbeatConfig(pin=_pin(r, "pin", None),
                          gate_channel=r.number("gate_channel", None, low=0, high=7 if mcp else 3,
                                                integer=True, optional=True),
                          gate_ratio=r.number("gate_ratio", 5.545, low=1.0, high=50.0),
                          drain_pin=_pin(r, "drain_pin", None, optional=True))
    taken = (adc.cp_channel, adc.pp_channel) if mcp else \
        (adc.cp_high_channel, adc.cp_low_channel, adc.pp_channel)
    if cfg.gate_channel is not None and cfg.gate_channel in taken:
        r.refuse("gate_channel", f"input {cfg.gate_channel} already reads the pilot or PP")
    if cfg.gate_channel is not None and GATE_MAX_V / cfg.gate_ratio > adc.input_max_v:
        r.refuse("gate_ratio", f"G at {GATE_MAX_V:g} V would read {GATE_MAX_V / cfg.gate_ratio:.2f} V, "
                             f"above the ADC's {adc.input_max_v:g} V")
    r.finish()
    return cfg


def _shunt_trip(file: str, board: Reader) -> ShuntTripConfig | None:
    table = _section(file, board, "shunt_trip")
    if table is None:
        return None
    r = Reader(file, table, "board.shunt_trip")
    cfg = ShuntTripConfig(pin=_pin(r, "pin", None), active_high=r.boolean("active_high", True))
    r.finish()
    return cfg


def _phase_contactor(file: str, board: Reader) -> PhaseContactorConfig | None:
    table = _section(file, board, "phase_contactor")
    if table is None:
        return None
    r = Reader(file, table, "board.phase_contactor")
    cfg = PhaseContactorConfig(pin=_pin(r, "pin", None), active_high=r.boolean("active_high", True))
    r.finish()
    return cfg


def check_phase_contactor(file: str, cfg: Any) -> None:
    """A phase contactor (the board's, or the simulation's) switches between one and three phases:
    the station must be supplied with three."""
    if cfg.station.supply_phases == 3:
        return
    reason = "switches between 1 and 3 phases: needs station.supply_phases = 3"
    if cfg.board is not None and cfg.board.phase_contactor is not None:
        report(ConfigError(file, "board.phase_contactor", reason))
    if cfg.hal_backend == "sim" and cfg.simulation.phase_contactor:
        report(ConfigError(file, "simulation.phase_contactor", reason))


def _rcd(file: str, board: Reader) -> RcdConfig | None:
    table = _section(file, board, "rcd")
    if table is None:
        return None
    r = Reader(file, table, "board.rcd")
    d = RcdConfig(pin=0)
    cfg = RcdConfig(
        pin=_pin(r, "pin", None),
        active_high=r.boolean("active_high", False),
        pull=_choice(r, "pull", "off", PULLS),
        test_pin=_pin(r, "test_pin", None, optional=True),
        test_active_high=r.boolean("test_active_high", True),
        test_timeout_s=r.number("test_timeout_s", d.test_timeout_s, low=0.01, high=5),
        test_recovery_s=r.number("test_recovery_s", d.test_recovery_s, low=0, high=30),
    )
    _fail_safe(r, cfg.active_high, cfg.pull)
    r.finish()
    return cfg


def _rfid(file: str, board: Reader) -> RfidConfig:
    r = Reader(file, _section(file, board, "rfid") or {}, "board.rfid")
    kind = _choice(r, "type", "none", RFID_TYPES)
    if kind == "none":
        r.finish()
        return RfidConfig()
    d = RfidConfig()
    port = r.string("port", required=True)
    if not port:
        r.refuse("port", "must name the reader's serial device, e.g. /dev/serial/by-id/...")
    cfg = RfidConfig(
        type=kind, port=port,
        baudrate=r.number("baudrate", RFID_BAUD[kind], low=1200, high=921600, integer=True),
        hold_off_s=r.number("hold_off_s", d.hold_off_s, low=0, high=60),
        reopen_s=r.number("reopen_s", d.reopen_s, low=0.05, high=60),
        poll_interval_s=(r.number("poll_interval_s", d.poll_interval_s, low=0.05, high=5)
                         if kind == "pn532" else d.poll_interval_s),
    )
    r.finish()
    return cfg


def _classification(file: str, board: Reader) -> ClassificationConfig:
    r = Reader(file, _section(file, board, "classification") or {}, "board.classification")
    d = PilotBands()
    windows = {}
    for state in "abcdef":
        key = f"band_{state}"
        value = r._get(key, list(getattr(d, state)), False)
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                or not value[0] < value[1]):
            r.refuse(key, f"must be [low, high] in volts with low < high, not {value!r}")
            value = list(getattr(d, state))
        windows[state] = (float(value[0]), float(value[1]))
    cfg = ClassificationConfig(
        bands=PilotBands(**windows),
        hysteresis_v=r.number("hysteresis_v", 0.4, low=0, high=2),
        debounce_samples=r.number("debounce_samples", 2, low=1, high=20, integer=True),
        diode_tolerance_v=r.number("diode_tolerance_v", 1.5, low=0.2, high=5),
    )
    r.finish()
    try:
        PilotClassifier(cfg.bands, cfg.hysteresis_v, cfg.debounce_samples)
    except ValueError as exc:
        raise ConfigError(file, "board.classification", str(exc)) from None
    return cfg


def _check_pins(file: str, cfg: BoardConfig) -> None:
    """Every GPIO used once, and none taken by the ADC's bus."""
    used: list[tuple[str, int]] = [("board.pwm.gpio", cfg.pwm.gpio)]
    if cfg.pwm.negative_pin is not None:
        used.append(("board.pwm.negative_pin", cfg.pwm.negative_pin))
    used.append(("board.contactor.pin", cfg.contactor.pin))
    if cfg.contactor.aux_pin is not None:
        used.append(("board.contactor.aux_pin", cfg.contactor.aux_pin))
    if cfg.rcd is not None:
        used.append(("board.rcd.pin", cfg.rcd.pin))
        if cfg.rcd.test_pin is not None:
            used.append(("board.rcd.test_pin", cfg.rcd.test_pin))
    if cfg.emergency_stop is not None:
        used.append(("board.emergency_stop.pin", cfg.emergency_stop.pin))
    if cfg.heartbeat is not None:
        used.append(("board.heartbeat.pin", cfg.heartbeat.pin))
        if cfg.heartbeat.drain_pin is not None:
            used.append(("board.heartbeat.drain_pin", cfg.heartbeat.drain_pin))
    if cfg.shunt_trip is not None:
        used.append(("board.shunt_trip.pin", cfg.shunt_trip.pin))
    if cfg.phase_contactor is not None:
        used.append(("board.phase_contactor.pin", cfg.phase_contactor.pin))
    bus = SPI0_PINS if cfg.adc.type == "mcp3008" else (I2C1_PINS if cfg.adc.i2c_bus == 1 else {})
    seen: dict[int, str] = {}
    for key, pin in used:
        if pin in bus:
            raise ConfigError(file, key, f"GPIO{pin} is {bus[pin]}, used by the {cfg.adc.type.upper()}")
        if pin in seen:
            raise ConfigError(file, key, f"GPIO{pin} is already used by {seen[pin]}")
        seen[pin] = key


def parse_board(file: str, table: dict[str, Any]) -> BoardConfig:
    """Validate the ``[board]`` table; errors name ``file``, the key and the reason."""
    r = Reader(file, table, "board")
    name = r.string("name", "")
    model = _choice(r, "model", "pi4", MODELS)
    adc = _adc(file, r)
    cfg = BoardConfig(
        name=name,
        model=model,
        pwm=_pwm(file, r, model),
        adc=adc,
        cp_divider=_divider(file, r, adc),
        pp=_pp(file, r),
        contactor=_contactor(file, r),
        rcd=_rcd(file, r),
        emergency_stop=_input(file, r, "emergency_stop"),
        heartbeat=_heartbeat(file, r, adc),
        shunt_trip=_shunt_trip(file, r),
        phase_contactor=_phase_contactor(file, r),
        rfid=_rfid(file, r),
        classification=_classification(file, r),
    )
    r.finish()
    _check_pins(file, cfg)
    if cfg.pp.enabled:
        pullup = cfg.pullup()
        top = pullup.to_adc(1950.0)  # upper edge of the 13 A band
        if top > 0.9 * pullup.supply_v or top > adc.input_max_v:
            raise ConfigError(file, "board.pp", f"a 1.5 kOhm cable reads {top:.2f} V: too close to the "
                                                "open-circuit level or above the ADC's range")
    return cfg
