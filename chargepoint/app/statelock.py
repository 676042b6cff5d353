"""One daemon per state directory: an advisory lock on a file in it.

Two daemons started on one configuration run two stations on one database:
both drain the same outbox, so transaction messages go out twice and each
daemon deletes rows the other still counts on. The daemon therefore takes an
exclusive lock on ``chargepoint.lock`` in ``station.state_dir`` before it
opens the store and keeps it until it stops (a state directory made here is
0700, the lock file 0600, whatever the umask); a second daemon is refused at
start, before it has touched a file, with the pid of the first. The lock
(``flock``, why not a pid file) is ``chargepoint/process_lock.py``.
"""

from __future__ import annotations

from pathlib import Path

from chargepoint.app.filemodes import FILE_MODE, private_dir
from chargepoint.process_lock import LockHeld, ProcessLock

LOCK_NAME = "chargepoint.lock"


class StateLockError(Exception):
    """The state directory cannot be locked; says which and why."""


class StateDirLocked(StateLockError):
    """Another process holds the state directory; says which directory and which pid."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        self.state_dir = state_dir
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "a process whose pid is not yet written"
        super().__init__(f"state directory {state_dir} is in use by another chargepoint daemon ({holder}); "
                         "refusing to run a second station on the same state")


class StateLock:
    """The exclusive lock on one state directory, held from ``acquire`` to ``release``.

    Both are blocking file I/O (small): call them off the event loop.
    """

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.path = self.state_dir / LOCK_NAME
        self._lock = ProcessLock(self.path, FILE_MODE)

    @property
    def held(self) -> bool:
        return self._lock.held

    def acquire(self) -> None:
        """Take the lock or raise ``StateDirLocked`` at once (never waits for the holder).

        Any other failure (no such directory and no right to make it, a read-only
        file system) is a ``StateLockError`` naming the lock file.
        """
        try:
            private_dir(self.state_dir)  # 0700 when made here, whatever the umask (filemodes.py)
            self._lock.acquire()
        except LockHeld as held:
            raise StateDirLocked(self.state_dir, held.pid) from None
        except OSError as exc:
            raise StateLockError(f"{self.path}: cannot lock the state directory: {exc.strerror}") from exc

    def release(self) -> None:
        """Give the lock up; harmless when not held."""
        self._lock.release()
