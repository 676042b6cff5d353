"""The session history as CSV (``chargepoint sessions --csv FILE``), e.g. to reimburse a company car.

One row per finished session, oldest first, with the columns of
:data:`COLUMNS`:

start, end
    ISO 8601 with the station's UTC offset (``2026-11-28T18:02:11+01:00``).
duration_s
    Seconds from start to end.
card_tag, card_name
    The identifier that started the session and the name its card had on the
    local card list when the session began (empty if it had none; free vend
    sessions carry the configured free vend tag).
energy_kwh
    meter_stop_wh - meter_start_wh, in kWh with three decimals.
meter_start_wh, meter_stop_wh
    The meter's import register at start and end, Wh, as recorded.
stop_reason
    Why it ended (local, ev_disconnected, remote, power_loss, ...).
connector
    The connector (EVSE) number.
csms_transaction_id
    The CSMS's transaction id, empty for a session without a CSMS (standalone)
    or one the CSMS has not yet confirmed.

Running sessions are not exported (they have no end yet). The station keeps the
newest 1000 sessions; export regularly for a longer record.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

COLUMNS = ("start", "end", "duration_s", "card_tag", "card_name", "energy_kwh", "meter_start_wh",
           "meter_stop_wh", "stop_reason", "connector", "csms_transaction_id")


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def sessions_csv(finished: list[dict[str, Any]]) -> str:
    """The daemon's finished sessions (newest first, as ``sessions`` answers) as CSV text, oldest first."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for s in reversed(finished):
        writer.writerow([
            _iso(s["started_at"]), _iso(s["stopped_at"]), f"{s['stopped_at'] - s['started_at']:.0f}",
            s["id_tag"], s.get("card_name") or "", f"{(s['meter_stop_wh'] - s['meter_start_wh']) / 1000:.3f}",
            f"{s['meter_start_wh']:.1f}", f"{s['meter_stop_wh']:.1f}", s["reason"] or "", s["connector"],
            s["remote_id"] or ""])
    return out.getvalue()
