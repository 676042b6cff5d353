"""Which claim holds a connector's current back, and why, in the words a homeowner reads.

The limits are named claims (``safety/limits.py``); the status names the one
that binds. A name and an amperage (``limit 0.0 A (solar)``) say little to a
person looking at a phone: these say what the claim means now, from the energy
manager's figures (``solar: 8.9 A from 6.1 kW surplus``, ``paused, starting in
52 s unless the surplus changes``). Pure functions of the status dictionaries,
shared by the CLI, the dashboard and MQTT through the status data.
"""

from __future__ import annotations

import math
from typing import Any

from chargepoint.safety.iec61851 import MIN_PWM_CURRENT_A

#: What each claim is, for a person.
CLAIM_NAMES = {"station": "station rating", "cable": "cable rating", "operator": "your limit",
               "smart_charging": "smart charging", "load_manager": "main fuse", "solar": "solar",
               "orphan": "safety supervisor (daemon away)"}


def kw(watts: float) -> str:
    return f"{watts / 1000:.1f} kW"


def limit_words(binding: str, amps: float | None, energy: dict[str, Any] | None, evse_id: int) -> str:
    """The binding claim of connector ``evse_id`` in words (``energy``: the energy manager's status)."""
    if not binding or amps is None or not math.isfinite(amps):
        return "no limit"
    name = CLAIM_NAMES.get(binding, binding)
    connector = next((c for c in (energy or {}).get("connectors", []) if c["id"] == evse_id), None)
    paused = amps < MIN_PWM_CURRENT_A
    if binding == "solar" and energy is not None and connector is not None:
        if paused:
            return connector["solar"]
        return f"solar: {amps:.1f} A from {kw(energy['surplus_w'])} surplus"
    if binding == "load_manager" and energy is not None:
        head = energy.get("headroom_a")
        left = f"{min(head):.1f} A" if head else "the fallback"
        if paused:
            return f"paused: the main fuse ({energy['main_fuse_a']:g} A) leaves {left} beside the house"
        return f"main fuse: {amps:.1f} A of the {energy['main_fuse_a']:g} A it leaves beside the house"
    return f"{name}: paused" if paused else f"{name}: {amps:.1f} A"
