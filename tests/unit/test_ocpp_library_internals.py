"""The `ocpp` library's private internals the product relies on: where they are used, and their shape.

The library's ChargePoint offers no public hook for a capped, version-correct
CALLERROR, a bounded call intake or a call whose frame is kept for the log, so
``protocol/common/peer.py`` (RobustPeer) overrides or reads a few of its private
members, and each version's peer overrides ``_handle_call``. Nothing else in the
product may touch them: then a library upgrade that renames or reshapes one
breaks this test first, with the member's name, instead of a station in the field.
"""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path

from ocpp.charge_point import ChargePoint

ROOT = Path(__file__).resolve().parents[2]

#: Private members of ocpp.charge_point.ChargePoint, with the parameters the product calls them with
#: (None: an attribute set in __init__).
INTERNALS: dict[str, list[str] | None] = {
    "_handle_call": ["self", "msg"],
    "_send": ["self", "message"],
    "_get_specific_response": ["self", "unique_id", "timeout"],
    "_connection": None,
    "_call_lock": None,
    "_response_queue": None,
    "_response_timeout": None,
    "_unique_id_generator": None,
}

#: The only product modules allowed to touch them.
ALLOWED = {
    "chargepoint/protocol/common/peer.py",
    "chargepoint/protocol/v16/peer.py",
    "chargepoint/protocol/v201/peer.py",
    "chargepoint/protocol/v21/peer.py",
}


def test_the_library_still_has_each_private_member_in_the_shape_used():
    for name, parameters in INTERNALS.items():
        if parameters is None:
            continue
        member = getattr(ChargePoint, name, None)
        assert member is not None, f"ocpp.ChargePoint.{name} is gone: see protocol/common/peer.py"
        assert list(inspect.signature(member).parameters) == parameters, name
        assert inspect.iscoroutinefunction(member), f"ocpp.ChargePoint.{name} is no longer a coroutine"

    async def attributes() -> None:
        charge_point = ChargePoint("CP-1", object(), response_timeout=7)
        for name, parameters in INTERNALS.items():
            if parameters is None:
                assert hasattr(charge_point, name), f"ocpp.ChargePoint() no longer sets {name}"
        assert charge_point._response_timeout == 7
        assert isinstance(charge_point._call_lock, asyncio.Lock)
        assert isinstance(charge_point._response_queue, asyncio.Queue)
        assert isinstance(charge_point.route_map, dict)

    asyncio.run(attributes())


def test_only_the_peers_touch_the_library_internals():
    names = "|".join(re.escape(name) for name in INTERNALS)
    # Reached through a library ChargePoint: `self.` inside a peer class, or `.peer.`/`peer.` from outside.
    pattern = re.compile(rf"\b(?:super\(\)|peer|charge_point|cp)\.({names})\b|\bself\.({names})\b")
    offenders = []
    for path in sorted((ROOT / "chargepoint").rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative in ALLOWED:
            continue
        source = path.read_text()
        for match in pattern.finditer(source):
            name = match.group(1) or match.group(2)
            if match.group(2) and re.search(rf"\bself\.{re.escape(name)}\s*=", source):
                continue  # the class's own attribute of that name, not the library's
            offenders.append(f"{relative}: {match.group(0)}")
    assert offenders == [], offenders
