"""The phase contactor on the board: its `[board.phase_contactor]` key, the build, safe-off.

Absent means no phase switching; a wrong value is refused with the file, the key and the reason.
The build hands KM2's relay to the safety loop alone, released (one phase) at power-up.
"""

from __future__ import annotations

import pytest

from chargepoint.backends.raspberrypi.safe_off import make_safe
from chargepoint.config import ConfigError, load, parse
from chargepoint.supervisor.hardware import build_board
from hal.clock import ManualClock
from tests.unit.pi_fakes import FakeAds1x15, FakePwmSysfs, PilotModel
from tests.unit.test_pi_board import EXAMPLE, with_changes

FILE = "/etc/chargepoint/chargepoint.toml"
KM2 = {"board.phase_contactor.pin": 20}


def test_absent_means_no_phase_switching():
    assert load(EXAMPLE).board.phase_contactor is None


def test_the_pin_in_the_pin_map_is_accepted():
    board = parse(with_changes(KM2), FILE).board
    assert board.phase_contactor.pin == 20 and board.phase_contactor.active_high


@pytest.mark.parametrize(
    ("changes", "key", "reason"),
    [
        ({"board.phase_contactor.pin": 17}, "board.phase_contactor.pin",
         "GPIO17 is already used by board.contactor"),
        ({"board.phase_contactor.pin": 2}, "board.phase_contactor.pin", "GPIO2 is I2C1 SDA"),
        ({"board.phase_contactor.pin": 28}, "board.phase_contactor.pin", "must be at most 27"),
        ({"board.phase_contactor.pin": "GPIO20"}, "board.phase_contactor.pin", "must be"),
        ({"board.phase_contactor.active_high": True}, "board.phase_contactor.pin", "must be a number"),
        ({**KM2, "board.phase_contactor.aux_pin": 21}, "board.phase_contactor.aux_pin", "unknown key"),
        ({"board.phase_contactor": 20}, "board.phase_contactor", "must be a table"),
        ({**KM2, "station.supply_phases": 1}, "board.phase_contactor", "needs station.supply_phases = 3"),
    ],
)
def test_a_wrong_phase_contactor_is_refused_with_file_key_and_reason(changes, key, reason):
    with pytest.raises(ConfigError) as info:
        parse(with_changes(changes), FILE)
    assert (info.value.file, info.value.key) == (FILE, key)
    assert reason in info.value.reason


def _build(tmp_path, factory, data):
    config = parse(data, FILE)
    sysfs = FakePwmSysfs(tmp_path)
    model = PilotModel(sysfs.duty_percent)
    bus = FakeAds1x15(model.adc_volts, chip="ads1015")
    return build_board(config, pin_factory=factory, i2c_bus=bus, sysfs_root=tmp_path, clock=ManualClock(),
                       blocking_sleep=sysfs.kernel_sleep)


def test_the_supervisor_builds_km2_released_and_gives_it_to_the_safety_loop(tmp_path, factory):
    hardware = _build(tmp_path, factory, with_changes(KM2))
    evse = hardware.connectors[0].evse
    assert evse.phases.configured and evse.status.phases == 1
    assert not factory.pin(20).state, "KM2's relay released at start: one phase"
    hardware.close()


def test_without_the_key_the_safety_loop_refuses_phase_requests(tmp_path, factory):
    hardware = _build(tmp_path, factory, with_changes({}))
    evse = hardware.connectors[0].evse
    assert "no phase contactor configured" in (evse.phases.request(1) or "")
    hardware.close()


def test_safe_off_releases_km2(tmp_path, factory):
    board = parse(with_changes(KM2), FILE).board
    results = {what: done for what, done, _ in make_safe(board, pin_factory=factory, sysfs_root=tmp_path)}
    assert results["phase contactor"]
    assert not factory.pin(20).state


def test_the_simulation_has_one_on_request_and_the_safety_loop_drives_it(tmp_path):
    from chargepoint.supervisor.hardware import build_simulation

    base = {"station": {"identity": "CP1", "state_dir": str(tmp_path)}}
    assert parse(base, FILE).simulation.phase_contactor is False
    config = parse({**base, "simulation": {"phase_contactor": True}}, FILE)
    hardware = build_simulation(config, ManualClock())
    guarded = hardware.connectors[0]
    assert guarded.world.phase_contactor is not None and guarded.evse.phases.configured
    hardware.close()
    with pytest.raises(ConfigError) as info:
        parse({"station": {"identity": "CP1", "supply_phases": 1}, "simulation": {"phase_contactor": True}},
              FILE)
    assert info.value.key == "simulation.phase_contactor" and "supply_phases = 3" in info.value.reason


def test_on_the_board_the_safety_loop_energises_km2_after_the_pause(tmp_path, factory):
    config = parse(with_changes(KM2), FILE)
    sysfs = FakePwmSysfs(tmp_path)
    model = PilotModel(sysfs.duty_percent)
    bus = FakeAds1x15(model.adc_volts, chip="ads1015")
    clock = ManualClock()
    hardware = build_board(config, pin_factory=factory, i2c_bus=bus, sysfs_root=tmp_path, clock=clock,
                           blocking_sleep=sysfs.kernel_sleep)
    evse = hardware.connectors[0].evse
    factory.pin(22).drive_high()  # the RCM healthy
    factory.pin(24).drive_low()  # the emergency stop loop closed
    factory.pin(27).drive_low()  # KM1's mirror contact: open
    evse.clear_faults()
    for _ in range(40):
        clock.advance(0.1)
        evse.step()
    assert factory.pin(20).state and evse.status.phases == 3
    assert not factory.pin(17).state, "KM1 stayed open"
    hardware.close()
    assert not factory.pin(20).state, "released when the loop closes"
