"""What the dashboard may do, and the checks the page's requests get before the control command.

Every action is a control socket command (``control.commands``, the cards
commands of ``control.card_commands``), so the page can do nothing the CLI
could not. A few requests are checked more strictly than the socket checks
them, because a form can send what a person did not mean:

* ``limit`` needs ``amps`` spelt out, a number or null (clear). A body without
  it, or with an empty string, is refused: an empty field must never become a
  limit (0 A would pause the car) or silently clear one.
* ``mode`` needs ``mode``, and ``plan`` its energy and deadline (or ``clear``):
  without them the commands would only show the mode or the plan.

A command the station does not have is not offered either.
"""

from __future__ import annotations

from typing import Any

from chargepoint.config.model import SOLAR_MODES
from chargepoint.control import card_commands  # noqa: F401 - registers the cards commands
from chargepoint.control.commands import COMMANDS
from chargepoint.control.errors import ControlError

#: The page's actions, by control command name (those the station has).
ACTIONS = tuple(name for name in ("start", "stop", "availability", "limit", "mode", "plan", "cards_add",
                                  "cards_remove") if name in COMMANDS)
#: The solar modes, in the order the page shows them (off first when the station has it).
MODE_ORDER = tuple(m for m in ("off", "pv", "minpv", "fast") if m in SOLAR_MODES)


def checked(name: str, args: dict[str, Any]) -> dict[str, Any]:
    """``args`` if the page may send them for ``name``; a ``ControlError`` (bad_request) if not."""
    if name == "limit":
        if "amps" not in args:
            raise ControlError("bad_request", "say the limit: amps in amperes, or null to remove it")
        amps = args["amps"]
        if amps is not None and (isinstance(amps, bool) or not isinstance(amps, int | float)):
            raise ControlError("bad_request", f"amps must be a number of amperes or null, not {amps!r}")
    if name == "plan" and args.get("clear") is not True:
        for key in ("energy_kwh", "deadline"):
            value = args.get(key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ControlError("bad_request", "a plan needs energy_kwh and deadline (numbers), "
                                                  "or clear: true to remove it")
    if name == "mode" and args.get("mode") is None:
        raise ControlError("bad_request", f"say the mode: one of {', '.join(MODE_ORDER)}")
    return args
