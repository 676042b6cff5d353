"""systemd integration: readiness, the watchdog, and log levels for journald.

The service is ``Type=notify`` with ``WatchdogSec=``. The daemon says READY=1
once the hal, the state database and every safety loop run, and then sends
WATCHDOG=1 only while both of these are alive:

* the asyncio event loop: the pings are sent from a task on it, so a blocked
  loop sends none;
* every safety loop: each must have stepped recently
  (``EvseController.last_step_monotonic`` keeps changing).

A safety loop that stops stepping is declared hung once and for all: no ping
is sent again, the outputs of its connector are made safe where that is still
possible, and ``on_hang`` is told (the daemon stops with a failure). systemd
kills and restarts a service whose pings stop, and the restarted daemon drives
the contactor open before anything else.

The protocol is sd_notify(3): datagrams to the Unix socket named by
``NOTIFY_SOCKET`` (a path, or ``@name`` in the abstract namespace); the
interval comes from ``WATCHDOG_USEC`` (pings at half of it, as systemd
advises), for the process ``WATCHDOG_PID`` names if set. Without
``NOTIFY_SOCKET`` (not under systemd) nothing is sent, but hangs are still
detected. Sending never blocks the event loop: the socket is non-blocking and
a full queue drops the datagram.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from chargepoint.supervisor.notify import Notifier, watchdog_interval

log = logging.getLogger(__name__)

#: How often the liveness of the safety loops is looked at (seconds).
CHECK_S = 0.25
#: A safety loop that has not stepped for this long (real seconds) is hung.
STALE_S = 2.0


class SafetyLoop(Protocol):
    name: str

    @property
    def last_step_monotonic(self) -> float: ...


@dataclass
class _Liveness:
    value: float
    changed_at: float


class Watchdog:
    """Readiness and watchdog pings, gated on the event loop and the safety loops."""

    def __init__(self, loops: Sequence[SafetyLoop], *, notifier: Notifier | None = None,
                 interval_s: float | None = None, stale_s: float = STALE_S, check_s: float = CHECK_S,
                 on_hang: Callable[[SafetyLoop], None] | None = None,
                 env: Mapping[str, str] | None = None,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.loops = list(loops)
        self.notifier = notifier if notifier is not None else Notifier(env)
        self.interval_s = interval_s if interval_s is not None else watchdog_interval(env)
        self.stale_s = stale_s
        self.check_s = min(check_s, self.interval_s) if self.interval_s else check_s
        self.on_hang = on_hang
        self.monotonic = monotonic
        #: Why pings stopped for good (a hung safety loop), or None.
        self.failed: str | None = None
        self.pings = 0
        self.checks = 0
        now = monotonic()
        self._seen = {id(loop): _Liveness(loop.last_step_monotonic, now) for loop in self.loops}
        self._last_ping = float("-inf")

    def hung(self) -> list[SafetyLoop]:
        """The safety loops that have not stepped for ``stale_s``."""
        now = self.monotonic()
        hung = []
        for loop in self.loops:
            seen = self._seen[id(loop)]
            value = loop.last_step_monotonic
            if value != seen.value:
                seen.value, seen.changed_at = value, now
            elif now - seen.changed_at > self.stale_s:
                hung.append(loop)
        return hung

    async def ready(self, status: str = "", timeout_s: float = 5.0) -> bool:
        """READY=1 once every safety loop has stepped (bounded by ``timeout_s``)."""
        start = {id(loop): loop.last_step_monotonic for loop in self.loops}
        deadline = self.monotonic() + timeout_s
        while any(loop.last_step_monotonic == start[id(loop)] for loop in self.loops):
            if self.monotonic() > deadline:
                log.error("a safety loop has not stepped within %.0f s of start", timeout_s)
                return False
            await asyncio.sleep(0.01)
        self.notifier.send("READY=1", f"STATUS={status or 'running'}")
        if self.notifier.enabled:
            log.info("told systemd: ready%s", f", watchdog ping every {self.interval_s:g} s"
                     if self.interval_s else "")
        return True

    def check(self) -> None:
        """One look: declare hung safety loops, or ping when a ping is due."""
        self.checks += 1
        if self.failed is not None:
            return
        hung = self.hung()
        if hung:
            self._hung(hung)
        elif self.interval_s and self.monotonic() - self._last_ping >= self.interval_s:
            if self.notifier.send("WATCHDOG=1"):
                self.pings += 1
            self._last_ping = self.monotonic()

    async def run(self) -> None:
        """``check`` every ``check_s`` on the event loop: a blocked loop sends no ping."""
        while True:
            self.check()
            await asyncio.sleep(self.check_s)

    def _hung(self, hung: list[SafetyLoop]) -> None:
        names = ", ".join(loop.name for loop in hung)
        self.failed = f"safety loop {names} stopped stepping for more than {self.stale_s:g} s"
        log.critical("%s: watchdog pings stop; outputs made safe where possible", self.failed)
        self.notifier.send(f"STATUS={self.failed}")
        for loop in hung:
            if self.on_hang is not None:
                try:
                    self.on_hang(loop)
                except Exception:
                    log.exception("watchdog: handling the hung loop %s failed", loop.name)

    def stopping(self, status: str = "stopping") -> None:
        self.notifier.send("STOPPING=1", f"STATUS={status}")


# ------------------------------------------------------------------- journald
#: syslog priorities of the logging levels (sd-daemon(3) "<N>" prefixes).
PRIORITIES = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
              logging.CRITICAL: 2}


def stderr_is_journal(env: Mapping[str, str] | None = None, fd: int = 2) -> bool:
    """Whether stderr is connected to journald (JOURNAL_STREAM names its device:inode)."""
    env = os.environ if env is None else env
    stream = env.get("JOURNAL_STREAM", "")
    if not stream:
        return False
    try:
        st = os.fstat(fd)
    except OSError:
        return False
    return stream == f"{st.st_dev}:{st.st_ino}"


class JournalFormatter(logging.Formatter):
    """``<N>logger: message``: journald reads the level from the prefix and adds the time.

    Every line of a multi-line message (a traceback) gets the prefix, so the
    journal keeps its level.
    """

    def __init__(self) -> None:
        super().__init__("%(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        priority = PRIORITIES.get(record.levelno)
        if priority is None:
            priority = 7 if record.levelno < logging.INFO else 4 if record.levelno < logging.ERROR else 3
        return "\n".join(f"<{priority}>{line}" for line in text.splitlines())
