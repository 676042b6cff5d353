"""The contactor opens when the software is gone: the heartbeat, its check before every session, safe-off.

The board's heartbeat circuit (hardware.md, "Hardware fail-safe") is modelled
as what it is: a charge pump (``hal.sim.heartbeat.ChargePump``) that charges
Q4's gate G on the heartbeat GPIO's falling edges and bleeds it through R61a,
R61b and the read-back divider, with Q4 in series with the contactor relay's
coil. Everything runs on the Raspberry Pi backend over its fakes, in simulated
time: G is read back on AIN3 of the fake ADC and Q4's drain on its GPIO, as on
the board.
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chargepoint.backends.raspberrypi.build import build_pi_hardware
from chargepoint.backends.raspberrypi.safe_off import make_safe
from chargepoint.cli.main import main
from chargepoint.config import ConfigError, load, load_board_view, parse
from chargepoint.safety import heartbeat_check
from chargepoint.safety.status import EvseFault
from hal.clock import ManualClock
from hal.pi.pwm import SysfsPwm
from hal.sim.heartbeat import ChargePump, PumpParts
from hal.sim.world import SimWorld
from tests.unit.pi_fakes import (
    ContactorPhysics,
    FakeAds1x15,
    FakePwmSysfs,
    PilotModel,
    RcmModel,
    SwitchInput,
)
from tests.unit.pump_fakes import HeartbeatCircuit

EXAMPLE = Path(__file__).parents[2] / "examples" / "raspberrypi.toml"
#: K1 drops this long after the last charging edge at the latest (hardware.md: C61 +10 %, a hot
#: 2N7002 at 0.7 V); and never before the earliest (C61 -10 %, a 2N7002 at 2.5 V).
LATEST_DROP_S = 0.125
EARLIEST_DROP_S = 0.045


class Board:
    """The example board on fakes, with the EV model, the contactor and the heartbeat circuit."""

    def __init__(self, tmp_path: Path, factory: Any, parts: PumpParts | None = None) -> None:
        self.factory = factory
        self.clock = ManualClock()
        self.config = load(EXAMPLE)
        board = self.config.board
        assert board is not None and board.heartbeat is not None
        self.sysfs = FakePwmSysfs(tmp_path)
        self.model = PilotModel(self.sysfs.duty_percent, clock=self.clock)
        self.bus = FakeAds1x15(self.model.adc_volts, chip=board.adc.type)
        self.hardware = build_pi_hardware(
            self.config, pin_factory=factory, i2c_bus=self.bus, sysfs_root=tmp_path, clock=self.clock,
            meter=SimWorld(self.clock).meter, blocking_sleep=self.sysfs.kernel_sleep,
            serial_factory=_no_port)
        self.evse = self.hardware.connectors[0].evse
        self.contactor = ContactorPhysics(factory, board.contactor.pin, board.contactor.aux_pin, self.clock,
                                          settle_s=0.0)
        RcmModel(factory, board.rcd.pin, board.rcd.test_pin)
        SwitchInput(factory, board.emergency_stop.pin)
        self.circuit = HeartbeatCircuit.attach(factory, board, self.model, self.clock.monotonic, parts=parts)
        self.coil_pin = factory.pin(board.contactor.pin)
        self.tick = self.config.safety.tick_s
        #: Whether K1's coil was ever energised (the coil GPIO high and Q4 conducting).
        self.coil_ever = False

    @property
    def coil_energised(self) -> bool:
        """K1 pulls in only while the coil GPIO is high *and* Q4 conducts."""
        return bool(self.coil_pin.state) and self.circuit.coil_enabled

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.tick)):
            self.evse.step()
            self.coil_ever |= self.coil_energised
            self.clock.advance(self.tick)

    def start_session(self) -> None:
        self.run(0.1)
        self.model.set(state="B")
        self.evse.allow()
        self.run(0.5)
        self.model.set(state="C")
        self.run(0.5)

    def charge(self) -> None:
        self.start_session()
        assert self.coil_energised, "charging: the loop beats and the contactor is closed"


def _no_port(*args: Any, **kwargs: Any) -> Any:
    raise OSError("no serial port in this test")


# ------------------------------------------------------------------ the pump as it is


def test_the_pump_charges_g_on_the_gpio_falling_edges_only():
    pump = ChargePump()
    pump.gpio(True, 0.001)  # rising GPIO16 edge: the buffer's output falls, P is clamped
    assert pump.gate_v(0.002) == 0.0 and pump.charging_edges == 0
    pump.gpio(False, 0.007)  # falling edge: the buffer's output rises and C60 shares its charge
    first = pump.gate_v(0.007)
    assert pump.charging_edges == 1 and 6.0 < first < 7.0
    t, level = 0.007, False
    for _ in range(40):  # a healthy loop: a step every 6 ms
        t += 0.006
        level = not level
        pump.gpio(level, t)
    assert 8.5 < pump.gate_v(t) < 9.5
    # A static level, high or low, charges nothing: G decays through R61a || R61b || R68+R69.
    g = pump.gate_v(t)
    tau = PumpParts().tau_gate_s
    assert pump.gate_v(t + tau) == pytest.approx(g / math.e, rel=1e-6)


def _stopped_after_charging(parts: PumpParts, step_s: float = 0.006) -> tuple[ChargePump, float]:
    """A pump pulsed at ``step_s`` for a while, stopped right after a charging (falling) edge."""
    pump = ChargePump(parts)
    t, level = 0.0, False
    for _ in range(60):
        t += step_s
        level = not level
        pump.gpio(level, t)
    if level:
        t += step_s
        pump.gpio(False, t)
    return pump, t


def _drop_after(parts: PumpParts, threshold_v: float) -> float:
    """Seconds from the last charging edge until G is below ``threshold_v`` (1 ms resolution)."""
    pump, t0 = _stopped_after_charging(parts)
    t = t0
    while pump.gate_v(t) >= threshold_v:
        t += 0.001
    return t - t0


@pytest.mark.parametrize(("parts", "threshold_v", "low_s", "high_s"), [
    (PumpParts(), 2.5, EARLIEST_DROP_S, 0.06),  # a 2N7002 at the top of its threshold range
    (PumpParts(), 1.0, 0.09, 0.1),  # nominal parts: "within 0.1 s" holds at 25 C
    (PumpParts(c61_f=517e-9), 0.7, 0.11, LATEST_DROP_S),  # C61 +10 %, a hot 2N7002
    (PumpParts(c61_f=423e-9), 2.5, EARLIEST_DROP_S, 0.055),  # C61 -10 %: the earliest drop
])
def test_k1_drops_between_the_bounds_hardware_md_gives(parts, threshold_v, low_s, high_s):
    assert low_s <= _drop_after(parts, threshold_v) <= high_s


def test_the_loop_beats_once_per_step_and_the_coil_drops_when_it_stalls(tmp_path, factory):
    board = Board(tmp_path, factory)
    board.charge()
    edges = board.circuit.pump.charging_edges
    board.run(0.05)
    assert board.circuit.pump.charging_edges - edges == round(0.05 / board.tick) // 2, \
        "one edge per step, every other one charges"
    # The loop stalls (the supervisor hangs or is stopped with SIGSTOP): no more steps, time goes on.
    stalled_at = board.clock.monotonic()
    assert factory.pin(17).state, "the contactor GPIO still says closed: Linux has not opened it"
    while board.coil_energised:
        board.clock.advance(0.001)
    assert EARLIEST_DROP_S - board.tick <= board.clock.monotonic() - stalled_at <= LATEST_DROP_S, \
        "the pump dropped the coil by itself"


# ------------------------------------------------------------------ the check before every session


def test_a_healthy_circuit_passes_its_check_before_the_session_and_the_car_charges(tmp_path, factory):
    board = Board(tmp_path, factory)
    reads: list[float] = []
    board.bus.on_conversion_read = lambda channel, volts: reads.append(board.clock.monotonic()) \
        if channel == 3 else None
    board.charge()
    check = board.evse.heartbeat_check
    assert check.passed and (check.report or "").startswith("check passed before the last session: G ")
    # G was read on AIN3 only during the check (the step stays short while charging), and the check
    # took a few tenths of a second of simulated time.
    assert reads and reads[-1] - reads[0] < heartbeat_check.SETTLE_LIMIT_S
    count = len(reads)
    board.run(1.0)
    assert len(reads) == count
    # The next session gets its own check.
    board.model.set(state="A")
    board.run(0.2)
    assert not check.passed
    board.charge()
    assert len(reads) > count


@pytest.mark.parametrize(("fault", "words"), [
    ({"r61a_ohms": math.inf}, "G still reads"),  # one bleed resistor open: the hold-up doubles
    ({"r61a_ohms": math.inf, "r61b_ohms": math.inf}, "G still reads"),  # the single-R61 design's fault
    ({"r62_ohms": math.inf}, "G still reads"),  # C60's charge keeps feeding G
    ({"q4_shorted": True}, "Q4 conducts with G at"),  # the interlock is gone
    ({"buffer_v": 0.0}, "the pump does not charge"),  # a dead buffer or pump
    ({"r68_ohms": math.inf}, "the pump does not charge"),  # the read-back sees nothing
    ({"r69_ohms": math.inf}, "the read-back divider is broken"),  # G unscaled, clamped at the input
])
def test_the_check_before_the_session_finds_each_single_fault_and_refuses_to_charge(
        tmp_path, factory, fault, words):
    board = Board(tmp_path, factory)
    board.circuit.pump.fail(**fault)
    board.start_session()
    status = board.evse.status
    assert EvseFault.HEARTBEAT in status.faults, board.evse.heartbeat_check.report
    assert words in (board.evse.heartbeat_check.report or "")
    assert not board.coil_ever and not factory.pin(17).state, "the contactor never closed"
    assert status.pwm_duty == 100.0, "no current offered"
    # Latched: it stays after the EV leaves, until a technician clears it.
    board.model.set(state="A")
    board.run(0.2)
    assert EvseFault.HEARTBEAT in board.evse.status.faults


def test_the_check_finds_a_fault_within_half_a_second_of_simulated_time(tmp_path, factory):
    board = Board(tmp_path, factory)
    board.circuit.pump.fail(r62_ohms=math.inf)
    board.run(0.1)
    board.model.set(state="B")
    plugged = board.clock.monotonic()
    while EvseFault.HEARTBEAT not in board.evse.status.faults:
        board.run(board.tick)
        assert board.clock.monotonic() - plugged < 1.0, "the check did not decide"
    # RCM self-test (at once on the fakes), pulses, then at most the quiet phase's limit.
    assert board.clock.monotonic() - plugged <= 0.1 + heartbeat_check.PULSE_S + heartbeat_check.FALL_LIMIT_S


def test_a_late_step_during_the_check_starts_it_again_instead_of_failing(tmp_path, factory):
    board = Board(tmp_path, factory)
    board.run(0.1)
    board.model.set(state="B")
    check = board.evse.heartbeat_check
    while check.phase is not heartbeat_check.Phase.QUIET:
        board.run(board.tick)
    board.run(0.09)
    board.clock.advance(0.08)  # the loop is held up around the limit: this reading cannot decide
    board.run(1.0)
    assert check.passed and EvseFault.HEARTBEAT not in board.evse.status.faults


@pytest.mark.parametrize("step_s", [0.025, 0.06])
def test_a_loop_too_slow_to_check_the_heartbeat_is_a_fault_not_an_endless_wait(tmp_path, factory, step_s):
    """Steps 25 ms apart read G too late after its edge to judge its rise (a healthy G has sagged
    below 5 V by then: no false "does not charge"), 60 ms apart too late for anything."""
    board = Board(tmp_path, factory)
    board.run(0.1)
    board.model.set(state="B")
    for _ in range(round(8.0 / step_s)):
        board.evse.step()
        board.clock.advance(step_s)
    assert EvseFault.HEARTBEAT in board.evse.status.faults
    assert "readings came too late to judge G 21 times in a row" in (board.evse.heartbeat_check.report or "")


def test_a_technician_clears_the_heartbeat_fault_after_the_repair_and_the_check_runs_again(tmp_path, factory):
    board = Board(tmp_path, factory)
    board.circuit.pump.fail(q4_shorted=True)
    board.start_session()
    assert EvseFault.HEARTBEAT in board.evse.status.faults
    board.model.set(state="A")
    board.run(0.2)
    board.circuit.pump.fail(q4_shorted=False)  # Q4 replaced
    assert board.evse.clear_faults()
    board.start_session()
    assert board.evse.heartbeat_check.passed and board.coil_energised


@pytest.mark.parametrize(("change", "key", "reason"), [
    ({"gate_channel": 2}, "board.heartbeat.gate_channel", "input 2 already reads the pilot or PP"),
    ({"gate_channel": 4}, "board.heartbeat.gate_channel", "must be at most 3, not 4"),  # an ADS1015
    ({"gate_ratio": 3.0}, "board.heartbeat.gate_ratio", "G at 12 V would read 4.00 V, above the ADC's 3.3 V"),
    ({"drain_pin": 17}, "board.heartbeat.drain_pin", "GPIO17 is already used by board.contactor.pin"),
])
def test_the_read_back_configuration_is_refused_with_file_key_and_reason(change, key, reason):
    data = tomllib.loads(EXAMPLE.read_text())
    data["board"]["heartbeat"].update(change)
    with pytest.raises(ConfigError) as raised:
        parse(data, "station.toml")
    assert (raised.value.file, raised.value.key, raised.value.reason) == ("station.toml", key, reason)


def test_without_a_gate_channel_the_board_runs_unchecked_and_says_so(tmp_path, factory, caplog):
    data = tomllib.loads(EXAMPLE.read_text())
    del data["board"]["heartbeat"]["gate_channel"]
    config = parse(data, "station.toml")
    sysfs = FakePwmSysfs(tmp_path)
    bus = FakeAds1x15(PilotModel(sysfs.duty_percent).adc_volts, chip=config.board.adc.type)
    hardware = build_pi_hardware(config, pin_factory=factory, i2c_bus=bus, sysfs_root=tmp_path,
                                 clock=ManualClock(), meter=SimWorld(ManualClock()).meter,
                                 blocking_sleep=sysfs.kernel_sleep, serial_factory=_no_port)
    check = hardware.connectors[0].evse.heartbeat_check
    assert check.passed and "not checked before sessions" in (check.report or "")
    assert "heartbeat circuit is not checked before sessions" in caplog.text


@pytest.mark.parametrize(("fault", "passed", "words"), [
    ({}, True, "check passed before the last session: G "),
    ({"r61a_ohms": math.inf}, False, "check FAILED: G still reads "),
    ({"q4_shorted": True}, False, "check FAILED: Q4 conducts with G at "),
])
def test_the_bring_up_tool_runs_the_same_check_once(tmp_path, factory, fault, passed, words):
    """Bring-up step 9 with both services stopped: the supervisor's check, run once by the tool."""
    from chargepoint.backends.raspberrypi.bringup import heartbeat_test
    from chargepoint.supervisor.board import pilot_device

    config = load(EXAMPLE)
    board = config.board
    clock = ManualClock()
    sysfs = FakePwmSysfs(tmp_path)
    model = PilotModel(sysfs.duty_percent)
    circuit = HeartbeatCircuit.attach(factory, board, model, clock.monotonic)
    circuit.pump.fail(**fault)
    pilot = pilot_device(board, clock, factory, FakeAds1x15(model.adc_volts, chip=board.adc.type), tmp_path,
                         sysfs.kernel_sleep)
    said: list[str] = []
    result = heartbeat_test(board, pilot, clock, said.append, pin_factory=factory, sleep=clock.advance)
    assert result is passed
    assert len(said) == 1 and said[0].startswith(f"heartbeat test: {words}")
    assert not factory.pin(board.heartbeat.pin).state, "GPIO16 left low"
    pilot.close()


