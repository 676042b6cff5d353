"""The daemon's own log file in the state directory: what diagnostics uploads, journald or not.

journald may not be there (a container, a station whose journal is volatile),
and the diagnostics archive needs the log of a time window the CSMS names. So
the daemon also writes its log (INFO and up, masked and capped like every
other line, see ``logfilter``) to ``<state_dir>/logs/chargepoint.log``, bounded:
rotated at ``max_bytes`` with ``backups`` older files kept (``.1`` the newest
of them), its directory 0700 and its files 0600 whatever the umask (they hold
card ids). Each line begins with its UTC time to the millisecond, which is how
``core/diagnostics.py`` picks the window. Records are written by a listener
thread (a queue between), so the event loop never waits for the disk; a
failing disk loses log lines, not the station.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import pathlib
import queue
import time
from typing import TextIO

from chargepoint.app import logfilter
from chargepoint.app.filemodes import FILE_MODE, private_dir

#: Where the log goes inside the state directory.
LOG_FILE = pathlib.Path("logs") / "chargepoint.log"


class _UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{stamp}.{int(record.msecs):03d}Z"


class _FileHandler(logging.handlers.RotatingFileHandler):
    """A rotating file that fails quietly: a full or read-only disk costs log lines, counted, and
    prints no traceback (the journal and the status say what is wrong with the disk)."""

    dropped = 0

    def _open(self) -> TextIO:
        """The file, for its user only: made 0600, and made so if an older release left it readable."""
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, FILE_MODE)
        try:
            with contextlib.suppress(OSError):
                os.fchmod(fd, FILE_MODE)
            return open(fd, self.mode, encoding=self.encoding, errors=self.errors)  # noqa: SIM115
        except BaseException:
            os.close(fd)
            raise

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802
        self.dropped += 1

    def close(self) -> None:
        try:
            super().close()
        except OSError:
            self.dropped += 1  # the last flush could not be written


class LogFile:
    """A bounded, rotating log file, written off the event loop."""

    def __init__(self, state_dir: str, *, max_bytes: int, backups: int, secret_names: tuple[str, ...] = (),
                 level: int = logging.INFO) -> None:
        self.path = pathlib.Path(state_dir) / LOG_FILE
        self.max_bytes = max_bytes
        self.backups = backups
        self.secret_names = secret_names
        self.level = level
        self._handler: logging.Handler | None = None
        self._listener: logging.handlers.QueueListener | None = None
        self._file: logging.Handler | None = None

    def attach(self) -> None:
        """Start writing the root logger's records (call once, before the station starts)."""
        private_dir(self.path.parent)
        for old in self.files():  # older files as a release before this one left them
            with contextlib.suppress(OSError):
                old.chmod(FILE_MODE)
        file = _FileHandler(self.path, maxBytes=self.max_bytes, backupCount=self.backups, encoding="utf-8",
                            delay=True)
        file.setFormatter(_UtcFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logfilter.install(file, self.secret_names)
        records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        handler = logging.handlers.QueueHandler(records)
        handler.setLevel(self.level)
        self._listener = logging.handlers.QueueListener(records, file, respect_handler_level=False)
        self._listener.start()
        self._file, self._handler = file, handler
        logging.getLogger().addHandler(handler)

    def detach(self) -> None:
        """Stop: the records queued so far are written first."""
        if self._handler is not None:
            logging.getLogger().removeHandler(self._handler)
            self._handler = None
        if self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def files(self) -> list[pathlib.Path]:
        """The log files, oldest first."""
        olds = [self.path.with_name(f"{self.path.name}.{n}") for n in range(self.backups, 0, -1)]
        return [p for p in [*olds, self.path] if p.exists()]
