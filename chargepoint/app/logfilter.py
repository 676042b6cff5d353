"""A station's log as a person on site needs it: one line per event, capped, repeats counted,
secrets masked at every level.

Two ``logging.Filter`` classes, installed on every handler that writes the log
(the root handlers set up by ``chargepoint run``, and the Recorder's, which
feeds ``chargepoint logs``):

``Scrub``
    masks secrets, then caps a line at ``LINE_MAX`` characters and a
    traceback at ``TRACEBACK_MAX``, so no payload, however large, is written
    whole. Masked (``Mask``): the credentials of an ``Authorization`` header
    (websockets logs the request headers at DEBUG); in a text that names a
    secret setting, the value given for it (``"<SecretName>": "..."``,
    ``<SecretName>=...``) and every ``value``/``attributeValue`` string
    (the key/value shape of OCPP payloads, as JSON or as a Python repr),
    also one cut short; the password of any URL that carries one
    (``ftp://user:password@host/...``, as a CSMS writes firmware and
    diagnostics locations; slashes escaped as JSON may write them too); and
    the data of a WebSocket frame as websockets logs it at DEBUG (the start
    and the end of the frame, which can hold a secret without its name): the
    OCPP layer logs frames itself. Masking a masked text changes nothing, so
    every handler may scrub the same record. The secret
    names are data (the OCPP versions' and the settings'); this module knows
    no protocol.
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
import re
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
#: What a masked secret reads as.
MASKED = "(redacted)"
#: Fields whose string value is masked in a text that names a secret (OCPP's key/value shapes).
VALUE_FIELDS = ("value", "attributeValue", "attribute_value")

#: A string as JSON or a Python repr writes it, also one cut short (it runs to the end).
_STRING = r"""(?:"(?:\\.|[^"\\])*"?|'(?:\\.|[^'\\])*'?)"""
#: A value already masked: matched whole, so masking it again leaves it as it is.
_MASKED = re.escape(MASKED)
_AUTHORIZATION = re.compile(
    rf"""(?i)(authorization['"]?\s*[:=,]\s*['"]?\s*(?:basic|bearer|digest)\s+)(?:{_MASKED}|[^\s'",)}}\]]+)""")
#: The password of a URL's user information: ``scheme://user:password@``, the scheme's slashes maybe
#: escaped (JSON). The password runs to the last ``@`` before the host; a backslash escapes a quote
#: in it (JSON, a Python repr), not a slash.
_URL_PASSWORD = re.compile(
    r"""(?i)(\b[a-z][a-z0-9+.-]*:(?:\\?/){2}[^\s/\\@:'"<>]*:)((?:\\[^/]|[^\s/\\'"<>])+)(?=@)""")
#: A data frame as websockets writes it in a DEBUG line: "< TEXT '[2, ...' [123 bytes]".
_WS_DATA_FRAME = re.compile(r"^([<>] (?:TEXT|BINARY|CONT)) .*( \[[^\]]*\])$", re.DOTALL)


def _quoted_mask(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{quote}{MASKED}{quote}"


class Mask:
    """Masks secrets in a text (see the module doc); ``names`` are the secret settings' names."""

    def __init__(self, names: tuple[str, ...] = (), value_fields: tuple[str, ...] = VALUE_FIELDS) -> None:
        self.names = tuple(dict.fromkeys(n for n in names if n))
        self._named = None
        if self.names:
            alternatives = "|".join(re.escape(n) for n in self.names)
            fields = "|".join(re.escape(f) for f in value_fields)
            self._named = re.compile(rf"(?i){alternatives}")
            self._named_value = re.compile(
                rf"""(?i)(\b(?:{alternatives})['"]?\s*[:=]\s*)({_STRING}|{_MASKED}|[^\s,;)}}\]'"]+)""")
            self._field_value = re.compile(rf"""(?i)(['"]?\b(?:{fields})['"]?\s*[:=]\s*)({_STRING})""")

    def __call__(self, text: str) -> str:
        text = _AUTHORIZATION.sub(lambda m: m.group(1) + MASKED, text)
        if "@" in text:
            text = _URL_PASSWORD.sub(lambda m: m.group(1) + MASKED, text)
        if self._named is not None and self._named.search(text):
            text = self._named_value.sub(_quoted_mask, text)
            text = self._field_value.sub(_quoted_mask, text)
        return text


def elide_ws_frame(text: str) -> str:
    """A websockets DEBUG line about a data frame, without the frame's data."""
    return _WS_DATA_FRAME.sub(r"\1 (data not shown)\2", text) if text[:2] in ("< ", "> ") else text


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
    """Masks secrets in, then caps, the message and the traceback of every record."""

    def __init__(self, secret_names: tuple[str, ...] = (), line_max: int = LINE_MAX,
                 traceback_max: int = TRACEBACK_MAX) -> None:
        super().__init__()
        self.mask = Mask(secret_names)
        self.line_max = line_max
        self.traceback_max = traceback_max

    def clean(self, text: str) -> str:
        """The message as it may be written."""
        return cap(self.mask(elide_ws_frame(text)), self.line_max)

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
        return self.mask(text)


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


def install(handler: logging.Handler, secret_names: tuple[str, ...] = (), *, rate_limit: bool = True,
            clock: Callable[[], float] = time.monotonic) -> None:
    """Put the filters on ``handler`` (once): ``Scrub``, then ``RateLimit`` if asked."""
    if any(isinstance(f, Scrub) for f in handler.filters):
        return
    handler.addFilter(Scrub(secret_names))
    if rate_limit:
        handler.addFilter(RateLimit(clock=clock))
