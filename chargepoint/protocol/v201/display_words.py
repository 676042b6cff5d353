"""The DisplayMessageCtrlr's words and facts, apart from the DisplayMessage handlers.

The device model (which the local surfaces load for every version's settings
view) needs these facts; the handlers need the ``ocpp`` library's 2.0.1 part,
whose import a 1.6-only station and every CLI command are spared, so the two
live in separate modules.
"""

from __future__ import annotations

from chargepoint.core.display_messages import Capabilities, DisplayMessages, Format, Priority, State

PRIORITIES = {"AlwaysFront": Priority.ALWAYS_FRONT, "InFront": Priority.IN_FRONT,
              "NormalCycle": Priority.NORMAL_CYCLE}
FORMATS = {"ASCII": Format.ASCII, "HTML": Format.HTML, "URI": Format.URI, "UTF8": Format.UTF8}
STATES = {"Charging": State.CHARGING, "Faulted": State.FAULTED, "Idle": State.IDLE,
          "Unavailable": State.UNAVAILABLE}
WORD = {**{v: k for k, v in PRIORITIES.items()}, **{v: k for k, v in FORMATS.items()},
         **{v: k for k, v in STATES.items()}}


def capability_fact(engine: DisplayMessages | None, fact: str) -> str:
    """A DisplayMessageCtrlr fact (``device_model``): the count held, the formats, the priorities."""
    caps = engine.capabilities if engine is not None else Capabilities()
    if fact == "display_message_entries":
        return str(len(engine.all()) if engine is not None else 0)
    if fact == "display_formats":
        return ",".join(w for w, f in FORMATS.items() if f in caps.formats)
    if fact == "display_priorities":
        return ",".join(w for w, p in PRIORITIES.items() if p in caps.priorities)
    raise KeyError(fact)
