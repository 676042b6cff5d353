"""One process per resource: an exclusive ``flock`` on a file that names its holder.

The daemon holds its state directory this way (``app/statelock.py``) and the
safety supervisor its channel (``supervisor/instance.py``); each turns a refusal
into its own message. ``flock`` and not a pid file: the kernel drops the lock
when the process dies, however it dies (SIGKILL, power cut, OOM), so a stale
lock never keeps a process from starting. The pid written into the file is only
for the message. The file is never deleted: deleting it would let a third
process lock a new file while a second still holds the old, unlinked one.

Small, blocking file I/O: call it off an event loop. Outside the layers on
purpose: it imports nothing of the project, and both processes use it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path


class LockHeld(Exception):
    """Another process holds the lock; ``pid`` is its pid (None in the moment before it wrote it)."""

    def __init__(self, path: Path, pid: int | None) -> None:
        super().__init__(f"{path} is locked by {'pid ' + str(pid) if pid is not None else 'another process'}")
        self.path = path
        self.pid = pid


class ProcessLock:
    """The exclusive lock on one file, held from ``acquire`` to ``release`` (or the process's end)."""

    def __init__(self, path: Path, mode: int) -> None:
        self.path = path
        self.mode = mode
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``LockHeld`` at once (never waits for the holder); any other
        failure (no right to make the file, a read-only file system) is the OSError itself."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, self.mode)
        with contextlib.suppress(OSError):
            os.fchmod(fd, self.mode)  # O_CREAT's mode passes through the umask; an older file kept its own
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise LockHeld(self.path, pid) from None
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
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
