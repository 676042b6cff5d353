"""One supervisor per channel: an exclusive ``flock`` on ``<channel>.lock``, taken before any output.

A second supervisor on the same configuration (a technician's ``chargepoint
supervise`` beside the service, or a daemon that started one on demand while
the first was slow to answer) must leave everything as it is. Found only when
it came to listen, it would already have built the hardware, whose safe start
opens the contactor under a charging car, and on the simulation a second world
would write the same meter register file. So the claim comes first, before the
hardware is built; the one that loses says which process holds the channel and
exits having touched nothing.

``flock`` and not a pid file: the kernel drops the lock when the process dies,
however it dies, so a stale lock never keeps a supervisor from starting. The
pid in the file is for the message only. The file is never deleted: deleting it
would let a third supervisor lock a new file while a second holds the old one.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

LOCK_SUFFIX = ".lock"


class ChannelTaken(OSError):
    """Another supervisor holds the channel; names the channel and the holder's pid."""

    def __init__(self, channel: str, pid: int | None) -> None:
        holder = f"pid {pid}" if pid is not None else "a process that has not yet written its pid"
        super().__init__(f"another supervisor ({holder}) already runs on {channel}; this one leaves "
                         "the outputs to it and exits")


class ChannelClaim:
    """The channel held from ``acquire`` until ``release`` (or until the process ends)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.path = Path(channel + LOCK_SUFFIX)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the claim, or raise ``ChannelTaken`` at once (never waits for the holder); any
        other failure (no right to make the file) is an OSError naming it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _holder(fd)
            os.close(fd)
            raise ChannelTaken(self.channel, pid) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the claim up (closing the file releases the lock); harmless when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        os.close(fd)


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
