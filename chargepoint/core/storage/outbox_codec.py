"""Transaction events as the text the outbox keeps in the state database.

One JSON object per queued message: the event's fields and its type, and
once the message has its wire form (``Sent``) that too, under ``sent``. The
decoder also reads what earlier releases wrote (an identifier as bare text, an
address by connector only, samples without per-phase powers, a start without
its start point), so a queue left by an older release is delivered after an
update. A start made before anyone was authorized has the token ``null``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from chargepoint.core.events import (
    Activity,
    ActivityChanged,
    IdToken,
    MeterSample,
    ReadingContext,
    StopReason,
    TokenType,
    TransactionAuthorized,
    TransactionEvent,
    TransactionStarted,
    TransactionStopped,
    TxPoint,
)
from hal.interfaces import MeterReading


@dataclass(frozen=True)
class Sent:
    """A queued message in the form it goes on the wire, fixed before it is first sent.

    Every send of the message (again after a lost connection, after a restart)
    is this text, byte for byte: a resend the CSMS may compare with the first
    must not change because the station's state did meanwhile (the link went
    down, a setting changed). ``form`` names who made it (the OCPP version): a
    message made for another version is made again. The payload is JSON text,
    kept as text so that nothing re-encodes it.
    """

    form: str
    action: str
    payload: str


def encode(event: TransactionEvent, sent: Sent | None = None) -> str:
    data = {"type": type(event).__name__, **asdict(event)}
    if sent is not None:
        data["sent"] = asdict(sent)
    return json.dumps(data, separators=(",", ":"))


def decode_stored(text: str) -> tuple[TransactionEvent, Sent | None]:
    """A queued message as stored: its event, and its wire form if it has one yet."""
    data = json.loads(text)
    sent = data.pop("sent", None)
    return _event(data), None if sent is None else Sent(str(sent["form"]), str(sent["action"]),
                                                       str(sent["payload"]))


def _address(data: dict[str, Any]) -> tuple[int, int]:
    """EVSE and connector; entries queued by earlier releases name only a connector (= the EVSE)."""
    if "evse_id" in data:
        return int(data["evse_id"]), int(data.get("connector_id", 1))
    return int(data["connector_id"]), 1


def _token(data: dict[str, Any] | str | None) -> IdToken | None:
    """An identifier as encoded (earlier releases stored the bare idTag text)."""
    if data is None:
        return None
    if isinstance(data, str):
        return IdToken(data)
    return IdToken(data["value"], TokenType.parse(data["type"]))


def _sample(data: dict[str, Any]) -> MeterSample:
    reading = dict(data["reading"])
    for name in ("currents_a", "voltages_v", "powers_w", "power_factors"):
        if name in reading:  # entries queued by earlier releases lack the per-phase powers
            reading[name] = tuple(reading[name])
    evse_id, connector_id = _address(data)
    return MeterSample(evse_id, data["local_id"], MeterReading(**reading),
                       ReadingContext.parse(data["context"]), data.get("offered_a"), connector_id,
                       data.get("cost"))


def decode(text: str) -> TransactionEvent:
    return decode_stored(text)[0]


def _event(data: dict[str, Any]) -> TransactionEvent:
    kind = data.pop("type")
    evse_id, connector_id = _address(data)
    if kind == "TransactionStarted":
        point = data.get("point")
        return TransactionStarted(evse_id, data["local_id"], _token(data.get("token", data.get("id_tag"))),
                                  data["meter_start_wh"], data["timestamp"], connector_id,
                                  data.get("reservation_id"), data.get("remote_start_id"),
                                  None if point is None else TxPoint.parse(point),
                                  bool(data.get("plugged", True)))
    if kind == "TransactionAuthorized":
        return TransactionAuthorized(evse_id, data["local_id"], _token(data["token"]),
                                     bool(data["authorized"]), data["timestamp"], connector_id,
                                     data.get("remote_start_id"),
                                     bool(data.get("remote", False)))
    if kind == "MeterSample":
        return _sample(data)
    if kind == "TransactionStopped":
        return TransactionStopped(
            evse_id, data["local_id"], data["meter_stop_wh"], data["timestamp"],
            StopReason.parse(data["reason"]), _token(data.get("token", data.get("id_tag"))),
            tuple(_sample(s) for s in data["samples"]), connector_id, data.get("cost"))
    if kind == "ActivityChanged":
        return ActivityChanged(evse_id, data["local_id"], Activity.parse(data["activity"]),
                               bool(data["plugged"]), data["timestamp"], connector_id, data.get("ev_arrived"))
    raise ValueError(f"unknown queued message type {kind!r}")


def event_time(event: TransactionEvent) -> float:
    """When the message's event happened, on the station's clock."""
    return event.reading.timestamp if isinstance(event, MeterSample) else event.timestamp
