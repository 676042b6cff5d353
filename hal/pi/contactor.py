"""The mains contactor on a Raspberry Pi board: coil output and auxiliary contact input.

The coil is driven through a gpiozero ``OutputDevice`` (on the reference
board: a logic-level MOSFET and an interposing 12 V relay whose contact
switches the contactor's 230 V coil). The auxiliary contact is read through a
gpiozero ``DigitalInputDevice``; "active" means "the main contacts are
closed", whatever the wiring's polarity, which the board's configuration
states.

This only switches and reads. Whether feedback matches the command within the
settle time, and what a welded contact means, is decided by the safety loop
(``chargepoint.safety.evse``).
"""

from __future__ import annotations

from typing import Any

#: Pull resistor names as the configuration spells them -> gpiozero's pin.pull values.
PULLS = {"up": "up", "down": "down", "off": "floating"}


def make_input(pin: int, *, active_high: bool, pull: str = "off", pin_factory: Any = None) -> Any:
    """A gpiozero DigitalInputDevice whose active level and pull are set independently.

    gpiozero ties them together (pull-up means active-low); a board with an
    external pull-up on an active-high signal (a normally-closed loop that
    trips when it opens) needs them apart, so the pull is set on the pin after
    construction. No bounce time: a trip must be seen on its first edge.
    """
    from gpiozero import DigitalInputDevice

    if pull not in PULLS:
        raise ValueError(f"pull must be one of {', '.join(PULLS)}, not {pull!r}")
    device = DigitalInputDevice(pin, pull_up=None, active_state=active_high, bounce_time=None,
                                pin_factory=pin_factory)
    try:
        if pull != "off":
            device.pin.pull = PULLS[pull]
    except Exception:
        device.close()
        raise
    return device


class PiContactor:
    """``hal.interfaces.Contactor`` on GPIO: coil output, optional auxiliary contact."""

    def __init__(
        self,
        coil_pin: int,
        *,
        coil_active_high: bool = True,
        aux_pin: int | None = None,
        aux_active_high: bool = True,
        aux_pull: str = "off",
        pin_factory: Any = None,
    ) -> None:
        from gpiozero import OutputDevice

        self._coil = OutputDevice(coil_pin, active_high=coil_active_high, initial_value=False,
                                  pin_factory=pin_factory)
        try:
            self._aux = None if aux_pin is None else make_input(
                aux_pin, active_high=aux_active_high, pull=aux_pull, pin_factory=pin_factory)
        except Exception:
            self._coil.close()
            raise

    def set_closed(self, closed: bool) -> None:
        if closed:
            self._coil.on()
        else:
            self._coil.off()

    def feedback(self) -> bool | None:
        return None if self._aux is None else bool(self._aux.is_active)

    @property
    def commanded(self) -> bool:
        return bool(self._coil.is_active)

    def close(self) -> None:
        try:
            self._coil.off()
        finally:
            self._coil.close()
            if self._aux is not None:
                self._aux.close()
