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
        "operator_limit_a": limit["claims"].get("operator"),
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


def running_session(c: dict[str, Any], now: float) -> dict[str, Any] | None:
    """The transaction running on a connector, or None."""
    session = c["session"]
    tx = session["transaction"] if session else None
    if tx is None:
        return None
    return {"connector": c["id"], "state": "running", "local_id": tx["local_id"],
            "started_at": iso(tx["started_at"]), "meter_start_wh": tx["meter_start_wh"],
            "duration_s": round(now - tx["started_at"], 1), "energy_wh": tx["energy_wh"],
            "energy_kwh": kwh(tx["energy_wh"]), "stopped_at": None, "reason": None}


def finished_session(evse_id: int, row: dict[str, Any]) -> dict[str, Any]:
    """A finished transaction as ``StationService.sessions`` lists it."""
    return {"connector": evse_id, "state": "finished", "local_id": row["local_id"],
            "started_at": iso(row["started_at"]), "meter_start_wh": row["meter_start_wh"],
            "duration_s": row["duration_s"], "energy_wh": row["energy_wh"],
            "energy_kwh": kwh(row["energy_wh"]), "stopped_at": iso(row["stopped_at"]),
            "reason": row["reason"]}


def no_session(evse_id: int) -> dict[str, Any]:
    return {"connector": evse_id, "state": "none", "local_id": None, "started_at": None,
            "meter_start_wh": None, "duration_s": None, "energy_wh": None, "energy_kwh": None,
            "stopped_at": None, "reason": None}


def event(name: str, evse_id: int, now: float, **fields: Any) -> dict[str, Any]:
    return {"event": name, "connector": evse_id, "time": iso(now), **fields}


def station(identity: str, version: str, status: str, csms_connected: bool, queue_length: int,
            connectors: int) -> dict[str, Any]:
    """The station as a whole and its CSMS link."""
    return {"identity": identity, "version": version, "status": status, "csms_connected": csms_connected,
            "queue_length": queue_length, "connectors": connectors}
