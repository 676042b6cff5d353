"""The phase contactor's relay on a GPIO: KM2 connects L2 and L3 to the EV when energised.

The driver is the same kind of stage as the main contactor's (a logic-level
MOSFET and an interposing 12 V relay); its 230 V coil circuit runs through
KM1's NC auxiliary contact, so KM2 cannot pull in while KM1 is closed
(hardware.md, "Phase switching: KM2"). This only switches; when it may switch is
the safety loop's decision (``chargepoint.safety.phases``).
"""

from __future__ import annotations

from hal.pi.relay import GpioRelay


class PiPhaseContactor(GpioRelay):
    """``hal.interfaces.PhaseContactor`` on a GPIO output (gpiozero); off = one phase."""

    def set_three_phase(self, three: bool) -> None:
        self.energise(three)
