"""The supervisor channel's protocol, version 1: the only words daemon and supervisor share.

One frame is one JSON object on one line (UTF-8, ``\\n`` ends it), at most
``MAX_FRAME`` bytes. Small and line-based on purpose: a technician can read it
with ``socat - UNIX-CONNECT:...``, and the supervisor parses nothing bigger than
a few hundred bytes, so a hostile peer cannot make it spend time or memory.

Requests (daemon or CLI -> supervisor)::

    {"v": 1, "id": 7, "op": "claim", "connector": 1, "name": "smart_charging", "amps": 10}
    {"v": 1, "id": 8, "op": "phases", "connector": 1, "phases": 1}

Answers carry the request's id: ``{"v": 1, "id": 7, "ok": true, ...}`` or
``{"v": 1, "id": 7, "error": {"code": "refused", "message": "..."}}``.
Events (supervisor -> peers, unasked) carry ``"event"``: ``state`` (one
connector's status, sent on every change) and ``supervisor`` (timing and the
channel, about once a second). They go to a peer once its hello is answered: the
first line a peer reads is the answer to its hello.

Every request is checked here, field by field, before anything acts on it; a
request that fails gets an error and changes nothing. What the supervisor then
allows is its own decision (``station.py``): a well-formed request is still
only a request.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from chargepoint.safety.iec61851 import CpState
from chargepoint.safety.status import EvseFault, EvseStatus
from hal.interfaces import PilotLevels

VERSION = 1
#: Longest frame either side sends or accepts (bytes, newline included).
MAX_FRAME = 4096
#: Connector ids and request ids stay small; a claim's name is a short word.
MAX_ID = 2**31 - 1
MAX_NAME = 32
#: Claim names the supervisor sets itself: a peer may not set or clear them.
OWN_CLAIMS = frozenset({"station", "cable", "orphan"})
#: The one thing a read-only peer (root's CLI diagnostics) may ask.
READ_ONLY_OPS = frozenset({"hello", "state"})
#: "look" changes nothing: it reads the simulated EV.
SIM_ACTIONS = frozenset({"plug", "unplug", "trip", "release", "weld", "diode", "short", "look"})
FAULT_INPUTS = frozenset({"rcd", "emergency_stop"})


class WireError(Exception):
    """A frame or request that is not acted on: ``code`` is one of the protocol's error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Request:
    """A checked request: ``op`` and its fields, each of the type the op needs."""

    id: int
    op: str
    fields: dict[str, Any]


def encode(message: dict[str, Any]) -> bytes:
    """One frame. Raises ValueError if it would be longer than MAX_FRAME (a bug on our side)."""
    data = json.dumps({"v": VERSION, **message}, separators=(",", ":"), allow_nan=False).encode() + b"\n"
    if len(data) > MAX_FRAME:
        raise ValueError(f"frame of {len(data)} bytes exceeds {MAX_FRAME}")
    return data


