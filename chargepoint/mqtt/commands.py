"""Commands on topics: start, stop, availability, limit and plan per connector, and the solar mode,
through the station service and the control commands like the CLI's.

Off unless ``[mqtt] commands = true``: whoever may publish on the broker may
use them, so the broker's credentials and ACLs are the only guard. Every
message is checked before anything happens; a bad one is refused with one log
line and a result on ``<prefix>/cmd/result``, never an exception out of here.
A retained command is refused too: it would run again at every reconnect.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from chargepoint.control.commands import COMMANDS as CONTROL
from chargepoint.control.errors import ControlError
from chargepoint.control.service import StationService
from chargepoint.mqtt.topics import COMMANDS, STATION_COMMANDS, Topics

log = logging.getLogger(__name__)

#: Longest command payload accepted (bytes); a command needs a few dozen.
PAYLOAD_MAX = 1024
#: Home Assistant's default button payload.
PRESS = "PRESS"
#: A connector number and a current as the topics and payloads may write them: ASCII digits only.
#: (``int`` and ``float`` also take other scripts' digits, such as '\u0663', and ``_``, exponents, nan.)
_CONNECTOR = re.compile(r"[0-9]{1,6}")
_AMPS = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")
#: A departure plan as a person types it: "12 kWh by 07:30" (kWh optional).
_PLAN = re.compile(r"([0-9]{1,3}(?:\.[0-9]{1,3})?) ?(?:kWh|kwh)? by ([0-9]{1,2}):([0-9]{2})")
#: The limit switch's "on": the connector's rating becomes the limit (the number then lowers it).
ON = "on"


class Refused(Exception):
    """A command that cannot be carried out, with the reason in words."""


@dataclass(frozen=True)
class Outcome:
    """What a command did: published as JSON on the result topic."""

    topic: str
    command: str | None
    connector: int | None
    ok: bool
    detail: dict[str, Any] | str

    def as_json(self) -> dict[str, Any]:
        key = "result" if self.ok else "error"
        return {"topic": self.topic, "command": self.command, "connector": self.connector, "ok": self.ok,
                key: self.detail}


def _text(payload: bytes) -> str:
    if len(payload) > PAYLOAD_MAX:
        raise Refused(f"payload of {len(payload)} bytes (at most {PAYLOAD_MAX})")
    try:
        return payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise Refused("payload is not UTF-8 text") from None


def _object(text: str) -> dict[str, Any]:
    """An empty payload, Home Assistant's PRESS, or a JSON object."""
    if text in ("", PRESS):
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        raise Refused(f"payload must be empty, {PRESS} or a JSON object, not {text[:40]!r}") from None
    if not isinstance(value, dict):
        raise Refused("payload must be a JSON object")
    return value


def _start_args(text: str) -> str | None:
    args = _object(text)
    unknown = sorted(set(args) - {"id_tag"})
    if unknown:
        raise Refused(f"unknown field {unknown[0]!r} (start takes id_tag)")
    id_tag = args.get("id_tag")
    if id_tag is not None and not isinstance(id_tag, str):
        raise Refused("id_tag must be a string")
    return id_tag


def _operative(text: str) -> bool:
    word = text.lower()
    if word not in ("operative", "inoperative"):
        raise Refused(f"payload must be operative or inoperative, not {text[:40]!r}")
    return word == "operative"


def _amps(text: str, rating: Callable[[], float]) -> float | None:
    """The operator's limit in amperes, or None for ``clear`` (or an empty payload); ``on``: the rating."""
    if text.lower() in ("", "clear"):
        return None
    if text.lower() == ON:
        return rating()
    if not _AMPS.fullmatch(text):
        raise Refused(f"payload must be a current in amperes (such as 10 or 10.5) or clear, "
                      f"not {text[:40]!r}")
    return float(text)


def _plan(text: str, now: float) -> dict[str, Any]:
    """The plan command's arguments: ``clear`` (or empty), or "12 kWh by 07:30" (the next 07:30 on the
    station's clock, local time)."""
    if text.lower() in ("", "clear", PRESS.lower()):
        return {"clear": True}
    match = _PLAN.fullmatch(text)
    if match is None:
        raise Refused(f"payload must be like 12 kWh by 07:30, or clear, not {text[:40]!r}")
    hour, minute = int(match[2]), int(match[3])
    if hour > 23 or minute > 59:
        raise Refused(f"{match[2]}:{match[3]} is not a time of day")
    start = datetime.fromtimestamp(now)
    when = start.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if when <= start:
        when += timedelta(days=1)
    return {"energy_kwh": float(match[1]), "deadline": when.timestamp()}


class CommandHandler:
    """Turns one command message into one station service call."""

    def __init__(self, service: StationService, topics: Topics) -> None:
        self.service = service
        self.topics = topics

    async def handle(self, topic: str, payload: bytes, retained: bool) -> Outcome:
        station = self.topics.parse_station_command(topic)
        if station is not None:
            return await self._station(topic, station, payload, retained)
        parsed = self.topics.parse_command(topic)
        name = parsed[1] if parsed else None
        evse_id: int | None = None
        try:
            if parsed is None or name not in COMMANDS:
                raise Refused(f"unknown command (known: {', '.join(COMMANDS)})")
            if retained:
                raise Refused("retained command (publish commands without the retain flag)")
            if not _CONNECTOR.fullmatch(parsed[0]):
                raise Refused(f"connector must be a number, not {parsed[0][:20]!r}")
            evse_id = self.service.evse_id(int(parsed[0]))
            result = await self._run(name, evse_id, _text(payload))
        except (Refused, ControlError) as exc:
            reason = exc.message if isinstance(exc, ControlError) else str(exc)
            log.warning("MQTT command on %s refused: %s", topic[:200], reason)
            return Outcome(topic, name, evse_id, False, reason)
        log.info("MQTT command %s on connector %d: done", name, evse_id)
        return Outcome(topic, name, evse_id, True, result)

    async def _station(self, topic: str, name: str, payload: bytes, retained: bool) -> Outcome:
        """A station command (the solar mode)."""
        try:
            if name not in STATION_COMMANDS:
                raise Refused(f"unknown station command (known: {', '.join(STATION_COMMANDS)})")
            if retained:
                raise Refused("retained command (publish commands without the retain flag)")
            mode = _text(payload).lower()
            result = await CONTROL["mode"](self.service, {"mode": mode})
        except (Refused, ControlError) as exc:
            reason = exc.message if isinstance(exc, ControlError) else str(exc)
            log.warning("MQTT command on %s refused: %s", topic[:200], reason)
            return Outcome(topic, name, None, False, reason)
        log.info("MQTT command %s: done", name)
        return Outcome(topic, name, None, True, {"mode": result["mode"]})

    def _rating(self, evse_id: int) -> float:
        """The connector's rating (the station claim): the limit that ``on`` sets."""
        claims = self.service.connector_status(evse_id)["limit"]["claims"]
        return float(claims.get("station") or claims.get("cable") or 32.0)

    async def _run(self, name: str | None, evse_id: int, text: str) -> dict[str, Any]:
        if name == "start":
            return self.service.start(_start_args(text), evse_id, authorize=False)
        if name == "stop":
            if _object(text):
                raise Refused("stop takes no fields")
            return await self.service.stop(evse_id)
        if name == "limit":
            return await self.service.limit(evse_id, _amps(text, lambda: self._rating(evse_id)))
        if name == "plan":
            args = {"connector": evse_id, **_plan(text, self.service.clock.time())}
            result = await CONTROL["plan"](self.service, args)
            return {"connector": evse_id, "plan": result["plan"]}
        return self.service.availability(evse_id, _operative(text))
