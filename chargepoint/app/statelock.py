"""One daemon per state directory: an advisory lock on a file in it.

Two daemons started on one configuration run two stations on one database:
both drain the same outbox, so transaction messages go out twice and each
daemon deletes rows the other still counts on. The daemon therefore takes an
exclusive ``flock`` on ``chargepoint.lock`` in ``station.state_dir`` before it
opens the store and keeps it until it stops (a state directory made here is
0700, the lock file 0600, whatever the umask); a second daemon is refused at
start, before it has touched a file, with the pid of the first.

``flock`` and not a pid file: the kernel drops the lock when the process dies,
however it dies (SIGKILL, power cut, OOM), so a stale lock cannot stop a
station from coming back. The pid written into the file is only for the
message. The file is never deleted: deleting it would let a third daemon lock
a new file while a second still holds the old, unlinked one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from chargepoint.app.filemodes import FILE_MODE, private_dir

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
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``StateDirLocked`` at once (never waits for the holder).

        Any other failure (no such directory and no right to make it, a read-only
        file system) is a ``StateLockError`` naming the lock file.
        """
        if self._fd is not None:
            return
        try:
            private_dir(self.state_dir)  # 0700 when made here, whatever the umask (filemodes.py)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
        except OSError as exc:
            raise StateLockError(f"{self.path}: cannot lock the state directory: {exc.strerror}") from exc
        with contextlib.suppress(OSError):
            os.fchmod(fd, FILE_MODE)  # O_CREAT's mode passes through the umask; an older file had 0644
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise StateDirLocked(self.state_dir, pid) from None
        except OSError as exc:
            os.close(fd)
            raise StateLockError(f"{self.path}: cannot lock the state directory: {exc.strerror}") from exc
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (closing the file is what releases it); harmless when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # no pid of a process that no longer holds the lock
        finally:
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    """The holder's pid from the lock file; None in the moment before the holder wrote it."""
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
