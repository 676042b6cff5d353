"""Commands on topics: start, stop, availability and limit, through the station service like the CLI's.

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
from dataclasses import dataclass
from typing import Any

from chargepoint.control.errors import ControlError
from chargepoint.control.service import StationService
from chargepoint.mqtt.topics import COMMANDS, Topics

log = logging.getLogger(__name__)

#: Longest command payload accepted (bytes); a command needs a few dozen.
PAYLOAD_MAX = 1024
#: Home Assistant's default button payload.
PRESS = "PRESS"
#: A connector number and a current as the topics and payloads may write them: ASCII digits only.
#: (``int`` and ``float`` also take other scripts' digits, such as '\u0663', and ``_``, exponents, nan.)
_CONNECTOR = re.compile(r"[0-9]{1,6}")
_AMPS = re.compile(r"[0-9]{1,6}(?:\.[0-9]{1,6})?")


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


def _amps(text: str) -> float | None:
    """The operator's limit in amperes, or None for ``clear`` (or an empty payload)."""
    if text.lower() in ("", "clear"):
        return None
    if not _AMPS.fullmatch(text):
        raise Refused(f"payload must be a current in amperes (such as 10 or 10.5) or clear, "
                      f"not {text[:40]!r}")
    return float(text)


class CommandHandler:
    """Turns one command message into one station service call."""

    def __init__(self, service: StationService, topics: Topics) -> None:
        self.service = service
        self.topics = topics

    async def handle(self, topic: str, payload: bytes, retained: bool) -> Outcome:
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

    async def _run(self, name: str | None, evse_id: int, text: str) -> dict[str, Any]:
        if name == "start":
            return self.service.start(_start_args(text), evse_id, authorize=False)
        if name == "stop":
            if _object(text):
                raise Refused("stop takes no fields")
            return await self.service.stop(evse_id)
        if name == "limit":
            return await self.service.limit(evse_id, _amps(text))
        return self.service.availability(evse_id, _operative(text))
