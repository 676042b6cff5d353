"""Fakes at the Raspberry Pi hardware boundaries, shared by the Pi tests and bench/safety_latency.py.

* GPIO: gpiozero's MockFactory with :class:`HookedPin` (MockPWMPin plus change
  hooks), so a model can react to an output pin: the contactor's auxiliary
  contact follows its coil (:class:`ContactorPhysics`), the RCM trips on its
  test input (:class:`RcmModel`).
* sysfs: :class:`FakePwmSysfs` builds a ``pwmchipN`` tree in a directory and
  plays the kernel's part of an export.
* I2C: :class:`FakeAds1x15` implements the ADS1115/ADS1015 registers behind
  smbus2's block read/write calls; its inputs are voltages computed by
  :class:`PilotModel` from the EV's state and the PWM actually written to the
  fake sysfs, through the reference board's dividers.
* SPI: :class:`MockMcp3008` answers gpiozero's MCP3008 protocol bit by bit.
* The heartbeat: ``tests/unit/pump_fakes.py``.
"""

from __future__ import annotations

import errno
import math
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpiozero import Device
from gpiozero.pins.mock import MockFactory, MockPWMPin, MockSPIDevice

from hal.pi.pilot import OffsetDivider, PullUpDivider

# ------------------------------------------------------------------ GPIO


class HookedPin(MockPWMPin):
    """A mock pin (PWM-capable) that calls ``hooks`` with each new state."""

    def __init__(self, factory: Any, info: Any) -> None:
        self.hooks: list[Callable[[Any], None]] = []
        super().__init__(factory, info)

    def _change_state(self, value: Any) -> bool:
        changed = super()._change_state(value)
        if changed:
            for hook in list(getattr(self, "hooks", ())):
                hook(value)
        return changed


def mock_factory() -> MockFactory:
    """A fresh MockFactory whose pins are :class:`HookedPin`; also gpiozero's default."""
    factory = MockFactory(pin_class=HookedPin)
    Device.pin_factory = factory
    return factory


class ContactorPhysics:
    """The contactor behind the coil GPIO and its auxiliary contact's GPIO.

    The main contacts follow the coil ``settle_s`` after each change (on the
    injected clock), as far as :meth:`update` is called; welded contacts stay
    closed; a broken auxiliary contact reads open. ``aux_active_high``: the
    GPIO reads high when the main contacts are closed (the reference board's
    NC mirror contact through an optocoupler).
    """

    def __init__(self, factory: MockFactory, coil: int, aux: int | None, clock: Any, *,
                 settle_s: float = 0.03, aux_active_high: bool = True) -> None:
        self.clock = clock
        self.settle_s = settle_s
        self.aux_active_high = aux_active_high
        self.coil_pin = factory.pin(coil)
        self.aux_pin = None if aux is None else factory.pin(aux)
        self.commanded = False
        self.contacts = False
        self.welded = False
        self.aux_broken = False
        self.opened_at: list[float] = []  # clock time of each open command
        self.closed_at: list[float] = []
        self._switched_at = -math.inf
        self.coil_pin.hooks.append(self._coil)
        self._drive_aux()

    def _coil(self, value: Any) -> None:
        closed = bool(value)
        if closed != self.commanded:
            self.commanded = closed
            self._switched_at = self.clock.monotonic()
            (self.closed_at if closed else self.opened_at).append(self._switched_at)
            if self.settle_s == 0:
                self.update()  # contacts and aux follow at once: no one needs to call update()

    def update(self) -> None:
        if self.clock.monotonic() - self._switched_at >= self.settle_s:
            self.contacts = self.commanded or (self.welded and self.contacts)
        self._drive_aux()

    def _drive_aux(self) -> None:
        if self.aux_pin is None:
            return
        closed = self.contacts and not self.aux_broken
        high = closed if self.aux_active_high else not closed
        if self.aux_pin.function == "input":
            (self.aux_pin.drive_high if high else self.aux_pin.drive_low)()


