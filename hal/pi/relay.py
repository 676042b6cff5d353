"""A relay driver stage on a GPIO output: off at start, off when closed.

The shunt-trip relay and the phase contactor's relay are the same stage (a
logic-level MOSFET driving an interposing relay); what they mean is their own
module's business (``pi_shunt_trip``, ``pi_phase_contactor``).
"""

from __future__ import annotations

from typing import Any


class GpioRelay:
    """One relay output (gpiozero), released at start and on close."""

    def __init__(self, pin: int, *, active_high: bool = True, pin_factory: Any = None) -> None:
        from gpiozero import OutputDevice

        self._out = OutputDevice(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)

    def energise(self, on: bool) -> None:
        if on:
            self._out.on()
        else:
            self._out.off()

    def close(self) -> None:
        try:
            self._out.off()
        finally:
            self._out.close()
