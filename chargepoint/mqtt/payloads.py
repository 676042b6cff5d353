"""The JSON published for a connector and the station, built from the station service's views.

Pure functions of the dicts ``StationService`` returns (the control socket's
shapes), so what MQTT shows is what ``chargepoint status`` shows, and tests
need no broker. Keys are flat where Home Assistant reads them (``current_l1_a``
rather than a list) and a missing value is ``null``, which Home Assistant shows
as unknown rather than zero.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

PHASES = 3


def dumps(payload: dict[str, Any]) -> str:
    """Compact, stable JSON (sorted keys): equal states give equal text, so unchanged ones are not sent."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True)


def iso(timestamp: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (what Home Assistant's timestamp sensors read)."""
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def kwh(wh: float | None) -> float | None:
    return None if wh is None else round(wh / 1000.0, 4)


def _phases(values: list[float | None] | None, unit: str) -> dict[str, float | None]:
    """``current_l1_a`` ... (unit "a") or ``voltage_l1_v`` ... (unit "v"); null for a phase not measured."""
    values = list(values or [])
    name = "current" if unit == "a" else "voltage"
    return {f"{name}_l{i + 1}_{unit}": values[i] if i < len(values) else None for i in range(PHASES)}


def state(c: dict[str, Any]) -> dict[str, Any]:
    """A connector's state: IEC 61851 state, status, activity, offered and drawn current, binding limit."""
    meter = c["meter"]
    session = c["session"]
    limit = c["limit"]
    return {
        "connector": c["id"],
        "status": c["ocpp_status"],
        "iec_state": c["iec_state"],
        "activity": c["activity"],
        "operative": c["operative"],
        "error": c["error"],
        "pwm_duty": c["pwm_duty"],
        "contactor_closed": c["contactor"]["closed"],
        # The same on every phase: the pilot offers one current per phase.
        "offered_a": c["offered_a"],
        **_phases(meter["currents_a"], "a"),
        "limit_a": limit["amps"],
        "limit_binding": limit["binding"] or None,
        "limit_words": limit.get("words"),
        "operator_limit_a": limit["claims"].get("operator"),
        "operator_limited": limit["claims"].get("operator") is not None,
        "cable_max_a": c["cable_max_a"],
        "session_active": session is not None and session["transaction"] is not None,
    }


def meter(c: dict[str, Any]) -> dict[str, Any]:
    """A connector's meter values (null while the meter has given no reading)."""
    m = c["meter"]
    return {
        "connector": c["id"],
        "available": m["available"],
        "power_w": m["power_w"],
        "energy_wh": m["energy_wh"],
        "energy_kwh": kwh(m["energy_wh"]),
        **_phases(m["currents_a"], "a"),
        **_phases(m["voltages_v"], "v"),
        "frequency_hz": m["frequency_hz"],
    }


def fault(c: dict[str, Any]) -> dict[str, Any]:
    """The faults present on a connector (``error`` also names a meter or storage problem)."""
    return {"connector": c["id"], "active": bool(c["faults"] or c["error"]), "faults": c["faults"],
            "error": c["error"]}


def figures(entry: dict[str, Any]) -> dict[str, Any]:
    """A session's energy from the sun, its share (percent) and its cost so far, where the station has
    them (a grid meter for the sun, a tariff for the cost), else null."""
    share, cost = entry.get("solar_share"), entry.get("cost")
    return {"solar_wh": entry.get("solar_wh"),
            "solar_share_pct": None if share is None else round(share * 100, 1),
            "cost": None if not cost else float(cost["incl_tax"]),
            "currency": None if not cost else cost["currency"]}


def running_session(c: dict[str, Any], now: float) -> dict[str, Any] | None:
    """The transaction running on a connector, or None."""
    session = c["session"]
    tx = session["transaction"] if session else None
    if tx is None:
        return None
    return {"connector": c["id"], "state": "running", "local_id": tx["local_id"],
            "started_at": iso(tx["started_at"]), "meter_start_wh": tx["meter_start_wh"],
            "duration_s": round(now - tx["started_at"], 1), "energy_wh": tx["energy_wh"],
            "energy_kwh": kwh(tx["energy_wh"]), "stopped_at": None, "reason": None, **figures(tx)}


def finished_session(evse_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """A finished transaction as ``StationService.sessions`` lists it."""
    return {"connector": evse_id, "state": "finished", "local_id": row["local_id"],
            "started_at": iso(row["started_at"]), "meter_start_wh": row["meter_start_wh"],
            "duration_s": row["duration_s"], "energy_wh": row["energy_wh"],
            "energy_kwh": kwh(row["energy_wh"]), "stopped_at": iso(row["stopped_at"]),
            "reason": row["reason"], **figures(row)}


def no_session(evse_id: int) -> dict[str, Any]:
    return {"connector": evse_id, "state": "none", "local_id": None, "started_at": None,
            "meter_start_wh": None, "duration_s": None, "energy_wh": None, "energy_kwh": None,
            "stopped_at": None, "reason": None, **figures({})}


def energy(e: dict[str, Any]) -> dict[str, Any]:
    """The house with a grid meter: the solar mode and the power at the connection (W; grid + import,
    - export), the station's, the surplus, the house with the sun netted in, and PV when it is read."""
    power = e.get("power") or {}
    return {"mode": e["mode"], "grid_w": power.get("grid_w"), "station_w": power.get("station_w"),
            "surplus_w": power.get("surplus_w", e.get("surplus_w")), "house_net_w": power.get("house_net_w"),
            "pv_w": power.get("pv_w"), "grid_meter": e["grid_meter"]["state"]}


def plan(evse_id: int, p: dict[str, Any] | None) -> dict[str, Any]:
    """A connector's departure plan (``active`` false: none), with its state in words."""
    if p is None:
        return {"connector": evse_id, "active": False, "state": None, "energy_kwh": None, "deadline": None,
                "charged_kwh": None, "words": "no plan", "text": ""}
    deadline = datetime.fromtimestamp(p["deadline"]).astimezone()
    return {"connector": evse_id, "active": p["state"] in ("solar", "grid"), "state": p["state"],
            "energy_kwh": kwh(p["energy_wh"]), "deadline": iso(p["deadline"]),
            "charged_kwh": kwh(p["charged_wh"]), "words": p["words"],
            "text": f"{p['energy_wh'] / 1000:g} kWh by {deadline:%H:%M}"}


def event(name: str, evse_id: int, now: float, **fields: Any) -> dict[str, Any]:
    return {"event": name, "connector": evse_id, "time": iso(now), **fields}


def station(identity: str, version: str, status: str, csms_connected: bool, queue_length: int,
            connectors: int) -> dict[str, Any]:
    """The station as a whole and its CSMS link."""
    return {"identity": identity, "version": version, "status": status, "csms_connected": csms_connected,
            "queue_length": queue_length, "connectors": connectors}
