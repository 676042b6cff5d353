"""Each session's energy from the sun, its share and its cost, added to what the control API shows.

The history rows (``StationService.sessions``) and the connectors' running
transactions have the meter's energy; the energy manager's ledger
(``core/energy/session_energy.py``) has the sun's part of each session and the cost
the tariff engine reached. Without a grid meter there is no ledger and the
figures are null (the running cost is still the transaction's own).
"""

from __future__ import annotations

from typing import Any

from chargepoint.control.shapes import cost_json
from chargepoint.core.energy.session_energy import solar_share
from chargepoint.core.tariffs.tariff_codec import cost_from_json


def finished_figures(entry: dict[str, Any], energy: Any) -> dict[str, Any]:
    """``solar_wh``, ``solar_share`` and ``cost`` of a finished session of the history."""
    kept = energy.ledger.of(entry["local_id"]) if energy is not None else None
    solar = kept["solar_wh"] if kept else None
    cost = cost_json(cost_from_json(kept["cost"])) if kept and kept.get("cost") else None
    return {"solar_wh": solar, "solar_share": solar_share(solar, entry.get("energy_wh")), "cost": cost}


def running_figures(evse_id: int, energy_wh: float | None, energy: Any) -> dict[str, Any]:
    """``solar_wh`` and ``solar_share`` of the session running on ``evse_id``."""
    solar = energy.ledger.solar_wh(evse_id, energy.solar_wh_by) if energy is not None else None
    solar = None if solar is None else round(solar, 1)
    return {"solar_wh": solar, "solar_share": solar_share(solar, energy_wh)}
