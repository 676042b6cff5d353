"""The board's safety devices from its profile: pilot (PWM and ADC), contactor, fault inputs,
heartbeat, shunt trip.

They belong to the safety supervisor, the one process that opens them; the
daemon's board build (``chargepoint/backends/raspberrypi/build.py``) keeps the
meter and the card reader. Tests pass fakes for the pin factory, the I2C bus and
the sysfs tree.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chargepoint.config.board import BoardConfig
from hal.pi.pwm import SYSFS_PWM_ROOT

if TYPE_CHECKING:
    from hal.clock import Clock

log = logging.getLogger(__name__)


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


def pilot_device(board: BoardConfig, clock: Clock, pin_factory: Any, i2c_bus: Any, sysfs_root: Any,
           sleep: Callable[[float], None]) -> Any:
    from hal.pi.pilot import PeakDetectorFrontEnd, PiPilot
    from hal.pi.pwm import GpioZeroPwm, SysfsPwm

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
            from hal.pi.mcp3008 import Mcp3008Burst

            front_end: Any = parts.add(Mcp3008Burst(
                a.cp_channel, pp_channel, v_ref=a.v_ref, burst_samples=a.burst_samples,
                spi_port=a.spi_port, spi_device=a.spi_device, pin_factory=pin_factory))
        else:
            from hal.pi.ads1x15 import Ads1x15

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
    from hal.pi.contactor import PiContactor

    c = board.contactor
    if c.aux_pin is None:
        log.warning("no auxiliary contact configured: a welded contactor cannot be detected")
    return PiContactor(c.pin, coil_active_high=c.active_high, aux_pin=c.aux_pin,
                       aux_active_high=c.aux_active_high, aux_pull=c.aux_pull, pin_factory=pin_factory)


def fault_inputs(board: BoardConfig, pin_factory: Any) -> Any:
    from hal.pi.inputs import InputSpec, PiFaultInputs, SelfTestSpec

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
    from hal.pi.heartbeat import PiHeartbeat

    return PiHeartbeat(board.heartbeat.pin, pin_factory=pin_factory)


def heartbeat_readback(board: BoardConfig, pilot: Any, pin_factory: Any, clock: Clock) -> Any:
    """The read-back of the heartbeat circuit (G on a spare input of the pilot's ADC, Q4's drain on a
    GPIO), or None: the safety loop then cannot check the circuit before a session (said in the log)."""
    hb = board.heartbeat
    if hb is None:
        return None
    if hb.gate_channel is None:
        log.warning("no board.heartbeat.gate_channel: the heartbeat circuit is not checked before sessions, "
                    "only at commissioning (hardware.md, Hardware fail-safe)")
        return None
    from functools import partial

    from hal.pi.heartbeat import PiHeartbeatReadback

    return PiHeartbeatReadback(partial(pilot.front_end.read_aux, hb.gate_channel), hb.gate_ratio,
                               hb.drain_pin, pin_factory=pin_factory, monotonic=clock.monotonic)


def phase_contactor_output(board: BoardConfig, pin_factory: Any) -> Any:
    """KM2's relay (one or three phases), or None: no phase switching."""
    if board.phase_contactor is None:
        return None
    from hal.pi.phase_contactor import PiPhaseContactor

    return PiPhaseContactor(board.phase_contactor.pin, active_high=board.phase_contactor.active_high,
                            pin_factory=pin_factory)


def shunt_trip_output(board: BoardConfig, pin_factory: Any) -> Any:
    """The breaker's shunt-trip relay, or None (a welded contactor is then only reported)."""
    if board.shunt_trip is None:
        return None
    from hal.pi.shunt_trip import PiShuntTrip

    return PiShuntTrip(board.shunt_trip.pin, active_high=board.shunt_trip.active_high,
                       pin_factory=pin_factory)
