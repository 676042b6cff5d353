"""Time as OCPP writes it: UTC ISO 8601 with milliseconds and a Z."""

from __future__ import annotations

from datetime import UTC, datetime


def iso_utc(timestamp: float) -> str:
    """Epoch seconds as the UTC ISO 8601 text OCPP uses."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    """OCPP's ISO 8601 date-time as epoch seconds (no zone given: UTC); ValueError if it is not one."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