def test_a_loop_whose_steps_keep_failing_stops_beating(tmp_path, factory):
    board = Board(tmp_path, factory)
    board.charge()
    pilot = board.evse._pilot

    def broken() -> Any:
        raise OSError("I2C bus stuck")

    pilot.read = pilot.read_high_v = pilot.read_low_v = broken
    before = board.circuit.pump.charging_edges
    board.run(0.2)
    assert board.circuit.pump.charging_edges == before, "a failed step is no sign of life"
    assert not board.coil_energised


def test_closing_the_loop_stops_the_heartbeat_low(tmp_path, factory):
    board = Board(tmp_path, factory)
    board.charge()
    board.evse.close()
    assert not factory.pin(16).state and not factory.pin(17).state
    edges = board.circuit.pump.charging_edges
    board.run(0.05)  # a step still running after close drives nothing
    assert board.circuit.pump.charging_edges == edges


def test_safe_off_makes_the_outputs_safe_with_no_daemon(tmp_path, factory):
    """What a killed daemon leaves behind: PWM at the 32 A duty, coil, heartbeat, shunt trip and RCM
    test active."""
    config = load(EXAMPLE)
    board = config.board
    assert board is not None
    sysfs = _left_driven(tmp_path, factory)  # the process died mid-session: its outputs keep their levels
    assert sysfs.duty_percent() == pytest.approx(53.3) and all(factory.pin(pin).state for pin in OUTPUT_PINS)

    results = make_safe(board, pin_factory=factory, sysfs_root=tmp_path, sleep=sysfs.kernel_sleep)

    assert [(what, done) for what, done, _ in results] == [
        ("contactor coil", True), ("heartbeat", True), ("shunt trip", True), ("RCM test", True),
        ("pilot PWM", True)]
    assert not any(factory.pin(pin).state for pin in OUTPUT_PINS)
    assert sysfs.duty_percent() == 0.0  # a steady -12 V: state F, "EVSE not available"


