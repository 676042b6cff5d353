"""Build the station's hardware on a Raspberry Pi from its board profile.

``build_pi_hardware`` is called by the backend assembly when ``hal.backend =
"raspberrypi"``; tests and the benchmark pass fakes for the pin factory, the
I2C bus, the sysfs tree and the serial port. The profile itself (what is wired
where) is parsed and checked by ``chargepoint.config.board``.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chargepoint.config.board import BoardConfig
from hal.pi_pwm import SYSFS_PWM_ROOT

if TYPE_CHECKING:
    from chargepoint.backends.hardware import Hardware
    from chargepoint.config import Config
    from hal.clock import Clock
    from hal.interfaces import Meter

log = logging.getLogger(__name__)

#: The safety loop shares the interpreter with the asyncio side and gives up the GIL at
#: every sleep and bus transfer; while OCPP traffic keeps asyncio busy, each time it
#: wants the GIL back it may wait one switch interval (Python's default is 5 ms).
#: bench/safety_latency.py: p99 from CP change to contactor-open 23 ms -> 16 ms under an
#: OCPP flood with 1 ms, no loss of OCPP throughput.
GIL_SWITCH_INTERVAL_S = 0.001

class Parts:
    """Everything built so far, closed again if a later part fails."""

    def __init__(self) -> None:
        self.closers: list[Callable[[], None]] = []

    def add(self, part: Any) -> Any:
        closer = getattr(part, "close", None)
        if closer is not None:
            self.closers.append(closer)
        return part

    def close(self) -> None:
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:
                log.exception("closing a board part failed")


def build_pi_hardware(
    config: Config,
    *,
    pin_factory: Any = None,
    i2c_bus: Any = None,
    sysfs_root: Any = None,
    serial_factory: Callable[..., Any] | None = None,
    clock: Clock | None = None,
    meter: Meter | None = None,
    blocking_sleep: Callable[[float], None] | None = None,
) -> Hardware:
    """The station's hardware on the Raspberry Pi board described by ``config.board``.

    The keyword arguments replace the real thing in tests and benchmarks: a
    gpiozero pin factory (default: gpiozero's, lgpio on a Pi), an smbus2-like
    bus, the root of a sysfs PWM tree, pyserial's ``Serial``, the clock, the
    energy meter (default: built from ``[meter]``) and the sleep used while
    waiting for the hardware (ADC conversions, PWM export; default
    ``time.sleep``), which fakes that answer at once make unnecessary.
    """
    from chargepoint.backends.hardware import Hardware, assemble_connector, evse_config
    from hal.clock import RealClock

    board = config.board
    if board is None:
        raise ValueError("hal backend 'raspberrypi' needs a [board] section")
    clock = clock or RealClock()
    connector_config = config.connectors[0]
    parts = Parts()
    try:
        pilot = parts.add(pilot_device(board, clock, pin_factory, i2c_bus, sysfs_root,
                                       blocking_sleep or time.sleep))
        contactor = parts.add(contactor_device(board, pin_factory))
        faults = parts.add(fault_inputs(board, pin_factory))
        heartbeat = parts.add(heartbeat_output(board, pin_factory))
        shunt_trip = parts.add(shunt_trip_output(board, pin_factory))
        c = board.classification
        safety = evse_config(config, bands=c.bands, hysteresis_v=c.hysteresis_v,
                             debounce_samples=c.debounce_samples, diode_tolerance_v=c.diode_tolerance_v)
        if meter is None:
            from chargepoint.backends.metering import build_meter, bus_pool

            meter = build_meter(config, connector_config, clock, pool=bus_pool(config))
        connector = assemble_connector(config, connector_config, clock, pilot=pilot, contactor=contactor,
                                       faults=faults, meter=meter, safety=safety, heartbeat=heartbeat,
                                       shunt_trip=shunt_trip)
        reader = card_reader(board, serial_factory)
    except BaseException:
        parts.close()
        raise
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    log.info("board %s (%s): pilot PWM GPIO%d via %s, ADC %s, contactor GPIO%d%s",
             board.name or "unnamed", board.model, board.pwm.gpio, board.pwm.backend,
             board.adc.type, board.contactor.pin,
             "" if board.contactor.aux_pin is not None else " without auxiliary contact")
    return Hardware(clock, [connector], reader)


def pilot_device(board: BoardConfig, clock: Clock, pin_factory: Any, i2c_bus: Any, sysfs_root: Any,
           sleep: Callable[[float], None]) -> Any:
    from hal.pi_pilot import PeakDetectorFrontEnd, PiPilot
    from hal.pi_pwm import GpioZeroPwm, SysfsPwm

    parts = Parts()
    try:
        p = board.pwm
        if p.backend == "sysfs":
            pwm: Any = SysfsPwm(p.chip, p.channel, root=sysfs_root or SYSFS_PWM_ROOT, inverted=p.inverted,
                                sleep=sleep)
        else:
            pwm = GpioZeroPwm(p.gpio, inverted=p.inverted, pin_factory=pin_factory)
        parts.add(pwm)
        negative = None
        if p.negative_pin is not None:
            from gpiozero import OutputDevice

            negative = parts.add(OutputDevice(p.negative_pin, active_high=p.negative_active_high,
                                              initial_value=False, pin_factory=pin_factory))
        a = board.adc
        pp_channel = a.pp_channel if board.pp.enabled else None
        if a.type == "mcp3008":
            from hal.mcp3008 import Mcp3008Burst

            front_end: Any = parts.add(Mcp3008Burst(
                a.cp_channel, pp_channel, v_ref=a.v_ref, burst_samples=a.burst_samples,
                spi_port=a.spi_port, spi_device=a.spi_device, pin_factory=pin_factory))
        else:
            from hal.ads1x15 import Ads1x15

            if i2c_bus is None:
                from smbus2 import SMBus

                i2c_bus = parts.add(SMBus(a.i2c_bus))
            adc = Ads1x15(i2c_bus, a.address, chip=a.type, full_scale_v=a.full_scale_v,
                          data_rate=a.data_rate, sleep=sleep)
            front_end = PeakDetectorFrontEnd(adc, a.cp_high_channel, a.cp_low_channel, pp_channel)
        return PiPilot(pwm, front_end, board.divider(), board.pullup(), negative_switch=negative,
                       pp_interval_s=board.pp.interval_s, monotonic=clock.monotonic)
    except BaseException:
        parts.close()
        raise


def contactor_device(board: BoardConfig, pin_factory: Any) -> Any:
    from hal.pi_contactor import PiContactor

    c = board.contactor
    if c.aux_pin is None:
        log.warning("no auxiliary contact configured: a welded contactor cannot be detected")
    return PiContactor(c.pin, coil_active_high=c.active_high, aux_pin=c.aux_pin,
                       aux_active_high=c.aux_active_high, aux_pull=c.aux_pull, pin_factory=pin_factory)


def fault_inputs(board: BoardConfig, pin_factory: Any) -> Any:
    from hal.pi_inputs import InputSpec, PiFaultInputs, SelfTestSpec

    specs = []
    self_test = None
    if board.rcd is not None:
        rcd = board.rcd
        specs.append(InputSpec("rcd", rcd.pin, rcd.active_high, rcd.pull))
        if rcd.test_pin is not None:
            self_test = SelfTestSpec(rcd.test_pin, rcd.test_active_high, "rcd", rcd.test_timeout_s,
                                     rcd.test_recovery_s)
    else:
        log.warning("no RCD/RCM input configured: DC fault protection must come from the installation")
    if board.emergency_stop is not None:
        e = board.emergency_stop
        specs.append(InputSpec("emergency_stop", e.pin, e.active_high, e.pull))
    return PiFaultInputs(specs, self_test=self_test, pin_factory=pin_factory)


def heartbeat_output(board: BoardConfig, pin_factory: Any) -> Any:
    """The hardware watchdog's heartbeat, or None (said in the log: the board then has no fail-safe
    beyond Linux)."""
    if board.heartbeat is None:
        log.warning("no [board.heartbeat]: nothing outside Linux opens the contactor if the daemon "
                    "hangs or dies (hardware.md, Hardware fail-safe)")
        return None
    from hal.pi_heartbeat import PiHeartbeat

    return PiHeartbeat(board.heartbeat.pin, pin_factory=pin_factory)


def shunt_trip_output(board: BoardConfig, pin_factory: Any) -> Any:
    """The breaker's shunt-trip relay, or None (a welded contactor is then only reported)."""
    if board.shunt_trip is None:
        return None
    from hal.pi_shunt_trip import PiShuntTrip

    return PiShuntTrip(board.shunt_trip.pin, active_high=board.shunt_trip.active_high,
                       pin_factory=pin_factory)


def card_reader(board: BoardConfig, serial_factory: Callable[..., Any] | None) -> Any:
    r = board.rfid
    if r.type == "none":
        return None
    from hal.rfid import Pn532Reader, Rdm6300Reader

    extra: dict[str, Any] = {"hold_off_s": r.hold_off_s, "reopen_s": r.reopen_s}
    if serial_factory is not None:
        extra["serial_factory"] = serial_factory
    if r.type == "rdm6300":
        return Rdm6300Reader(r.port, r.baudrate, **extra)
    return Pn532Reader(r.port, r.baudrate, poll_interval_s=r.poll_interval_s, **extra)
