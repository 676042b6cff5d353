"""The board profile: the ``[board]`` configuration section.

A board profile says how a Raspberry Pi is wired to the charger's hardware:
which GPIO drives the pilot PWM and through which sysfs PWM chip and channel
(their numbering differs between the Pi 4 and the Pi 5), which ADC reads the
pilot and on which I2C bus and address, the resistor values of the pilot's
divider and of the proximity pull-up, the pins and polarities of the
contactor, its auxiliary contact, the RCD and the emergency stop, and the RFID
reader's serial port. ``hardware.md`` documents the reference board and
``examples/raspberrypi.toml`` is its validated profile.

``board_parse.py`` parses and checks it with the rest of the file, so that every
mistake is reported with the file, the key and the reason;
``chargepoint.backends.raspberrypi`` builds the hardware from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chargepoint.safety.iec61851 import PilotBands
from hal.pi.pwm import PWM_DEVICES

MODELS = tuple(PWM_DEVICES)
PULLS = ("up", "down", "off")
ADC_TYPES = ("ads1115", "ads1015", "mcp3008")
RFID_TYPES = ("none", "rdm6300", "pn532")
RFID_BAUD = {"rdm6300": 9600, "pn532": 115200}
#: GPIOs on the 40-pin header.
GPIO_MAX = 27
#: Pins taken by the buses the ADCs use.
I2C1_PINS = {2: "I2C1 SDA", 3: "I2C1 SCL"}
SPI0_PINS = {8: "SPI0 CE0", 9: "SPI0 MISO", 10: "SPI0 MOSI", 11: "SPI0 SCLK", 7: "SPI0 CE1"}
#: The pilot's extreme levels (the outer edges of bands A and F) must fit the ADC.
PILOT_RANGE_V = (-13.0, 13.0)

# ------------------------------------------------------------------ the profile


@dataclass(frozen=True)
class PwmConfig:
    backend: str = "sysfs"  # "sysfs" (hardware PWM) or "gpiozero" (software, development only)
    gpio: int = 18
    chip: int | str = 0  # N of /sys/class/pwm/pwmchipN, or the PWM device's node name
    channel: int = 0
    inverted: bool = False
    negative_pin: int | None = None
    negative_active_high: bool = True


@dataclass(frozen=True)
class AdcConfig:
    type: str = "ads1115"
    i2c_bus: int = 1
    address: int = 0x48
    full_scale_v: float = 4.096
    data_rate: int = 860
    vdd_v: float = 3.3
    cp_high_channel: int = 0
    cp_low_channel: int = 1
    pp_channel: int = 2
    # MCP3008 only
    spi_port: int = 0
    spi_device: int = 0
    v_ref: float = 3.3
    burst_samples: int = 64
    cp_channel: int = 0

    @property
    def input_max_v(self) -> float:
        """Highest voltage the ADC reads (its full scale, or its supply if lower)."""
        if self.type == "mcp3008":
            return self.v_ref
        return min(self.full_scale_v, self.vdd_v)


@dataclass(frozen=True)
class DividerConfig:
    """The pilot's offset divider (see ``hal.pi.pilot.OffsetDivider``); reference board values."""

    r_in_ohms: float = 100_000.0
    r_ref_ohms: float = 16_900.0
    r_gnd_ohms: float = 49_900.0
    v_ref: float = 2.5


@dataclass(frozen=True)
class ProximityConfig:
    enabled: bool = True  # False for a tethered cable (no PP circuit)
    pullup_ohms: float = 1000.0
    supply_v: float = 3.3
    interval_s: float = 0.1


@dataclass(frozen=True)
class ContactorConfig:
    pin: int
    active_high: bool = True
    aux_pin: int | None = None
    aux_active_high: bool = True
    aux_pull: str = "off"


@dataclass(frozen=True)
class InputConfig:
    pin: int
    active_high: bool = False
    pull: str = "off"


@dataclass(frozen=True)
class RcdConfig:
    pin: int
    active_high: bool = False
    pull: str = "off"
    test_pin: int | None = None
    test_active_high: bool = True
    test_timeout_s: float = 0.3
    test_recovery_s: float = 2.0


@dataclass(frozen=True)
class HeartbeatConfig:
    """The GPIO the safety loop pulses for the hardware watchdog (hardware.md, "Hardware fail-safe"),
    and the read-back the loop checks the circuit with before every session."""

    pin: int
    #: The ADC input that reads Q4's gate G through R68/R69 (None: no pre-session check).
    gate_channel: int | None = None
    #: G volts per ADC volt: (R68 + R69) / R69.
    gate_ratio: float = 5.545
    #: The GPIO that reads Q4's drain (low while Q4 conducts); None: not wired.
    drain_pin: int | None = None


@dataclass(frozen=True)
class ShuntTripConfig:
    """The GPIO of the relay that trips the supply breaker on a welded contactor."""

    pin: int
    active_high: bool = True


@dataclass(frozen=True)
class PhaseContactorConfig:
    """The GPIO of the relay that drives KM2, the contactor that gives the EV L2 and L3 (hardware.md,
    "Phase switching: KM2"). Absent: no phase switching, the EV gets the phases the station is wired for."""

    pin: int
    active_high: bool = True


@dataclass(frozen=True)
class RfidConfig:
    type: str = "none"
    port: str = ""
    baudrate: int = 9600
    hold_off_s: float = 1.0
    reopen_s: float = 1.0
    poll_interval_s: float = 0.2


@dataclass(frozen=True)
class ClassificationConfig:
    bands: PilotBands = PilotBands()
    hysteresis_v: float = 0.4
    debounce_samples: int = 2
    diode_tolerance_v: float = 1.5


@dataclass(frozen=True)
class BoardConfig:
    name: str = ""
    model: str = "pi4"
    pwm: PwmConfig = PwmConfig()
    adc: AdcConfig = AdcConfig()
    cp_divider: DividerConfig = DividerConfig()
    pp: ProximityConfig = ProximityConfig()
    contactor: ContactorConfig = ContactorConfig(pin=17)
    rcd: RcdConfig | None = None
    emergency_stop: InputConfig | None = None
    heartbeat: HeartbeatConfig | None = None
    shunt_trip: ShuntTripConfig | None = None
    phase_contactor: PhaseContactorConfig | None = None
    rfid: RfidConfig = RfidConfig()
    classification: ClassificationConfig = field(default_factory=ClassificationConfig)

    def divider(self) -> Any:
        from hal.pi.pilot import OffsetDivider

        d = self.cp_divider
        return OffsetDivider(d.r_in_ohms, d.r_ref_ohms, d.r_gnd_ohms, d.v_ref)

    def pullup(self) -> Any:
        from hal.pi.pilot import PullUpDivider

        return PullUpDivider(self.pp.pullup_ohms, self.pp.supply_v) if self.pp.enabled else None