class RcmModel:
    """The residual current monitor: trip output on a GPIO input, test input on a GPIO output.

    ``trip_active_high`` is the level the trip GPIO reads while tripped. On the
    reference board the RCM's healthy signal lights optocoupler U8, which pulls
    the GPIO high; tripped, unpowered or with a wire broken the LED is dark and
    the pull-down reads low: a lost signal is a trip (``lose_signal``).
    The test input trips it for as long as it is driven, unless ``dead``.
    """

    def __init__(self, factory: MockFactory, trip: int, test: int | None = None, *,
                 trip_active_high: bool = False) -> None:
        self.trip_pin = factory.pin(trip)
        self.test_pin = None if test is None else factory.pin(test)
        self.trip_active_high = trip_active_high
        self.dead = False
        self.stuck = False  # stays tripped after a test (a latching or broken RCM)
        self.tests = 0
        self._tripped = False
        if self.test_pin is not None:
            self.test_pin.hooks.append(self._test)
        self._drive()

    def _test(self, value: Any) -> None:
        if value:
            self.tests += 1
        if self.dead:
            return
        if value:
            self._set(True)
        elif not self.stuck:
            self._set(False)

    def trip(self) -> None:
        self._set(True)

    def lose_signal(self) -> None:
        """The RCM loses its supply or the wire to U8 breaks: the GPIO reads its pull (down)."""
        self.dead = True
        self.trip_pin.drive_low()

    def release(self) -> None:
        self._set(False)

    def _set(self, tripped: bool) -> None:
        self._tripped = tripped
        self._drive()

    def _drive(self) -> None:
        high = self._tripped == self.trip_active_high
        (self.trip_pin.drive_high if high else self.trip_pin.drive_low)()


class SwitchInput:
    """A normally-closed loop (emergency stop) read through an optocoupler:
    the GPIO reads ``tripped_high`` when the loop is open."""

    def __init__(self, factory: MockFactory, pin: int, *, tripped_high: bool = True) -> None:
        self.pin = factory.pin(pin)
        self.tripped_high = tripped_high
        self.set(False)

    def set(self, tripped: bool) -> None:
        high = tripped == self.tripped_high
        (self.pin.drive_high if high else self.pin.drive_low)()


# ------------------------------------------------------------------ sysfs


#: How long a read of the fake PWM tree waits for a file another thread is rewriting.
READ_PATIENCE_S = 2.0


class FakePwmSysfs:
    """A ``/sys/class/pwm`` tree with one chip; :meth:`kernel_sleep` is the kernel's
    reaction to an export (pass it as the driver's ``sleep``)."""

    def __init__(self, root: Path, chip: int = 0, *, npwm: int = 2,
                 device: str = "fe20c000.pwm", exported: bool = False) -> None:
        self.root = Path(root)
        self.chip_dir = self.root / f"pwmchip{chip}"
        self.chip_dir.mkdir(parents=True)
        (self.chip_dir / "npwm").write_text(f"{npwm}\n")
        for name in ("export", "unexport"):
            (self.chip_dir / name).write_text("")
        devices = self.root / "devices"
        devices.mkdir(exist_ok=True)
        (devices / device).mkdir()
        os.symlink(devices / device, self.chip_dir / "device")
        self.npwm = npwm
        self.sleeps = 0
        if exported:
            for channel in range(npwm):
                self._create(channel)

    def add_chip(self, chip: int, device: str, npwm: int = 2) -> Path:
        chip_dir = self.root / f"pwmchip{chip}"
        chip_dir.mkdir()
        (chip_dir / "npwm").write_text(f"{npwm}\n")
        (chip_dir / "export").write_text("")
        (self.root / "devices" / device).mkdir()
        os.symlink(self.root / "devices" / device, chip_dir / "device")
        return chip_dir

    def _create(self, channel: int, chip_dir: Path | None = None) -> None:
        d = (chip_dir or self.chip_dir) / f"pwm{channel}"
        if d.exists():
            return
        d.mkdir()
        for name, value in (("period", "0"), ("duty_cycle", "0"), ("enable", "0"), ("polarity", "normal")):
            (d / name).write_text(value + "\n")

    def kernel_sleep(self, seconds: float) -> None:
        """Whatever was written to ``export`` becomes a ``pwmN`` directory."""
        self.sleeps += 1
        for chip_dir in self.root.glob("pwmchip*"):
            text = (chip_dir / "export").read_text().strip()
            if text:
                self._create(int(text), chip_dir)

    def channel(self, channel: int = 0) -> Path:
        return self.chip_dir / f"pwm{channel}"

    def read(self, name: str, channel: int = 0) -> str:
        # A plain file is truncated before it is rewritten (sysfs attributes are not):
        # a reader in another thread may catch it empty until the writer runs again, which
        # on a loaded machine can take a scheduler slice or more: wait for it, briefly.
        deadline = time.monotonic() + READ_PATIENCE_S
        while True:
            text = (self.channel(channel) / name).read_text().strip()
            if text or time.monotonic() > deadline:
                return text
            time.sleep(0.0005)

    def duty_percent(self, channel: int = 0) -> float:
        """The output as the pin shows it: 0 when disabled (the pin idles low)."""
        d = self.channel(channel)
        if not d.exists() or self.read("enable", channel) != "1":
            return 0.0
        period = int(self.read("period", channel))
        duty = int(self.read("duty_cycle", channel))
        if duty > period or period <= 0:
            raise AssertionError(f"invalid PWM state: duty {duty} > period {period}")
        return 100.0 * duty / period


