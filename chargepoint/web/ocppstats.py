"""OCPP messages counted by direction, action and result, for the metrics.

Fed with every text frame of the CSMS connection (the daemon's recorder hands
them on), it reads only the head of an OCPP-J frame -- message type, id, and
the action or error code -- with one regular expression, so the same counter
serves every OCPP version and costs no JSON parse. A CALL is remembered by
its id until its answer comes; then one count is added under the CALL's
action: ``result`` is ``ok`` for a CALLRESULT and the error code for a
CALLERROR. CALLs still unanswered when a new connection begins count as
``no_answer``.
"""

from __future__ import annotations

import re
from collections import Counter

#: [MessageTypeId, "UniqueId", "Action" | "ErrorCode" | {payload} ...
_HEAD = re.compile(r'\s*\[\s*([234])\s*,\s*"((?:[^"\\]|\\.){0,64})"\s*,\s*(?:"([A-Za-z0-9_.-]{1,64})")?')
#: CALLs waiting for an answer, per direction; more means a peer that never answers.
MAX_PENDING = 64
HEAD_CHARS = 200


class MessageCounter:
    """Counts of answered CALLs: (direction, action, result) -> n.

    ``direction`` is ``sent`` for the station's CALLs (answered by the CSMS)
    and ``received`` for the CSMS's CALLs (answered by the station).
    """

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._pending: dict[str, dict[str, str]] = {"out": {}, "in": {}}

    def frame(self, direction: str, text: str | bytes) -> None:
        """One frame: ``direction`` is "out" (to the CSMS) or "in" (from it)."""
        if isinstance(text, bytes):
            text = text[:HEAD_CHARS].decode("utf-8", "replace")
        match = _HEAD.match(text, 0, HEAD_CHARS)
        if match is None:
            return
        kind, unique, word = match.groups()
        if kind == "2":
            pending = self._pending[direction]
            if len(pending) >= MAX_PENDING:
                pending.pop(next(iter(pending)))
            pending[unique] = word or "?"
            return
        # An answer travels the other way from its CALL.
        origin = "in" if direction == "out" else "out"
        action = self._pending[origin].pop(unique, None)
        if action is None:
            return
        result = "ok" if kind == "3" else (word or "?")
        self.counts[("sent" if origin == "out" else "received", action, result)] += 1

    def new_connection(self) -> None:
        """The connection was replaced: what was not answered on the old one never will be."""
        for origin, pending in self._pending.items():
            for action in pending.values():
                self.counts[("sent" if origin == "out" else "received", action, "no_answer")] += 1
            pending.clear()
