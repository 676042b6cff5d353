"""A station's log as a person on site needs it: one line per event, capped, repeats counted.

Two ``logging.Filter`` classes, installed on every handler that writes the log
(the root handlers set up by ``chargepoint run``, and the Recorder's, which
feeds ``chargepoint logs``):

``Scrub``
    caps a line at ``LINE_MAX`` characters and a traceback at
    ``TRACEBACK_MAX``, so no payload, however large, is written whole.
``RateLimit``
    lets ``BURST`` records of one kind through per ``WINDOW_S``; the ones
    after that are counted, not written, and the next record of the kind
    after the window carries the count: "... (similar line repeated 57 times
    in the last 60 s)". A kind is (logger, level, message template), so a
    flood of CALLs answered with the same error is a few lines, whatever ids
    and actions they carry. Only WARNING and up are limited. The clock is
    injectable for tests.

Filters change the record in place (a filter cannot hand a new record on in
Python 3.11), and every handler sees the same record: the rewrites are
idempotent, a rewritten record keeps its template as ``log_template``, and a
RateLimit takes off the count another handler's RateLimit put on before
adding its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

#: Longest message written (characters); the rest is replaced by its length.
LINE_MAX = 2000
#: Longest traceback written (characters): its start and its end are kept.
TRACEBACK_MAX = 8000
#: Records of one kind written per window, and the window (seconds).
BURST = 5
WINDOW_S = 60.0
#: Kinds of record a RateLimit remembers at most.
KINDS_MAX = 500


def cap(text: str, limit: int = LINE_MAX) -> str:
    """``text`` cut to at most ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    note = f"... ({len(text)} characters)"
    return text[:max(0, limit - len(note))] + note


def cap_traceback(text: str, limit: int = TRACEBACK_MAX) -> str:
    """A traceback cut in the middle: where it began and how it ended both stay."""
    if len(text) <= limit:
        return text
    note = f"\n... ({len(text)} characters, middle left out) ...\n"
    half = max(0, (limit - len(note)) // 2)
    return text[:half] + note + text[len(text) - half:]


class Scrub(logging.Filter):
    """Caps the message and the traceback of every record."""

    def __init__(self, line_max: int = LINE_MAX, traceback_max: int = TRACEBACK_MAX) -> None:
        super().__init__()
        self.line_max = line_max
        self.traceback_max = traceback_max

    def clean(self, text: str) -> str:
        """The message as it may be written."""
        return cap(text, self.line_max)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call is reported by the handler, as usual
            return True
        clean = self.clean(text)
        if clean != text:
            record.__dict__.setdefault("log_template", record.msg)
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = cap_traceback(self.clean_traceback(record.exc_text), self.traceback_max)
        return True

    def clean_traceback(self, text: str) -> str:
        return text


@dataclass
class _Kind:
    since: float
    written: int = 1
    held: int = 0


class RateLimit(logging.Filter):
    """At most ``burst`` records of a kind per ``window_s``; the rest are counted (see the module doc)."""

    def __init__(self, *, burst: int = BURST, window_s: float = WINDOW_S, min_level: int = logging.WARNING,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self.min_level = min_level
        self.clock = clock
        self._kinds: dict[tuple[str, int, str], _Kind] = {}
        self._lock = threading.Lock()  # records come from every thread

    def filter(self, record: logging.LogRecord) -> bool:
        added = record.__dict__.pop("log_count_note", None)
        if added and isinstance(record.msg, str) and record.msg.endswith(added):
            record.msg = record.msg[:-len(added)]
        if record.levelno < self.min_level:
            return True
        template = record.__dict__.get("log_template", record.msg)
        kind = (record.name, record.levelno, template if isinstance(template, str) else repr(type(template)))
        now = self.clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen.since < self.window_s:
                if seen.written < self.burst:
                    seen.written += 1
                    return True
                seen.held += 1
                return False
            self._kinds[kind] = _Kind(now)
            if len(self._kinds) > KINDS_MAX:
                self._forget(now)
        if seen is not None and seen.held:
            note = f" (similar line repeated {seen.held} times in the last {now - seen.since:.0f} s)"
            record.msg = f"{record.msg}{note}"
            record.log_count_note = note
        return True

    def _forget(self, now: float) -> None:
        """Drop kinds whose window is over and that held nothing back, then the oldest."""
        for kind, seen in list(self._kinds.items()):
            if now - seen.since >= self.window_s and not seen.held:
                del self._kinds[kind]
        if len(self._kinds) > KINDS_MAX:
            for kind in sorted(self._kinds, key=lambda k: self._kinds[k].since)[:len(self._kinds) // 2]:
                del self._kinds[kind]


def install(handler: logging.Handler, *, rate_limit: bool = True,
            clock: Callable[[], float] = time.monotonic) -> None:
    """Put the filters on ``handler`` (once): ``Scrub``, then ``RateLimit`` if asked."""
    if any(isinstance(f, Scrub) for f in handler.filters):
        return
    handler.addFilter(Scrub())
    if rate_limit:
        handler.addFilter(RateLimit(clock=clock))
