"""The safety loop's heartbeat on a GPIO: one edge per completed step.

The output feeds the board's hardware watchdog (hardware.md, "Hardware
fail-safe"): a charge pump that holds the gate of Q4, in series with the
contactor relay's coil, above its threshold. Only edges move charge, so a pin
stuck high or low, the GPIO released when the process dies, or the Pi rebooting
all end the pulses, and the coil drops within the pump's hold-up time.

:class:`PiHeartbeatReadback` reads the circuit back for the safety loop's
check before every session: the gate node G through a divider on a spare ADC
input, and Q4's drain on a GPIO through an optocoupler (low while Q4 conducts).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class PiHeartbeat:
    """``hal.interfaces.Heartbeat`` on a GPIO output (gpiozero)."""

    def __init__(self, pin: int, *, pin_factory: Any = None) -> None:
        from gpiozero import OutputDevice

        self._out = OutputDevice(pin, active_high=True, initial_value=False, pin_factory=pin_factory)
        self.beats = 0

    def beat(self) -> None:
        self._out.toggle()
        self.beats += 1

    def close(self) -> None:
        try:
            self._out.off()
        finally:
            self._out.close()


class PiHeartbeatReadback:
    """``hal.interfaces.HeartbeatReadback``: G from an ADC input, Q4's drain from a GPIO.

    ``read_adc_v`` converts the input G's divider feeds (volts at the ADC);
    ``ratio`` is G volts per ADC volt. The drain input reads low while Q4
    conducts (an optocoupler's LED in series with Q4's drain pulls it low; the
    board's own pull-up holds it high, so the pin's pull is left off).
    """

    def __init__(self, read_adc_v: Callable[[], float], ratio: float, drain_pin: int | None = None, *,
                 pin_factory: Any = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._read = read_adc_v
        self._ratio = ratio
        self.monotonic = monotonic
        self._drain = None
        if drain_pin is not None:
            from gpiozero import InputDevice

            self._drain = InputDevice(drain_pin, pull_up=None, active_state=False, pin_factory=pin_factory)

    def gate_v(self) -> float:
        return self._read() * self._ratio

    def interlock_conducting(self) -> bool | None:
        return None if self._drain is None else bool(self._drain.is_active)

    def close(self) -> None:
        if self._drain is not None:
            self._drain.close()
