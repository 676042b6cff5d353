"""The station's views shaped as the control protocol's JSON (and the dashboard's and MQTT's after it).

Plain functions of the core's view dataclasses: one shape for every local
surface, rounded to what a reading means, non-finite numbers as null.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from chargepoint.core.display_messages import DisplayMessages
from chargepoint.core.reservations import Reservation
from chargepoint.core.tariffs.tariff_cost import CostSummary
from chargepoint.core.views import ConnectorView


def connector_json(v: ConnectorView, status_word: str, remote_id: Callable[[str], str | None], now: float,
                   testing: bool) -> dict[str, Any]:
    """A connector's view as the control protocol shows it."""
    evse = v.evse
    session = None
    if v.session is not None:
        tx = v.session.transaction
        transaction = None
        if tx is not None:
            transaction = {"local_id": tx.local_id, "remote_id": remote_id(tx.local_id),
                           "started_at": tx.started_at, "meter_start_wh": tx.meter_start_wh,
                           "energy_wh": number(tx.energy_wh, 1), "stopping": tx.stopping,
                           "cost": cost_json(tx.cost) if tx.cost is not None else None,
                           "csms_cost": str(tx.csms_cost) if tx.csms_cost is not None else None}
        token = v.session.token  # None: a transaction the EV began, no identifier yet
        session = {"id_tag": token.value if token else None,
                   "token_type": token.type.value if token else None, "transaction": transaction}
    reading = v.last_reading
    meter = {"available": v.meter_available, "failures": v.meter_failures, "energy_wh": None,
             "power_w": None, "currents_a": None, "voltages_v": None, "frequency_hz": None, "age_s": None,
             "energy_export_wh": None, "power_measurand": None}
    if reading is not None:
        # power_w keeps the meter's sign; power_measurand says it as OCPP does (export: out of the EV).
        exporting = reading.power_w is not None and reading.power_w < 0
        meter.update(energy_wh=number(reading.energy_import_wh, 1), power_w=number(reading.power_w, 1),
                     energy_export_wh=number(reading.energy_export_wh, 1),
                     power_measurand=None if reading.power_w is None
                     else "Power.Active.Export" if exporting else "Power.Active.Import",
                     currents_a=[number(x, 2) for x in reading.currents_a],
                     voltages_v=[number(x, 1) for x in reading.voltages_v],
                     frequency_hz=number(reading.frequency_hz, 2), age_s=number(now - reading.timestamp, 1))
    return {
        "id": v.evse_id,
        "ocpp_status": status_word,
        "error": v.status.fault or v.status.warning,
        "activity": v.status.activity.value,
        "operative": v.operative,
        "scheduled_operative": v.scheduled_operative,
        "iec_state": evse.cp_state.value if evse is not None and evse.cp_state is not None else None,
        "pwm_duty": evse.pwm_duty if evse else None,
        "offered_a": evse.offered_a if evse else None,
        "contactor": {"closed": evse.contactor_closed if evse else None,
                      "feedback": evse.contactor_feedback if evse else None},
        "faults": sorted(f.value for f in evse.faults) if evse else [],
        "cable_max_a": evse.cable_max_a if evse else None,
        "limit": {"amps": number(v.limit.amps, 1), "binding": v.limit.binding, "claims": v.claims},
        "session": session,
        "meter": meter,
        "test_running": testing,
        "reservation": reservation_json(v.reservation) if v.reservation is not None else None,
    }


def cost_json(cost: CostSummary) -> dict[str, Any]:
    """A session's cost so far: totals as decimal text rounded as a bill shows them (exact, not floats)."""
    excl, incl = cost.rounded()
    return {"currency": cost.currency, "tariff_id": cost.tariff_id, "excl_tax": str(excl),
            "incl_tax": str(incl), "kind": cost.kind, "energy_wh": number(float(cost.usage.energy_wh), 1)}


def reservation_json(r: Reservation) -> dict[str, Any]:
    """A reservation as the control protocol shows it (connector None: any connector)."""
    return {"id": r.id, "connector": r.evse_id, "id_tag": r.token.value, "group": r.group_id,
            "expiry": r.expiry, "connector_type": r.connector_type}


def display_json(engine: DisplayMessages | None) -> dict[str, Any] | None:
    """The operator's display messages: the station's state for them, each with its priority, its
    validity (from, until: epoch seconds or null) and whether the display shows it now."""
    if engine is None:
        return None
    shown = [m.id for m in engine.showing()]
    return {"state": engine.state.value, "showing": shown, "messages": [
        {"id": m.id, "priority": m.priority.value, "text": m.content, "format": m.format.value,
         "language": m.language, "state": m.state.value if m.state else None, "start": m.start,
         "end": m.end, "transaction": m.transaction_id, "shown": m.id in shown} for m in engine.all()]}


def last_problems(entries: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """The last ``limit`` different warnings and errors, each once, with how often it came and when last.

    One fault is often said several times (each trip, each status); the
    technician needs each once, counted, newest last.
    """
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for e in entries:
        key = (e["level"], e["source"], e["text"])
        seen = latest.pop(key, None)
        latest[key] = {"time": e["time"], "level": e["level"], "source": e["source"], "text": e["text"],
                       "count": (seen["count"] if seen else 0) + 1}
    return list(latest.values())[-limit:]


def number(value: float | None, digits: int = 3) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(value, digits)


def text_or_none(value: object) -> str | None:
    """A value as JSON text (an id the store keeps as a number or a string), None staying null."""
    return None if value is None else str(value)