# ------------------------------------------------------------------ the analog side

#: The EV's positive plateau per state, behind the EVSE's 1 kOhm (IEC 61851-1).
PLATEAU_V = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0}

REFERENCE_DIVIDER = OffsetDivider(100_000.0, 16_900.0, 49_900.0, 2.5)
REFERENCE_PULLUP = PullUpDivider(1000.0, 3.3)


class PilotModel:
    """The control pilot line and the reference board's front end, as voltages at the ADC.

    The generator's output is read from the PWM the driver really wrote
    (``duty()``, percent). ``state`` is the EV's (A-D), ``short`` shorts CP to
    PE (state E), ``volts`` forces the positive plateau (out-of-band faults),
    ``diode`` False removes the EV's diode, ``cable_ohms`` is the PP resistor
    (None: no cable). Channels: 0 positive peak, 1 negative peak, 2 PP.
    """

    def __init__(self, duty: Callable[[], float], *, divider: OffsetDivider = REFERENCE_DIVIDER,
                 pullup: PullUpDivider = REFERENCE_PULLUP, clock: Any = None,
                 tau_s: float = 0.22, rail_v: float = 3.3) -> None:
        self.duty = duty
        self.divider = divider
        self.pullup = pullup
        #: With a clock, the peak detectors hold and decay like the reference board's
        #: (100 nF, 2.2 MOhm: the positive one towards 0 V, the negative one towards
        #: the 3.3 V rail); without one they follow at once.
        self.clock = clock
        self.tau_s = tau_s
        self.rail_v = rail_v
        self._held: dict[int, tuple[float, float]] = {}  # channel -> (adc volts, time)
        self.state = "A"
        self.short = False
        self.volts: float | None = None
        self.low_volts: float | None = None
        self.diode = True
        self.cable_ohms: float | None = 220.0
        self.changed_at: float | None = None
        #: Other ADC inputs: channel -> its volts (the heartbeat's gate read-back on AIN3).
        self.aux: dict[int, Callable[[], float]] = {}
        self._lock = threading.Lock()

    def set(self, **changes: Any) -> None:
        with self._lock:
            for name, value in changes.items():
                if not hasattr(self, name):
                    raise AttributeError(name)
                setattr(self, name, value)

    def levels(self) -> tuple[float, float]:
        """(positive plateau, negative plateau) of the pilot in volts."""
        with self._lock:
            duty = self.duty()
            if self.short:
                return 0.0, 0.0
            plugged = self.state != "A"
            high = PLATEAU_V[self.state] if self.volts is None else self.volts
            if duty <= 0.0:
                return -12.0, -12.0  # generator steady low: state F on the line
            if duty >= 100.0:
                return high, high
            low = -12.0 if (self.diode or not plugged) else -high
            if self.low_volts is not None:
                low = self.low_volts
            return high, low

    def adc_volts(self, channel: int) -> float:
        if channel in (0, 1):
            target = self.divider.to_adc(self.levels()[channel])
            if self.clock is None:
                return target
            now = self.clock.monotonic()
            held, at = self._held.get(channel, (target, now))
            fade = math.exp(-(now - at) / self.tau_s)
            if channel == 0:  # charged up at once, bleeds towards 0 V
                value = max(target, held * fade)
            else:  # pulled down at once, bleeds towards the rail
                value = min(target, self.rail_v - (self.rail_v - held) * fade)
            self._held[channel] = (value, now)
            return value
        if channel == 2:
            ohms = math.inf if (self.cable_ohms is None or self.state == "A") else self.cable_ohms
            return self.pullup.to_adc(ohms)
        if channel in self.aux:
            return self.aux[channel]()
        return 0.0


# ------------------------------------------------------------------ I2C

RESET_CONFIG = 0x8583
PGA_FSR = {0: 6.144, 1: 4.096, 2: 2.048, 3: 1.024, 4: 0.512, 5: 0.256, 6: 0.256, 7: 0.256}
RATES = {
    "ads1115": (8, 16, 32, 64, 128, 250, 475, 860),
    "ads1015": (128, 250, 490, 920, 1600, 2400, 3300, 3300),
}


