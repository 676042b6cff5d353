"""A logging handler that keeps what it would write, for tests that look at the log as written."""

from __future__ import annotations

import logging


class Lines(logging.Handler):
    """Keeps each record as the daemon's handlers would write it (tracebacks included)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))

    def text(self) -> str:
        return "\n".join(self.lines)
