"""Register-level driver for the TI ADS1115 (16 bit) and ADS1015 (12 bit) ADCs over I2C.

Only what the pilot front end needs: single-ended, single-shot conversions on
one of the four inputs at a chosen full-scale range (PGA) and data rate.

The chip has four 16-bit registers, sent most significant byte first:

* ``0x00`` conversion: the last result, two's complement. The ADS1015's 12-bit
  result is left-aligned (bits 15..4), so it is shifted right by 4.
* ``0x01`` config: ``OS`` (bit 15; write 1 to start a single conversion, reads
  0 while converting), ``MUX`` (14..12; ``1xx`` = AINx against GND), ``PGA``
  (11..9), ``MODE`` (8; 1 = single-shot), ``DR`` (7..5), comparator bits
  (4..0; ``..11`` = comparator off).

The bus is anything with smbus2's ``read_i2c_block_data`` and
``write_i2c_block_data``, so tests use a fake that implements the registers.
Calls block for about one conversion time (1.2 ms at 860 SPS): call them from
the safety-loop thread only.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

REG_CONVERSION = 0x00
REG_CONFIG = 0x01

OS_SINGLE = 0x8000
MODE_SINGLE = 0x0100
COMP_QUE_DISABLE = 0x0003
MUX_SINGLE_ENDED = {0: 0x4000, 1: 0x5000, 2: 0x6000, 3: 0x7000}

#: Full-scale range (volts) -> PGA bits.
PGA_BITS = {6.144: 0x0000, 4.096: 0x0200, 2.048: 0x0400, 1.024: 0x0600, 0.512: 0x0800, 0.256: 0x0A00}

#: Samples per second -> DR bits, per chip.
DATA_RATES = {
    "ads1115": {8: 0x0000, 16: 0x0020, 32: 0x0040, 64: 0x0060, 128: 0x0080, 250: 0x00A0,
                475: 0x00C0, 860: 0x00E0},
    "ads1015": {128: 0x0000, 250: 0x0020, 490: 0x0040, 920: 0x0060, 1600: 0x0080, 2400: 0x00A0,
                3300: 0x00C0},
}
#: Full-scale code: 2^15 for the 16-bit chip, 2^11 for the 12-bit one.
FULL_SCALE_CODE = {"ads1115": 32768, "ads1015": 2048}
#: Fastest rate of each chip (the default here).
FASTEST = {"ads1115": 860, "ads1015": 3300}
#: I2C addresses selectable with the ADDR pin.
ADDRESSES = (0x48, 0x49, 0x4A, 0x4B)


def conversion_s(data_rate: int) -> float:
    """How long the driver waits for one single-shot conversion at ``data_rate`` SPS.

    The conversion time is 1/DR, but the internal oscillator may be 10 % slow, so the wait is
    1.1/DR plus the I2C transfer of the config word. The configuration's step budget counts
    with this same figure, so the two cannot drift apart.
    """
    return 1.1 / data_rate + 50e-6


class I2cBus(Protocol):
    def read_i2c_block_data(self, i2c_addr: int, register: int, length: int,
                            force: Any = None) -> list[int]: ...

    def write_i2c_block_data(self, i2c_addr: int, register: int, data: list[int],
                             force: Any = None) -> None: ...


class AdcError(OSError):
    """The ADC did not answer, or did not finish a conversion."""


class Ads1x15:
    """One ADS1115 or ADS1015 on an I2C bus.

    The constructor reads the config register once, so a missing or miswired
    chip is reported when the daemon starts, not on the first pilot read.
    """

    def __init__(
        self,
        bus: I2cBus,
        address: int = 0x48,
        *,
        chip: str = "ads1115",
        full_scale_v: float = 4.096,
        data_rate: int | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_polls: int = 20,
    ) -> None:
        if chip not in DATA_RATES:
            raise ValueError(f"unknown ADC {chip!r}; known: {', '.join(DATA_RATES)}")
        if full_scale_v not in PGA_BITS:
            raise ValueError(f"full scale {full_scale_v} V is not one of {sorted(PGA_BITS)}")
        data_rate = FASTEST[chip] if data_rate is None else data_rate
        if data_rate not in DATA_RATES[chip]:
            raise ValueError(f"{chip} data rate {data_rate} SPS is not one of {sorted(DATA_RATES[chip])}")
        if address not in ADDRESSES:
            raise ValueError(f"I2C address {address:#04x} is not one of the ADS1x15's "
                             f"{', '.join(f'{a:#04x}' for a in ADDRESSES)}")
        self.chip = chip
        self.address = address
        self.full_scale_v = full_scale_v
        self.data_rate = data_rate
        self._bus = bus
        self._sleep = sleep
        self._max_polls = max_polls
        self._code = FULL_SCALE_CODE[chip]
        self._base = OS_SINGLE | PGA_BITS[full_scale_v] | MODE_SINGLE | DATA_RATES[chip][data_rate] \
            | COMP_QUE_DISABLE
        self._conversion_s = conversion_s(data_rate)
        self._lock = threading.Lock()
        try:
            self._read_register(REG_CONFIG)
        except OSError as exc:
            raise AdcError(exc.errno, f"no {chip.upper()} answers at I2C address {address:#04x} "
                                      f"({exc.strerror or exc}); check wiring and `i2cdetect -y 1`") from exc

    def config_word(self, channel: int) -> int:
        """The config register value that starts a conversion of ``channel``."""
        if channel not in MUX_SINGLE_ENDED:
            raise ValueError(f"channel must be 0..3, not {channel!r}")
        return self._base | MUX_SINGLE_ENDED[channel]

    def read_volts(self, channel: int) -> float:
        """Convert ``channel`` (AINx against GND) once and return volts."""
        return self.read_code(channel) * self.full_scale_v / self._code

    def read_code(self, channel: int) -> int:
        """Convert ``channel`` once and return the signed result code
        (-32768..32767 on the ADS1115, -2048..2047 on the ADS1015)."""
        word = self.config_word(channel)
        with self._lock:
            self._write_register(REG_CONFIG, word)
            self._sleep(self._conversion_s)
            for _ in range(self._max_polls):
                if self._read_register(REG_CONFIG) & OS_SINGLE:
                    break
                self._sleep(self._conversion_s / 10)
            else:
                raise AdcError(f"{self.chip.upper()} at {self.address:#04x}: conversion on AIN{channel} "
                               f"did not finish")
            raw = self._read_register(REG_CONVERSION)
        if raw & 0x8000:
            raw -= 0x10000
        if self.chip == "ads1015":
            raw >>= 4  # 12-bit result, left-aligned; arithmetic shift keeps the sign
        return raw

    def _write_register(self, register: int, value: int) -> None:
        self._bus.write_i2c_block_data(self.address, register, [(value >> 8) & 0xFF, value & 0xFF])

    def _read_register(self, register: int) -> int:
        data = self._bus.read_i2c_block_data(self.address, register, 2)
        return (data[0] << 8) | data[1]