#: The example board's outputs: coil, heartbeat, shunt trip, RCM test (test_active_high = true).
OUTPUT_PINS = (17, 16, 26, 23)


def _left_driven(tmp_path: Path, factory: Any) -> FakePwmSysfs:
    """What a process killed mid-session and mid-RCM-test leaves: every output active, PWM at 53.3 %."""
    sysfs = FakePwmSysfs(tmp_path)
    SysfsPwm(0, 0, root=tmp_path, sleep=sysfs.kernel_sleep).set_duty(53.3)
    for pin in OUTPUT_PINS:
        factory.pin(pin).function = "output"
        factory.pin(pin).state = True
    return sysfs


def _with_unknown_keys(tmp_path: Path, board_change: tuple[str, str] | None = None) -> Path:
    """The example as a newer firmware might leave it: keys and sections this release does not know."""
    text = EXAMPLE.read_text()
    text = text.replace('[ocpp]\n', '[ocpp]\nfuture_key = 1\n', 1)
    text = text.replace('[station]\n', '[station]\nfleet_group = "north"\n', 1)
    text = text.replace('[hal]\n', '[hal]\nwatchdog = "external"\n', 1)
    text += '\n[newsection]\nsetting = true\n'
    if board_change is not None:
        text = text.replace(*board_change, 1)
    path = tmp_path / "chargepoint.toml"
    path.write_text(text)
    return path


