"""The safety loop's heartbeat on a GPIO: one edge per completed step.

The output feeds the board's hardware watchdog (hardware.md, "Hardware
fail-safe"): a retriggerable monostable whose output enables the contactor's
coil driver. Only edges retrigger it, so a pin stuck high or low, the GPIO
released when the process dies, or the Pi rebooting all end the pulses, and the
coil drops within the monostable's hold-up time.
"""

from __future__ import annotations

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
