"""The contactor opens when the software is gone: the heartbeat, its hardware watchdog, safe-off.

The board's watchdog circuit (hardware.md, "Hardware fail-safe") is modelled
as what it is: a retriggerable monostable whose output is ANDed with the
contactor GPIO. Everything runs on the Raspberry Pi backend over its fakes,
in simulated time.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chargepoint.backends.raspberrypi.build import build_pi_hardware
from chargepoint.backends.raspberrypi.safe_off import make_safe
from chargepoint.cli.main import main
from chargepoint.config import ConfigError, load, load_board_view
from hal.clock import ManualClock
from hal.pi_pwm import SysfsPwm
from hal.sim import SimWorld
from tests.unit.pi_fakes import (
    ContactorPhysics,
    FakeAds1x15,
    FakePwmSysfs,
    PilotModel,
    RcmModel,
    SwitchInput,
)

EXAMPLE = Path(__file__).parents[2] / "examples" / "raspberrypi.toml"
#: The monostable's hold-up time on the reference board (hardware.md).
HOLD_S = 0.1


class Monostable:
    """A retriggerable monostable on the heartbeat pin: its output stays high for ``hold_s``
    after each edge. The coil is energised only while it and the contactor GPIO are high."""

    def __init__(self, factory: Any, heartbeat: int, coil: int, clock: Any, hold_s: float = HOLD_S) -> None:
        self.clock = clock
        self.hold_s = hold_s
        self.coil_pin = factory.pin(coil)
        self.last_edge = -math.inf
        self.edges = 0
        factory.pin(heartbeat).hooks.append(self._edge)

    def _edge(self, value: Any) -> None:
        self.edges += 1
        self.last_edge = self.clock.monotonic()

    @property
    def coil_energised(self) -> bool:
        armed = self.clock.monotonic() - self.last_edge < self.hold_s
        return armed and bool(self.coil_pin.state)


class Board:
    """The example board on fakes, with the EV model, the contactor and the watchdog circuit."""

    def __init__(self, tmp_path: Path, factory: Any) -> None:
        self.factory = factory
        self.clock = ManualClock()
        self.config = load(EXAMPLE)
        board = self.config.board
        assert board is not None and board.heartbeat is not None
        self.sysfs = FakePwmSysfs(tmp_path)
        self.model = PilotModel(self.sysfs.duty_percent, clock=self.clock)
        bus = FakeAds1x15(self.model.adc_volts, chip=board.adc.type)
        self.hardware = build_pi_hardware(
            self.config, pin_factory=factory, i2c_bus=bus, sysfs_root=tmp_path, clock=self.clock,
            meter=SimWorld(self.clock).meter, blocking_sleep=self.sysfs.kernel_sleep,
            serial_factory=_no_port)
        self.evse = self.hardware.connectors[0].evse
        self.contactor = ContactorPhysics(factory, board.contactor.pin, board.contactor.aux_pin, self.clock,
                                          settle_s=0.0)
        RcmModel(factory, board.rcd.pin, board.rcd.test_pin)
        SwitchInput(factory, board.emergency_stop.pin)
        self.watchdog = Monostable(factory, board.heartbeat.pin, board.contactor.pin, self.clock)
        self.tick = self.config.safety.tick_s

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.tick)):
            self.evse.step()
            self.clock.advance(self.tick)

    def charge(self) -> None:
        self.run(0.1)
        self.model.set(state="B")
        self.evse.allow()
        self.run(0.3)
        self.model.set(state="C")
        self.run(0.5)
        assert self.watchdog.coil_energised, "charging: the loop beats and the contactor is closed"


def _no_port(*args: Any, **kwargs: Any) -> Any:
    raise OSError("no serial port in this test")


def test_the_loop_beats_once_per_step_and_the_coil_drops_when_it_stalls(tmp_path, factory):
    board = Board(tmp_path, factory)
    board.charge()
    before = board.watchdog.edges
    board.run(0.05)
    assert board.watchdog.edges - before == round(0.05 / board.tick), "one edge per safety-loop step"
    # The loop stalls (the daemon hangs or is stopped with SIGSTOP): no more steps, time goes on.
    last = board.watchdog.edges
    board.clock.advance(board.tick)
    assert board.watchdog.edges == last, "the heartbeat stops within one safety-loop period"
    assert factory.pin(17).state, "the contactor GPIO still says closed: Linux has not opened it"
    board.clock.advance(HOLD_S)
    assert not board.watchdog.coil_energised, "the watchdog circuit dropped the coil by itself"


def test_a_loop_whose_steps_keep_failing_stops_beating(tmp_path, factory):
    board = Board(tmp_path, factory)
    board.charge()
    pilot = board.evse._pilot

    def broken() -> Any:
        raise OSError("I2C bus stuck")

    pilot.read = pilot.read_high_v = pilot.read_low_v = broken
    before = board.watchdog.edges
    board.run(0.05)
    assert board.watchdog.edges == before, "a failed step is no sign of life"
    assert not board.watchdog.coil_energised


def test_closing_the_loop_stops_the_heartbeat_low(tmp_path, factory):
    board = Board(tmp_path, factory)
    board.charge()
    board.evse.close()
    assert not factory.pin(16).state and not factory.pin(17).state
    edges = board.watchdog.edges
    board.run(0.05)  # a step still running after close drives nothing
    assert board.watchdog.edges == edges


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