class FakeAds1x15:
    """The ADS1115/ADS1015 as smbus2 sees it: four 16-bit registers, MSB first.

    Writing the config register with OS=1 in single-shot mode starts a
    conversion of the input MUX selects, at the PGA's full scale; the result
    appears in the conversion register when the conversion ends, and OS reads
    0 until then: after ``busy_reads`` reads of the config register, or (with
    ``realtime``) after 1/DR seconds of real time. Reading the conversion
    register early returns the previous result, as the chip does.
    """

    def __init__(self, inputs: Callable[[int], float], *, chip: str = "ads1115",
                 address: int = 0x48, busy_reads: int = 0, realtime: bool = False) -> None:
        self.inputs = inputs
        self.chip = chip
        self.address = address
        self.busy_reads = busy_reads
        self.realtime = realtime
        self.registers = {0: 0, 1: RESET_CONFIG, 2: 0x8000, 3: 0x7FFF}
        self.conversions: list[tuple[int, float]] = []  # (channel, volts) per conversion
        self.configs: list[int] = []
        #: Called as ``hook(channel, volts)`` whenever the conversion register is read.
        self.on_conversion_read: Callable[[int, float], None] | None = None
        self._last: tuple[int, float] = (0, 0.0)
        self._pending: tuple[int, float, float] | None = None  # (channel, volts, due)
        self._busy_left = 0
        self._lock = threading.Lock()
        self.closed = False

    def _check(self, address: int) -> None:
        if address != self.address:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int], force: Any = None) -> None:
        self._check(i2c_addr)
        if len(data) != 2:
            raise OSError(errno.EIO, "ADS1x15 registers take two bytes")
        value = (data[0] << 8) | data[1]
        with self._lock:
            if register == 1:
                self.configs.append(value)
                self.registers[1] = value & 0x7FFF  # OS reads back as "busy" during a conversion
                if value & 0x8000 and value & 0x0100:
                    self._start(value)
                else:
                    self.registers[1] |= 0x8000
            elif register in (2, 3):
                self.registers[register] = value
            else:
                raise OSError(errno.EIO, "the conversion register is read-only")

    def _start(self, config: int) -> None:
        mux = (config >> 12) & 0x7
        if mux < 4:
            raise AssertionError(f"differential MUX {mux:03b}: the driver reads single-ended inputs")
        channel = mux - 4
        volts = float(self.inputs(channel))
        rate = RATES[self.chip][(config >> 5) & 0x7]
        due = time.monotonic() + 1.0 / rate
        self._pending = (channel, volts, due)
        self._busy_left = self.busy_reads

    def _finish_if_due(self) -> None:
        if self._pending is None:
            return
        channel, volts, due = self._pending
        if self.realtime:
            if time.monotonic() < due:
                return
        elif self._busy_left > 0:
            return
        fsr = PGA_FSR[(self.registers[1] >> 9) & 0x7]
        if self.chip == "ads1115":
            code = max(-32768, min(32767, round(volts / fsr * 32768)))
            word = code & 0xFFFF
        else:
            code = max(-2048, min(2047, round(volts / fsr * 2048)))
            word = (code << 4) & 0xFFFF
        self.registers[0] = word
        self.registers[1] |= 0x8000
        self.conversions.append((channel, volts))
        self._last = (channel, volts)
        self._pending = None

    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int, force: Any = None) -> list[int]:
        self._check(i2c_addr)
        with self._lock:
            if register == 1:
                self._finish_if_due()
                if self._pending is not None and self._busy_left > 0:
                    self._busy_left -= 1
            value = self.registers[register]
            last = self._last
        if register == 0 and self.on_conversion_read is not None:
            self.on_conversion_read(*last)
        return [(value >> 8) & 0xFF, value & 0xFF][:length]

    def close(self) -> None:
        self.closed = True


# ------------------------------------------------------------------ SPI


class MockMcp3008(MockSPIDevice):
    """An MCP3008 on the mock SPI bus: after a start bit, SGL/DIFF and three
    channel bits it clocks out a null bit and ten result bits, MSB first.
    ``voltages(channel)`` gives the input of each conversion."""

    def __init__(self, voltages: Callable[[int], float], *, v_ref: float = 3.3,
                 pin_factory: MockFactory | None = None) -> None:
        super().__init__(clock_pin=11, mosi_pin=10, miso_pin=9, select_pin=8, pin_factory=pin_factory)
        self.voltages = voltages
        self.v_ref = v_ref
        self.samples: list[tuple[int, int]] = []
        self._state = "idle"
        self._bits: list[int] = []

    def on_start(self) -> None:
        super().on_start()
        self._state = "idle"
        self._bits = []

    def on_bit(self) -> None:
        bit = self.rx_buf[-1] if self.rx_buf else 0
        if self._state == "idle":
            if bit:
                self._state = "command"
                self._bits = []
            return
        if self._state == "command":
            self._bits.append(int(bit))
            if len(self._bits) == 4:
                single = self._bits[0]
                channel = (self._bits[1] << 2) | (self._bits[2] << 1) | self._bits[3]
                if not single:
                    raise AssertionError("the driver must read single-ended")
                volts = self.voltages(channel)
                code = max(0, min(1023, int(volts / self.v_ref * 1024)))
                self.samples.append((channel, code))
                self.tx_buf.extend([0, 0])  # sample period, null bit
                self.tx_word(code, 10)
                self._state = "out"