def test_safe_off_command_ignores_what_it_does_not_know_and_makes_every_output_safe(
        tmp_path, factory, monkeypatch):
    sysfs = _left_driven(tmp_path, factory)
    path = _with_unknown_keys(tmp_path)
    with pytest.raises(ConfigError, match="unknown section"):
        load(path)  # the daemon's loader refuses the file ...
    monkeypatch.setattr("chargepoint.backends.raspberrypi.safe_off.SYSFS_PWM_ROOT", tmp_path)

    result = CliRunner().invoke(main, ["safe-off", "--config", str(path)])

    assert result.exit_code == 0, result.output  # ... safe-off reads [board] only
    assert "RCM test: safe: GPIO23 inactive" in result.output
    assert not any(factory.pin(pin).state for pin in OUTPUT_PINS)
    assert sysfs.duty_percent() == 0.0


def test_safe_off_releases_an_active_low_rcm_test_output_high(tmp_path, factory):
    path = _with_unknown_keys(tmp_path, ("test_active_high = true", "test_active_high = false"))
    _, board = load_board_view(path)
    assert board is not None and board.rcd is not None and not board.rcd.test_active_high
    pin = factory.pin(23)
    pin.function = "output"
    pin.state = False  # driven active (low)
    levels: list[Any] = []
    pin.hooks.append(levels.append)
    results = {what: done for what, done, _ in make_safe(board, pin_factory=factory, sysfs_root=tmp_path)}
    # Driven high (inactive), then released to an input as after a reboot (the mock's PWM pin reads 0 then).
    assert results["RCM test"] and levels[0] == 1 and pin.function == "input"


