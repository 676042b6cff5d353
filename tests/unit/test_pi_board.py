"""The [board] profile: validation with file/key/reason, the shipped example, and the build on fakes."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from chargepoint import backends
from chargepoint.backends.raspberrypi.build import build_pi_hardware
from chargepoint.config import ConfigError, load, parse
from hal.clock import ManualClock
from hal.pi.pilot import OffsetDivider, PullUpDivider
from hal.rfid import Pn532Reader, Rdm6300Reader
from hal.sim.world import SimMeter, SimWorld
from tests.unit.pi_fakes import FakeAds1x15, FakePwmSysfs, PilotModel

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "raspberrypi.toml"
HARDWARE_MD = ROOT / "hardware.md"


def example() -> dict[str, Any]:
    return tomllib.loads(EXAMPLE.read_text())


def with_changes(changes: dict[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The example with dotted keys set (``"board.pwm.gpio": 5``) or dropped."""
    data = copy.deepcopy(example())
    for dotted, value in changes.items():
        *path, last = dotted.split(".")
        table = data
        for part in path:
            table = table.setdefault(part, {})
        table[last] = value
    for dotted in drop:
        *path, last = dotted.split(".")
        table = data
        for part in path:
            table = table[part]
        del table[last]
    return data


def test_shipped_example_is_valid_and_describes_the_reference_board():
    config = load(EXAMPLE)
    board = config.board
    assert config.hal_backend == "raspberrypi"
    assert board.model == "pi4" and board.pwm.chip == 0 and board.pwm.channel == 0
    assert (board.adc.type, board.adc.address, board.adc.data_rate) == ("ads1015", 0x48, 3300)
    assert config.safety.tick_s == 0.005
    assert board.contactor.aux_pin == 27 and board.rcd.test_pin == 23
    assert board.rfid.type == "rdm6300"
    out = subprocess.run([sys.executable, "-m", "chargepoint.cli", "check-config", str(EXAMPLE)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "hal raspberrypi" in out.stdout


def test_pi5_numbering_is_derived_from_model_and_gpio():
    board = parse(with_changes({"board.model": "pi5"}), "pi5.toml").board
    assert board.pwm.chip == "1f00098000.pwm" and board.pwm.channel == 2
    board = parse(with_changes({"board.model": "pi5", "board.pwm.gpio": 12, "board.pwm.chip": 0}), "x").board
    assert board.pwm.chip == 0 and board.pwm.channel == 0


def test_board_is_optional_for_the_simulation():
    data = with_changes({"hal.backend": "sim", "meter.kind": "sim"}, drop=("board",))
    assert parse(data).board is None


@pytest.mark.parametrize(
    ("changes", "drop", "key", "reason"),
    [
        ({}, ("board",), "board", "section is required"),
        ({"board.model": "pi6"}, (), "board.model", "must be one of"),
        ({"board.pwm.gpio": 17}, (), "board.pwm.gpio", "has no hardware PWM"),
        ({"board.pwm.channel": 1}, (), "board.pwm.channel", "GPIO18 is PWM channel 0 on a pi4"),
        ({"board.model": "pi5", "board.pwm.channel": 0}, (), "board.pwm.channel", "channel 2 on a pi5"),
        ({"board.pwm.chip": True}, (), "board.pwm.chip", "pwmchipN"),
        ({"board.pwm.backend": "pigpio"}, (), "board.pwm.backend", "must be one of"),
        ({"board.adc.address": 0x50}, (), "board.adc.address", "must be one of 0x48"),
        ({"board.adc.data_rate": 860}, (), "board.adc.data_rate", "an ADS1015 runs at"),
        ({"board.adc.type": "ads1115"}, (), "board.adc.data_rate", "an ADS1115 runs at"),
        ({"board.adc.full_scale_v": 5.0}, (), "board.adc.full_scale_v", "must be one of"),
        ({"board.adc.cp_low_channel": 0}, (), "board.adc.cp_low_channel", "AIN0 is already used"),
        ({"board.adc.burst_samples": 32}, (), "board.adc.burst_samples", "unknown key"),
        ({"board.cp_divider.r_ref_ohms": 30000}, (), "board.cp_divider", "outside the ADC's 0..3.3 V"),
        ({"board.cp_divider.r_in_ohms": "100k"}, (), "board.cp_divider.r_in_ohms", "must be a number"),
        ({"board.pp.pullup_ohms": 100}, (), "board.pp", "too close to the open-circuit level"),
        ({"board.contactor.pin": 3}, (), "board.contactor.pin", "GPIO3 is I2C1 SCL"),
        ({"board.contactor.aux_pin": 22}, (), "board.rcd.pin", "GPIO22 is already used by board.contactor"),
        ({"board.contactor.pin": 40}, (), "board.contactor.pin", "must be at most 27"),
        ({}, ("board.contactor",), "board.contactor", "section is required"),
        ({"board.rcd.pull": "strong"}, (), "board.rcd.pull", "must be one of"),
        # a lost signal must read as a trip: a pull towards the healthy level is not fail-safe
        ({"board.rcd.active_high": True}, (), "board.rcd.active_high", "not fail-safe"),
        ({"board.emergency_stop.pull": "down"}, (), "board.emergency_stop.active_high", "not fail-safe"),
        ({"board.heartbeat.pin": 17}, (), "board.heartbeat.pin", "GPIO17 is already used by board.contactor"),
        ({"board.heartbeat.period": 1}, (), "board.heartbeat.period", "unknown key"),
        ({"board.rfid.type": "wiegand"}, (), "board.rfid.type", "must be one of"),
        ({"board.rfid.port": ""}, (), "board.rfid.port", "must name the reader's serial device"),
        ({"board.rfid.poll_interval_s": 0.5}, (), "board.rfid.poll_interval_s", "unknown key"),
        ({"board.classification.band_b": [8.0]}, (), "board.classification.band_b", "must be [low, high]"),
        ({"board.classification.band_b": [6.8, 10.0]}, (), "board.classification",
         "further apart than the hysteresis"),
        ({"board.classification.debounce_samples": 0}, (), "board.classification.debounce_samples",
         "at least 1"),
        ({"board.relay": {"pin": 5}}, (), "board.relay", "unknown key"),
        ({"meter.kind": "sim"}, (), "meter.kind", 'must be "modbus"'),
        ({"connectors": [{"id": 1}, {"id": 2}]}, (), "connectors", "drives one connector"),
    ],
)
def test_bad_board_is_rejected_with_file_key_and_reason(changes, drop, key, reason):
    with pytest.raises(ConfigError) as info:
        parse(with_changes(changes, drop), "/etc/chargepoint/chargepoint.toml")
    assert info.value.file == "/etc/chargepoint/chargepoint.toml"
    assert info.value.key == key
    assert reason in info.value.reason


def test_mcp3008_front_end_profile():
    board = parse(with_changes({"board.adc": {"type": "mcp3008", "cp_channel": 0, "pp_channel": 1,
                                              "v_ref": 3.3, "burst_samples": 48}}), "x").board
    assert board.adc.type == "mcp3008" and board.adc.burst_samples == 48
    with pytest.raises(ConfigError, match="GPIO8 is SPI0 CE0"):
        parse(with_changes({"board.adc": {"type": "mcp3008"}, "board.contactor.pin": 8}), "x")


# ------------------------------------------------------------------ hardware.md agrees with the example


def test_hardware_md_tables_agree_with_the_example_config():
    """hardware.md's expected readings are computed from the same resistor values as the example."""
    board = load(EXAMPLE).board
    divider = board.divider()
    text = HARDWARE_MD.read_text()
    # The divider's values are quoted in the text.
    for value in ("100 kΩ", "16.9 kΩ", "49.9 kΩ", "LM4040", "2.5 V"):
        assert value in text, value
    rows = re.findall(r"^\| (A|B|C|D|E|F) \| ([-+]?\d+) V \| ([\d.]+) V \|", text, re.MULTILINE)
    assert len(rows) == 6, rows
    for state, pilot_v, adc_v in rows:
        assert float(adc_v) == pytest.approx(divider.to_adc(float(pilot_v)), abs=0.0015), state
    pp_rows = re.findall(r"^\| (\d+) Ω \| (\d+) A \| ([\d.]+) V \|", text, re.MULTILINE)
    assert len(pp_rows) == 4, pp_rows
    pullup = board.pullup()
    for ohms, _, adc_v in pp_rows:
        assert float(adc_v) == pytest.approx(pullup.to_adc(float(ohms)), abs=0.0015)
    assert f"V_cp = V_adc × {divider.k:.4f} − {-divider.offset_v:.3f} V" in text


def test_reference_divider_keeps_the_bands_resolvable():
    board = load(EXAMPLE).board
    divider: OffsetDivider = board.divider()
    lsb_pilot_v = 4.096 / 2048 * divider.k
    assert lsb_pilot_v < 0.02  # an ADS1015 LSB is 18 mV of pilot, far below the 0.4 V hysteresis
    pullup: PullUpDivider = board.pullup()
    assert pullup.to_adc(1950) < pullup.supply_v * pullup.open_fraction


# ------------------------------------------------------------------ building on fakes


def test_build_on_fakes_gives_one_connector_with_the_pi_backends(tmp_path, factory):
    config = load(EXAMPLE)
    sysfs = FakePwmSysfs(tmp_path)
    model = PilotModel(sysfs.duty_percent)
    bus = FakeAds1x15(model.adc_volts, chip="ads1015")
    clock = ManualClock()
    world = SimWorld(clock)
    hardware = build_pi_hardware(config, pin_factory=factory, i2c_bus=bus, sysfs_root=tmp_path,
                                 clock=clock, meter=world.meter, serial_factory=_no_port,
                                 blocking_sleep=sysfs.kernel_sleep)
    assert len(hardware.connectors) == 1 and hardware.worlds == {}
    connector = hardware.connectors[0]
    assert isinstance(connector.meter, SimMeter)
    assert isinstance(hardware.card_reader, Rdm6300Reader)
    assert sysfs.duty_percent() == 100.0  # the safety loop's safe output: steady +12 V
    assert not factory.pin(17).state  # contactor open
    connector.evse.step()
    assert connector.evse.status.cp_state.value == "A"
    assert bus.configs, "the ADC was read"
    assert sys.getswitchinterval() <= 0.001  # the safety thread waits less for the GIL


def test_build_with_a_pn532_and_the_gpiozero_pwm(tmp_path, factory, caplog):
    config = parse(with_changes({"board.pwm.backend": "gpiozero",
                                 "board.rfid": {"type": "pn532", "port": "/dev/ttyUSB0"}}), "x")
    model = PilotModel(lambda: factory.pin(18).state * 100.0)
    hardware = build_pi_hardware(config, pin_factory=factory,
                                 i2c_bus=FakeAds1x15(model.adc_volts, chip="ads1015"),
                                 clock=ManualClock(), meter=SimWorld(ManualClock()).meter,
                                 blocking_sleep=lambda s: None)
    assert isinstance(hardware.card_reader, Pn532Reader)
    assert hardware.card_reader.baudrate == 115200
    assert factory.pin(18).frequency == 1000
    assert "development only" in caplog.text


def test_a_failed_build_releases_the_pins_it_took(tmp_path, factory):
    config = load(EXAMPLE)
    sysfs = FakePwmSysfs(tmp_path)
    bus = FakeAds1x15(lambda ch: 0.0, address=0x49)  # nothing at 0x48
    with pytest.raises(OSError, match="no ADS1015 answers"):
        build_pi_hardware(config, pin_factory=factory, i2c_bus=bus, sysfs_root=tmp_path,
                          clock=ManualClock(), meter=SimWorld(ManualClock()).meter,
                          blocking_sleep=sysfs.kernel_sleep)
    # nothing holds GPIO17 now: it can be claimed again
    from gpiozero import OutputDevice

    OutputDevice(17, pin_factory=factory).close()


def test_daemon_dispatches_to_the_board_builder(monkeypatch):
    config = load(EXAMPLE)
    calls = []
    monkeypatch.setattr("chargepoint.backends.raspberrypi.build.build_pi_hardware",
                        lambda cfg: calls.append(cfg) or "hw")
    assert backends.build_hardware(config) == "hw"
    assert calls == [config]


def _no_port(*args: Any, **kwargs: Any) -> Any:
    raise OSError("no serial port in this test")


def _bring_up_on_fakes(tmp_path, factory, monkeypatch, state: str):
    """The bring-up tool's module with its board parts on fakes; the pilot model in ``state``."""
    import chargepoint.backends.raspberrypi.bringup as board_module
    from tests.unit.pi_fakes import ContactorPhysics, RcmModel, SwitchInput

    sysfs = FakePwmSysfs(tmp_path / "sys")
    model = PilotModel(sysfs.duty_percent)
    model.set(state=state, cable_ohms=1500.0)
    bus = FakeAds1x15(model.adc_volts, chip="ads1015")
    real_pilot = board_module.pilot_device
    monkeypatch.setattr(board_module, "pilot_device", lambda board, clock, pf, i2c, root, sleep: real_pilot(
        board, clock, factory, bus, tmp_path / "sys", sysfs.kernel_sleep))
    real_contactor = board_module.contactor_device
    coil_history: list[bool] = []

    def contactor(board, pin_factory):
        device = real_contactor(board, factory)
        physics = ContactorPhysics(factory, 17, 27, ManualClock(), settle_s=0)
        original = device.set_closed

        def set_closed(closed: bool) -> None:
            original(closed)
            coil_history.append(bool(factory.pin(17).state))
            physics.update()
        device.set_closed = set_closed
        return device

    monkeypatch.setattr(board_module, "contactor_device", contactor)
    real_inputs = board_module.fault_inputs

    def inputs(board, pin_factory):
        device = real_inputs(board, factory)
        RcmModel(factory, 22, 23)
        SwitchInput(factory, 24)
        return device

    monkeypatch.setattr(board_module, "fault_inputs", inputs)
    real_heartbeat = board_module.heartbeat_output
    monkeypatch.setattr(board_module, "heartbeat_output", lambda board, pf: real_heartbeat(board, factory))
    monkeypatch.setattr(board_module, "CONTACTOR_TEST_S", 0.05)
    return board_module, sysfs, coil_history


def test_bring_up_tool_reads_the_board_and_tests_the_contactor_with_no_ev(tmp_path, factory, monkeypatch,
                                                                           capsys):
    """``python -m chargepoint.backends.raspberrypi.bringup FILE``: hardware.md's checklist, on fakes."""
    board_module, sysfs, coil = _bring_up_on_fakes(tmp_path, factory, monkeypatch, "A")
    code = board_module._bring_up([str(EXAMPLE), "--count", "1", "--interval", "0",
                                   "--rcm-test", "--contactor-test"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "RCM self-test: passed" in out
    assert "through the safety loop's output test" in out
    assert "aux contact: before False, closed True, after False: OK" in out
    assert True in coil and coil[-1] is False, "the coil was energised by the test and released"
    heartbeat = factory.pin(16)
    assert not heartbeat.state and len(heartbeat.states) > 10, "the loop beat for the watchdog, then stopped"


def test_bring_up_contactor_test_is_refused_with_an_ev_connected(tmp_path, factory, monkeypatch, capsys):
    """State B: the safety loop refuses the output test; the coil is never energised."""
    board_module, sysfs, coil = _bring_up_on_fakes(tmp_path, factory, monkeypatch, "B")
    code = board_module._bring_up([str(EXAMPLE), "--duty", "53.3", "--count", "2", "--interval", "0",
                                   "--contactor-test"])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "contactor test refused: an output test needs state A (no EV connected)" in out
    assert "aux contact" not in out and True not in coil
    line = r"CP  \+9\.0\d V / -1[12]\.\d\d V  state B  PP 1500 ohm = 13 A  aux open  inputs ok"
    assert re.search(line, out), out
    assert sysfs.duty_percent() == 0.0  # left at -12 V (state F) when the tool ends