def decode(line: bytes) -> dict[str, Any]:
    """A received frame as a dict, or WireError ``bad_frame`` / ``bad_version``."""
    if len(line) > MAX_FRAME:
        raise WireError("bad_frame", f"frame longer than {MAX_FRAME} bytes")
    try:
        message = json.loads(line, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise WireError("bad_frame", f"not JSON: {str(exc)[:80]}") from None
    if not isinstance(message, dict):
        raise WireError("bad_frame", "a frame is a JSON object")
    if message.get("v") != VERSION:
        raise WireError("bad_version", f"protocol version {VERSION} expected")
    return message


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number here")


def answer(request_id: int | None, **fields: Any) -> dict[str, Any]:
    return {"id": request_id, "ok": True, **fields}


def error(request_id: int | None, code: str, message: str) -> dict[str, Any]:
    return {"id": request_id, "error": {"code": code, "message": message[:200]}}


# ------------------------------------------------------------------------- requests

def _int(message: dict[str, Any], key: str, low: int = 1, high: int = MAX_ID) -> int:
    value = message.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise WireError("bad_field", f"{key} must be an integer from {low} to {high}")
    return value


def _bool(message: dict[str, Any], key: str) -> bool:
    value = message.get(key)
    if not isinstance(value, bool):
        raise WireError("bad_field", f"{key} must be true or false")
    return value


def _amps(value: Any, key: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WireError("bad_field", f"{key} must be a finite number")
    if not low <= value <= high:
        raise WireError("bad_field", f"{key} must be from {low:g} to {high:g}")
    return float(value)


def _optional(message: dict[str, Any], key: str, check: Any) -> Any:
    return None if message.get(key) is None else check(message.get(key))


def _claim(m: dict[str, Any]) -> dict[str, Any]:
    name = m.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_NAME or not name.replace("_", "").isalnum():
        raise WireError("bad_field", f"name must be a word of 1 to {MAX_NAME} letters, digits or _")
    if name in OWN_CLAIMS:
        raise WireError("refused", f"the {name} claim is the supervisor's own")
    amps = _optional(m, "amps", lambda v: _amps(v, "amps", 0.0, 1000.0))
    return {"connector": _int(m, "connector"), "name": name, "amps": amps}


def _output_test(m: dict[str, Any]) -> dict[str, Any]:
    contactor = _optional(m, "contactor", lambda v: _bool({"contactor": v}, "contactor"))
    duty = _optional(m, "duty", lambda v: _amps(v, "duty", 0.0, 100.0))
    hold = _amps(m.get("hold_s", 2.0), "hold_s", 0.0, 60.0)
    if contactor is None and duty is None:
        raise WireError("bad_field", "an output test drives the contactor, the pilot or both")
    return {"connector": _int(m, "connector"), "contactor": contactor, "duty": duty, "hold_s": hold}


def _sim(m: dict[str, Any]) -> dict[str, Any]:
    action = m.get("action")
    if action not in SIM_ACTIONS:
        raise WireError("bad_field", "action must be one of " + ", ".join(sorted(SIM_ACTIONS)))
    name = m.get("input", "rcd")
    if name not in FAULT_INPUTS:
        raise WireError("bad_field", "input must be rcd or emergency_stop")
    hold = bool(m.get("hold")) if isinstance(m.get("hold"), bool) else False
    value = m.get("value", True)
    if not isinstance(value, bool):
        raise WireError("bad_field", "value must be true or false")
    return {"connector": _int(m, "connector"), "action": action, "input": name, "hold": hold, "value": value}


_FIELDS: dict[str, Any] = {
    # A peer of the daemon's uid may still ask to only read (a test, the CLI's diagnostics as root).
    "hello": lambda m: {"read_only": m.get("read_only") is True},
    "state": lambda m: {},
    "claim": _claim,
    "energy": lambda m: {"connector": _int(m, "connector"), "granted": _bool(m, "granted")},
    "availability": lambda m: {"connector": _int(m, "connector"), "operative": _bool(m, "operative")},
    "output_test": _output_test,
    "output_test_end": lambda m: {"connector": _int(m, "connector")},
    "clear_faults": lambda m: {"connector": _int(m, "connector")},
    "lock": lambda m: {"connector": _int(m, "connector"), "locked": _bool(m, "locked")},
    # One or three phases through the phase contactor (refused by the supervisor where there is none).
    "phases": lambda m: {"connector": _int(m, "connector"), "phases": _int(m, "phases", 1, 3)},
    # The daemon stops for good (not a restart): a supervisor started on demand ends with it.
    "leaving": lambda m: {"for_good": _bool(m, "for_good")},
    "sim": _sim,
}
OPS = frozenset(_FIELDS)


def parse_request(message: dict[str, Any]) -> Request:
    """A decoded frame as a checked request, or WireError (``unknown_op``, ``bad_field``, ``refused``)."""
    request_id = _int(message, "id", 0)
    op = message.get("op")
    if not isinstance(op, str) or op not in _FIELDS:
        raise WireError("unknown_op", f"unknown operation {str(op)[:32]!r}")
    allowed = {"v", "id", "op", *_KEYS.get(op, ())}
    extra = set(message) - allowed
    if extra:
        raise WireError("bad_field", f"unexpected field {sorted(extra)[0][:32]!r} for {op}")
    return Request(request_id, op, _FIELDS[op](message))


_KEYS = {
    "hello": ("read_only",),
    "leaving": ("for_good",),
    "claim": ("connector", "name", "amps"),
    "energy": ("connector", "granted"),
    "availability": ("connector", "operative"),
    "output_test": ("connector", "contactor", "duty", "hold_s"),
    "output_test_end": ("connector",),
    "clear_faults": ("connector",),
    "lock": ("connector", "locked"),
    "phases": ("connector", "phases"),
    "sim": ("connector", "action", "input", "hold", "value"),
}


def request_id_of(message: Any) -> int | None:
    """The id to answer a bad request with, if it has a usable one."""
    if isinstance(message, dict):
        value = message.get("id")
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_ID:
            return value
    return None


# -------------------------------------------------------------------------- status

def status_fields(status: EvseStatus) -> dict[str, Any]:
    """A safety loop's status as the ``state`` event carries it."""
    return {
        "cp": status.cp_state.value if status.cp_state is not None else None,
        "duty": status.pwm_duty,
        "offered_a": status.offered_a,
        "contactor": status.contactor_closed,
        "aux": status.contactor_feedback,
        "faults": sorted(f.value for f in status.faults),
        "cable_a": status.cable_max_a,
        "binding": status.binding_limit,
        "allowed": status.charging_allowed,
        "t": status.timestamp,
        "phases": status.phases,
    }


def parse_status(fields: dict[str, Any]) -> EvseStatus:
    """The ``state`` event's status back as the safety loop's own type (ValueError if malformed)."""
    faults = frozenset(EvseFault(f) for f in fields["faults"])
    cp = fields["cp"]
    return EvseStatus(
        cp_state=CpState(cp) if cp is not None else None,
        pwm_duty=float(fields["duty"]),
        offered_a=float(fields["offered_a"]),
        contactor_closed=bool(fields["contactor"]),
        contactor_feedback=None if fields["aux"] is None else bool(fields["aux"]),
        faults=faults,
        cable_max_a=None if fields["cable_a"] is None else float(fields["cable_a"]),
        binding_limit=str(fields["binding"]),
        charging_allowed=bool(fields["allowed"]),
        timestamp=float(fields["t"]),
        phases=None if fields.get("phases") is None else int(fields["phases"]),
    )


def levels_fields(levels: PilotLevels | None) -> list[float] | None:
    return None if levels is None else [round(levels.high_v, 3), round(levels.low_v, 3)]


def parse_levels(value: Any) -> PilotLevels | None:
    return None if value is None else PilotLevels(float(value[0]), float(value[1]))