@pytest.mark.parametrize(("change", "key", "reason"), [
    (("pin = 17", "pin = 99"), "board.contactor.pin", "must be at most 27, not 99"),
    (("aux_pull = \"up\"", "aux_pul = \"up\""), "board.contactor.aux_pul",
     "unknown key; did you mean 'aux_pull'?"),
])
def test_safe_off_names_file_key_and_reason_of_a_broken_board_value(tmp_path, factory, change, key, reason):
    path = _with_unknown_keys(tmp_path, change)
    with pytest.raises(ConfigError) as raised:
        load_board_view(path)
    assert (raised.value.file, raised.value.key, raised.value.reason) == (str(path), key, reason)
    result = CliRunner().invoke(main, ["safe-off", "--config", str(path)])
    assert result.exit_code == 1
    assert f"{path}: {key}: {reason}" in result.output


def test_a_welded_contactor_trips_the_breaker_for_a_pulse(tmp_path, factory):
    """Closed while commanded open after the settle time: the shunt-trip relay is energised for
    1 s (the breaker, not the contactor, cuts the supply), then released; the fault stays."""
    board = Board(tmp_path, factory)
    board.charge()
    board.contactor.welded = True
    board.model.set(state="B")  # the EV stops: the coil is released, the contacts stay closed
    board.run(0.3)
    shunt = factory.pin(26)
    assert shunt.state, "the shunt release is energised"
    assert "welded" in {f.value for f in board.evse.status.faults}
    board.run(1.0)
    assert not shunt.state, "released after the pulse"
    assert "welded" in {f.value for f in board.evse.status.faults}


def test_safe_off_goes_on_when_one_output_fails(tmp_path, factory):
    """No PWM chip (the overlay is missing): the coil is still released."""
    board = load(EXAMPLE).board
    assert board is not None
    factory.pin(17).function = "output"
    factory.pin(17).state = True
    results = {what: (done, detail) for what, done, detail in
               make_safe(board, pin_factory=factory, sysfs_root=tmp_path / "nothing-here")}
    assert results["contactor coil"][0] and not factory.pin(17).state
    assert not results["pilot PWM"][0] and "does not exist" in results["pilot PWM"][1]


def test_safe_off_command_on_the_simulation_has_nothing_to_do(tmp_path):
    config = tmp_path / "sim.toml"
    config.write_text('[station]\nidentity = "X"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n')
    result = CliRunner().invoke(main, ["safe-off", "--config", str(config)])
    assert result.exit_code == 0 and "no board outputs to make safe" in result.output
