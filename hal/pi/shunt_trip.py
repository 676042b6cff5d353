"""The shunt-trip relay on a GPIO: trips the station's breaker when the contactor has welded.

The shunt release is fed from the load side of the breaker it trips, so it is
never energised for long; the safety loop still releases the relay after a
pulse (hardware.md, "Welded contactor: shunt trip").
"""

from __future__ import annotations

from hal.pi.relay import GpioRelay


class PiShuntTrip(GpioRelay):
    """``hal.interfaces.ShuntTrip`` on a GPIO output (gpiozero)."""

    def set_energised(self, on: bool) -> None:
        self.energise(on)
