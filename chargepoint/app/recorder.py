"""Recent events and OCPP frames, for ``chargepoint logs`` and the status's last errors.

Events come from a logging handler on the root logger (INFO and above); frames
from a thin wrapper around the CSMS connection that sees every text frame in
and out. Both are kept in one bounded ring, numbered, so a client can ask for
what came after the last entry it saw. Events and frames are masked like every
line of the log (``logfilter``): a frame that names a password setting has its
values redacted before it is kept.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from chargepoint.app import logfilter
from chargepoint.core.settings import DEFINITIONS

#: Events and frames kept for ``logs``.
RECORD_ENTRIES = 1000
#: Longest frame text kept (characters).
FRAME_TEXT_MAX = 4000


class Recorder:
    """Recent events (log records) and OCPP frames, for ``chargepoint logs``.

    Events come from a logging handler on the root logger (INFO and above);
    frames from a thin wrapper around the CSMS connection that sees every text
    frame in and out. Both are kept in one bounded ring, numbered, so a client
    can ask for what came after the last entry it saw.
    """

    def __init__(self, maxlen: int = RECORD_ENTRIES, secret_names: tuple[str, ...] = ()) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        #: Names whose value a frame or an event must not show (the version's password keys and
        #: variables, and the settings marked secret).
        self.secret_names = (*secret_names, *(d.name for d in DEFINITIONS if d.secret))
        self._mask = logfilter.Mask(self.secret_names)
        self._seq = 0
        self._lock = threading.Lock()  # events come from every thread (the safety loops log too)
        self._handler = _RecordHandler(self)
        #: Also given every frame as it passes, unmasked (the metrics' message counter).
        self.frame_listeners: list[Callable[[str, str | bytes], None]] = []
        # Masked and capped like every other handler's lines; not rate-limited: ``last_error``
        # must show the newest warning, and the ring is bounded anyway.
        logfilter.install(self._handler, self.secret_names, rate_limit=False)

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self.entries.append(entry)

    @property
    def last_seq(self) -> int:
        return self._seq

    def frame(self, direction: str, text: str | bytes) -> None:
        for listener in self.frame_listeners:
            listener(direction, text)
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        text = self._mask(text)
        if len(text) > FRAME_TEXT_MAX:
            text = text[:FRAME_TEXT_MAX] + "..."
        self.add({"time": time.time(), "kind": "frame", "direction": direction, "text": text})

    def tap(self, ws: Any) -> Any:
        """The connection as the OCPP adapter should use it: frames are recorded."""
        return _FrameTap(ws, self)

    def attach(self) -> None:
        logging.getLogger().addHandler(self._handler)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self._handler)

    def select(self, *, kind: str = "all", since: int = 0, limit: int = 50,
               min_level: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self.entries)
        chosen = [e for e in entries
                  if e["seq"] > since and (kind == "all" or e["kind"] + "s" == kind)
                  and (e["kind"] != "event" or e["levelno"] >= min_level)]
        return chosen[-limit:] if limit > 0 else chosen

    def last_error(self, prefix: str) -> str | None:
        """The newest warning or error logged by a logger under ``prefix``."""
        with self._lock:
            entries = list(self.entries)
        for entry in reversed(entries):
            if entry["kind"] == "event" and entry["levelno"] >= logging.WARNING \
                    and entry["source"].startswith(prefix):
                return str(entry["text"])
        return None


class _RecordHandler(logging.Handler):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.INFO)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not break logging
            text = str(record.msg)
        self.recorder.add({"time": record.created, "kind": "event", "level": record.levelname,
                           "levelno": record.levelno, "source": record.name, "text": text})


class _FrameTap:
    """Passes a websocket connection through, recording the frames."""

    def __init__(self, ws: Any, recorder: Recorder) -> None:
        self._ws = ws
        self._recorder = recorder

    async def recv(self, *args: Any, **kwargs: Any) -> Any:
        message = await self._ws.recv(*args, **kwargs)
        self._recorder.frame("in", message)
        return message

    async def send(self, message: Any, *args: Any, **kwargs: Any) -> Any:
        self._recorder.frame("out", message)
        return await self._ws.send(message, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)
