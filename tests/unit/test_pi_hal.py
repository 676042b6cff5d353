"""The Raspberry Pi hal drivers against fakes at their boundaries.

sysfs PWM on a fake pwmchip tree, the ADS1115/ADS1015 driver on a fake that
implements the chip's registers, the MCP3008 burst front end on gpiozero's mock
SPI, GPIO devices on gpiozero's MockFactory. No real time is measured here.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.clock import ManualClock
from hal.pi.ads1x15 import AdcError, Ads1x15
from hal.pi.contactor import PiContactor
from hal.pi.inputs import InputSpec, PiFaultInputs, SelfTestSpec
from hal.pi.mcp3008 import Mcp3008Burst
from hal.pi.pilot import OffsetDivider, PeakDetectorFrontEnd, PiPilot, PullUpDivider
from hal.pi.pwm import GpioZeroPwm, PwmError, SysfsPwm, find_pwmchip
from tests.unit.pi_fakes import (
    REFERENCE_DIVIDER,
    REFERENCE_PULLUP,
    FakeAds1x15,
    FakePwmSysfs,
    MockMcp3008,
    PilotModel,
    RcmModel,
    SwitchInput,
)


def no_sleep(seconds: float) -> None:
    pass


# ------------------------------------------------------------------ sysfs PWM


def test_sysfs_pwm_exports_configures_and_enables(tmp_path):
    fake = FakePwmSysfs(tmp_path)
    SysfsPwm(0, 0, root=tmp_path, sleep=fake.kernel_sleep)
    assert (fake.chip_dir / "export").read_text() == "0"
    assert fake.sleeps >= 1  # waited for the kernel (udev) to create pwm0
    assert fake.read("period") == "1000000"
    assert fake.read("enable") == "1"
    assert fake.duty_percent() == 100.0  # starts at a steady +12 V


def test_sysfs_pwm_duty_resolution_is_better_than_a_tenth_of_a_percent(tmp_path):
    fake = FakePwmSysfs(tmp_path, exported=True)
    pwm = SysfsPwm(0, 0, root=tmp_path, sleep=no_sleep)
    pwm.set_duty(10.05)
    assert fake.read("duty_cycle") == "100500"
    pwm.set_duty(16 / 0.6)  # 16 A: 26.666...%, rounded down (never offer more than asked)
    assert fake.read("duty_cycle") == "266666"
    pwm.set_duty(0.0)
    assert fake.duty_percent() == 0.0
    with pytest.raises(ValueError):
        pwm.set_duty(100.5)


def test_sysfs_pwm_never_writes_a_duty_above_the_period(tmp_path, monkeypatch):
    fake = FakePwmSysfs(tmp_path, exported=True)
    (fake.channel() / "period").write_text("500000")  # left over from another program
    (fake.channel() / "duty_cycle").write_text("400000")
    writes: list[tuple[str, str]] = []
    real_write = SysfsPwm._write

    def spy(path: Path, text: str) -> None:
        writes.append((path.name, text))
        real_write(path, text)
        period = int((path.parent / "period").read_text())
        duty = int((path.parent / "duty_cycle").read_text())
        assert duty <= period, writes

    monkeypatch.setattr(SysfsPwm, "_write", staticmethod(spy))
    SysfsPwm(0, 0, root=tmp_path, sleep=no_sleep)
    assert writes[:3] == [("duty_cycle", "0"), ("period", "1000000"), ("duty_cycle", "1000000")]
    assert writes[-1] == ("enable", "1")


def test_sysfs_pwm_inverted_board(tmp_path):
    fake = FakePwmSysfs(tmp_path, exported=True)
    pwm = SysfsPwm(0, 0, root=tmp_path, inverted=True, sleep=no_sleep)
    assert fake.read("duty_cycle") == "0"  # 100 % on an inverting stage
    pwm.set_duty(25.0)
    assert fake.read("duty_cycle") == "750000"


def test_sysfs_pwm_finds_the_pi5_rp1_chip_by_device_name(tmp_path):
    fake = FakePwmSysfs(tmp_path, chip=0, device="1f0009c000.pwm")  # the fan's PWM on a Pi 5
    fake.add_chip(2, "1f00098000.pwm", npwm=4)
    assert find_pwmchip(tmp_path, "1f00098000.pwm") == 2
    pwm = SysfsPwm("1f00098000.pwm", 2, root=tmp_path, sleep=fake.kernel_sleep)
    assert pwm.path == tmp_path / "pwmchip2" / "pwm2"
    assert (tmp_path / "pwmchip2" / "pwm2" / "enable").read_text() == "1"


def test_sysfs_pwm_errors_say_what_to_check(tmp_path):
    with pytest.raises(PwmError, match="dtoverlay=pwm"):
        SysfsPwm(0, 0, root=tmp_path, sleep=no_sleep)
    FakePwmSysfs(tmp_path, npwm=2)
    with pytest.raises(PwmError, match="channels 0..1"):
        SysfsPwm(0, 2, root=tmp_path, sleep=no_sleep)
    with pytest.raises(PwmError, match="no PWM chip for device"):
        SysfsPwm("1f00098000.pwm", 2, root=tmp_path, sleep=no_sleep)
    # the kernel never creates pwm0 (no permission, wrong overlay): bounded wait, then an error
    with pytest.raises(PwmError, match="group gpio"):
        SysfsPwm(0, 0, root=tmp_path, export_timeout_s=0.05, sleep=no_sleep)


def test_gpiozero_pwm_fallback_warns_and_uses_whole_percent(caplog):
    factory = MockFactory(pin_class=MockPWMPin)
    with caplog.at_level(logging.WARNING, logger="hal.pi.pwm"):
        pwm = GpioZeroPwm(18, pin_factory=factory)
    assert "software-timed with 1 % steps" in caplog.text
    pin = factory.pin(18)
    assert pin.frequency == 1000
    assert pin.state == 1.0
    pwm.set_duty(16 / 0.6)
    assert pin.state == pytest.approx(0.26)  # rounded down: 15.6 A, never 16.2 A
    pwm.set_duty(50.0)
    assert pin.state == pytest.approx(0.50)
    pwm.close()


# ------------------------------------------------------------------ ADS1x15


def test_ads1115_config_word_and_register_protocol():
    fake = FakeAds1x15(lambda ch: {0: 1.5, 1: -0.25, 2: 3.0}.get(ch, 0.0))
    adc = Ads1x15(fake, 0x48, full_scale_v=4.096, data_rate=860, sleep=no_sleep)
    # OS=1 start, MUX=100 (AIN0/GND), PGA=001 (4.096 V), MODE=1 single-shot, DR=111 (860), comparator off
    assert adc.config_word(0) == 0xC3E3
    assert adc.read_volts(0) == pytest.approx(1.5, abs=125e-6)
    assert fake.configs[-1] == 0xC3E3
    assert adc.read_volts(1) == pytest.approx(-0.25, abs=125e-6)
    assert adc.read_volts(2) == pytest.approx(3.0, abs=125e-6)
    assert [c for c, _ in fake.conversions] == [0, 1, 2]


def test_ads1015_result_is_twelve_bits_left_aligned():
    fake = FakeAds1x15(lambda ch: -1.0 if ch == 3 else 1.0, chip="ads1015")
    adc = Ads1x15(fake, chip="ads1015", full_scale_v=2.048, data_rate=3300, sleep=no_sleep)
    assert adc.config_word(3) & 0x00E0 == 0x00C0  # 3300 SPS
    assert adc.read_code(0) == 1000
    assert adc.read_code(3) == -1000
    assert fake.registers[0] == (-1000 << 4) & 0xFFFF  # what the chip holds: left-aligned
    assert adc.read_volts(3) == pytest.approx(-1.0, abs=1e-3)


@settings(max_examples=60, deadline=None)
@given(volts=st.floats(min_value=-4.0, max_value=4.0), chip=st.sampled_from(["ads1115", "ads1015"]))
def test_ads_reads_back_any_voltage_within_one_lsb(volts, chip):
    fake = FakeAds1x15(lambda ch: volts, chip=chip)
    adc = Ads1x15(fake, chip=chip, full_scale_v=4.096, sleep=no_sleep)
    lsb = 4.096 / (32768 if chip == "ads1115" else 2048)
    assert abs(adc.read_volts(1) - volts) <= lsb


def test_ads_waits_for_the_os_bit_and_never_reads_a_stale_result():
    values = iter([0.5, 1.0, 1.5])
    fake = FakeAds1x15(lambda ch: next(values), busy_reads=3)
    sleeps: list[float] = []
    adc = Ads1x15(fake, sleep=sleeps.append)
    assert [round(adc.read_volts(0), 3) for _ in range(3)] == [0.5, 1.0, 1.5]
    assert sleeps[0] == pytest.approx(1.1 / 860 + 50e-6)  # one conversion time first, then polls
    assert len(sleeps) == 3 * (1 + 3)


def test_ads_conversion_that_never_ends_is_an_error():
    fake = FakeAds1x15(lambda ch: 1.0, busy_reads=1000)
    adc = Ads1x15(fake, sleep=no_sleep, max_polls=5)
    with pytest.raises(AdcError, match="did not finish"):
        adc.read_volts(0)


def test_ads_missing_chip_is_reported_at_start():
    fake = FakeAds1x15(lambda ch: 0.0, address=0x49)
    with pytest.raises(AdcError, match="no ADS1115 answers at I2C address 0x48"):
        Ads1x15(fake, 0x48, sleep=no_sleep)
    with pytest.raises(ValueError):
        Ads1x15(fake, 0x49, data_rate=3300, sleep=no_sleep)  # an ADS1015 rate


# ------------------------------------------------------------------ scaling


def test_offset_divider_of_the_reference_board():
    d = REFERENCE_DIVIDER
    assert d.k == pytest.approx(8.9212, abs=1e-4)
    assert d.offset_v == pytest.approx(-14.7929, abs=1e-4)
    assert d.to_adc(12.0) == pytest.approx(3.0033, abs=1e-4)
    assert d.to_adc(-12.0) == pytest.approx(0.3131, abs=1e-4)
    for volts in (-13.0, -12.0, 0.0, 3.0, 6.0, 9.0, 12.0, 13.0):
        assert d.to_pilot(d.to_adc(volts)) == pytest.approx(volts)
    # superposition, independently of the formula in the driver
    r1, r2, r3, vref = 100e3, 16.9e3, 49.9e3, 2.5
    node = (6.0 / r1 + vref / r2) / (1 / r1 + 1 / r2 + 1 / r3)
    assert d.to_adc(6.0) == pytest.approx(node)


def test_pull_up_divider_reads_each_pp_resistor_and_open():
    p = REFERENCE_PULLUP
    for ohms in (100.0, 220.0, 680.0, 1500.0):
        assert p.to_ohms(p.to_adc(ohms)) == pytest.approx(ohms)
    assert p.to_ohms(3.3) == math.inf
    assert p.to_ohms(-0.01) == 0.0
    with pytest.raises(ValueError):
        PullUpDivider(0, 3.3)
    with pytest.raises(ValueError):
        OffsetDivider(100e3, 0, 1, 2.5)


# ------------------------------------------------------------------ PiPilot


def make_pilot(tmp_path, factory=None, negative=None, clock=None, pp=True):
    sysfs = FakePwmSysfs(tmp_path, exported=True)
    pwm = SysfsPwm(0, 0, root=tmp_path, sleep=no_sleep)
    model = PilotModel(sysfs.duty_percent)
    adc = Ads1x15(FakeAds1x15(model.adc_volts), sleep=no_sleep)
    front = PeakDetectorFrontEnd(adc, 0, 1, 2 if pp else None)
    pilot = PiPilot(pwm, front, REFERENCE_DIVIDER, REFERENCE_PULLUP if pp else None,
                    negative_switch=negative, monotonic=(clock.monotonic if clock else None))
    return pilot, model, sysfs


def test_pi_pilot_reads_every_state_through_the_front_end(tmp_path):
    pilot, model, sysfs = make_pilot(tmp_path)
    for state, volts in (("A", 12.0), ("B", 9.0), ("C", 6.0), ("D", 3.0)):
        model.set(state=state)
        levels = pilot.read()
        assert levels.high_v == pytest.approx(volts, abs=0.01)
        assert levels.low_v == pytest.approx(volts, abs=0.01)  # steady +12 V: no negative half
    pilot.set_pwm(50.0)
    assert sysfs.duty_percent() == 50.0
    model.set(state="C")
    assert pilot.read().low_v == pytest.approx(-12.0, abs=0.01)
    model.set(diode=False)
    assert pilot.read().low_v == pytest.approx(-6.0, abs=0.01)  # no diode: the EV's resistor shows
    model.set(short=True)
    assert pilot.read().high_v == pytest.approx(0.0, abs=0.01)


def test_pi_pilot_negative_level(tmp_path):
    pilot, model, sysfs = make_pilot(tmp_path)
    pilot.set_negative()
    assert sysfs.duty_percent() == 0.0
    assert pilot.read().high_v == pytest.approx(-12.0, abs=0.01)


def test_pi_pilot_switches_a_separate_negative_path(tmp_path, factory):
    from gpiozero import OutputDevice

    switch = OutputDevice(5, pin_factory=factory)
    pilot, model, sysfs = make_pilot(tmp_path, negative=switch)
    pilot.set_negative()
    assert factory.pin(5).state and sysfs.duty_percent() == 0.0
    pilot.set_pwm(100.0)
    assert not factory.pin(5).state and sysfs.duty_percent() == 100.0


def test_pi_pilot_proximity_is_read_at_most_every_interval(tmp_path):
    clock = ManualClock()
    pilot, model, sysfs = make_pilot(tmp_path, clock=clock)
    model.set(state="B", cable_ohms=680.0)
    assert pilot.read_proximity_ohms() == pytest.approx(680.0, rel=1e-3)
    model.set(cable_ohms=1500.0)
    assert pilot.read_proximity_ohms() == pytest.approx(680.0, rel=1e-3)  # cached
    clock.advance(0.1)
    assert pilot.read_proximity_ohms() == pytest.approx(1500.0, rel=1e-3)
    model.set(state="A")
    clock.advance(0.1)
    assert pilot.read_proximity_ohms() == math.inf  # open: no cable
    pilot.read()
    model.set(state="B", cable_ohms=220.0)  # plugged in: the pilot moves, PP is read at once
    pilot.read()
    assert pilot.read_proximity_ohms() == pytest.approx(220.0, rel=1e-3)


def test_pi_pilot_tethered_cable_has_no_proximity(tmp_path):
    pilot, model, sysfs = make_pilot(tmp_path, pp=False)
    assert pilot.read_proximity_ohms() is None


def test_mcp3008_burst_takes_min_and_max_of_the_waveform():
    factory = MockFactory()  # plain MockPin: the mock SPI bus needs its own pin classes
    Device.pin_factory = factory
    levels = {"high": REFERENCE_DIVIDER.to_adc(6.0), "low": REFERENCE_DIVIDER.to_adc(-12.0)}
    count = {"n": 0}

    def voltages(channel: int) -> float:
        if channel == 1:
            return REFERENCE_PULLUP.to_adc(220.0)
        count["n"] += 1  # a 25 % duty PWM, sampled asynchronously
        return levels["high"] if count["n"] % 4 == 0 else levels["low"]

    device = MockMcp3008(voltages, pin_factory=factory)
    burst = Mcp3008Burst(0, 1, burst_samples=16, pin_factory=factory)
    try:
        high, low = burst.read_cp()
        lsb = 3.3 / 1024
        assert high == pytest.approx(levels["high"], abs=lsb)
        assert low == pytest.approx(levels["low"], abs=lsb)
        assert len([s for s in device.samples if s[0] == 0]) == 16
        assert REFERENCE_PULLUP.to_ohms(burst.read_pp()) == pytest.approx(220.0, rel=0.03)
        pilot = PiPilot(_NullPwm(), burst, REFERENCE_DIVIDER, REFERENCE_PULLUP)
        levels_read = pilot.read()
        assert levels_read.high_v == pytest.approx(6.0, abs=0.05)
        assert levels_read.low_v == pytest.approx(-12.0, abs=0.05)
    finally:
        burst.close()
        device.close()
        Device.pin_factory = None


class _NullPwm:
    def set_duty(self, percent: float) -> None:
        pass

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ contactor and inputs


def test_contactor_coil_and_aux_polarity(factory):
    contactor = PiContactor(17, aux_pin=27, aux_active_high=True, aux_pull="up", pin_factory=factory)
    coil, aux = factory.pin(17), factory.pin(27)
    assert coil.state is False or coil.state == 0  # opens on start
    contactor.set_closed(True)
    assert coil.state
    aux.drive_low()
    assert contactor.feedback() is False
    aux.drive_high()
    assert contactor.feedback() is True
    contactor.set_closed(False)
    assert not coil.state
    contactor.close()
    inverted = PiContactor(17, coil_active_high=False, pin_factory=factory)
    assert factory.pin(17).state  # active low coil: high = off
    assert inverted.feedback() is None


def test_trip_is_handled_in_the_callback_at_once_and_latches(factory):
    inputs = PiFaultInputs([InputSpec("rcd", 22, False, "down"), InputSpec("emergency_stop", 24, True, "up")],
                           pin_factory=factory)
    estop = SwitchInput(factory, 24)
    rcm = RcmModel(factory, 22)
    seen: list[str] = []
    inputs.on_trip(seen.append)
    assert inputs.active() == frozenset()
    rcm.trip()  # the edge calls back synchronously, in the pin's callback
    assert seen == ["rcd"]
    assert inputs.active() == {"rcd"}
    rcm.release()
    assert inputs.active() == {"rcd"}  # latched
    inputs.reset()
    assert inputs.active() == frozenset()
    estop.set(True)
    assert seen == ["rcd", "emergency_stop"]
    inputs.reset()
    assert inputs.active() == {"emergency_stop"}  # still pressed: stays active
    inputs.close()


def test_rcm_self_test_pulses_and_sees_the_trip_without_reporting_it(factory):
    inputs = PiFaultInputs([InputSpec("rcd", 22, False, "down")],
                           self_test=SelfTestSpec(23, timeout_s=0.05, recovery_s=0.05), pin_factory=factory)
    rcm = RcmModel(factory, 22, 23)
    seen: list[str] = []
    inputs.on_trip(seen.append)
    assert inputs.self_test() is True
    assert rcm.tests == 1 and not factory.pin(23).state
    assert seen == [] and inputs.active() == frozenset()
    rcm.dead = True  # the RCM no longer reacts to its test input
    assert inputs.self_test() is False
    assert seen == []
    rcm.dead, rcm.stuck = False, True  # trips but does not release: a real trip from then on
    assert inputs.self_test() is False
    assert seen == ["rcd"] and inputs.active() == {"rcd"}
    inputs.close()


def test_inputs_without_test_output_pass_the_self_test(factory):
    inputs = PiFaultInputs([InputSpec("rcd", 22, False, "down")], pin_factory=factory)
    assert inputs.self_test() is True
    with pytest.raises(ValueError):
        PiFaultInputs([InputSpec("rcd", 5, False)], self_test=SelfTestSpec(6, input_name="x"),
                      pin_factory=factory)
