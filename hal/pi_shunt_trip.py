"""The shunt-trip relay on a GPIO: trips the station's breaker when the contactor has welded.

The shunt release is fed from the load side of the breaker it trips, so it is
never energised for long; the safety loop still releases the relay after a
pulse (hardware.md, "Welded contactor: shunt trip").
"""

from __future__ import annotations

from typing import Any


class PiShuntTrip:
    """``hal.interfaces.ShuntTrip`` on a GPIO output (gpiozero)."""

    def __init__(self, pin: int, *, active_high: bool = True, pin_factory: Any = None) -> None:
        from gpiozero import OutputDevice

        self._out = OutputDevice(pin, active_high=active_high, initial_value=False, pin_factory=pin_factory)

    def set_energised(self, on: bool) -> None:
        if on:
            self._out.on()
        else:
            self._out.off()

    def close(self) -> None:
        try:
            self._out.off()
        finally:
            self._out.close()
