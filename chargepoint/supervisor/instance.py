"""One supervisor per channel: the lock on ``<channel>.lock``, taken before any output.

A second supervisor on the same configuration (a technician's ``chargepoint
supervise`` beside the service, or a daemon that started one on demand while
the first was slow to answer) must leave everything as it is. Found only when
it came to listen, it would already have built the hardware, whose safe start
opens the contactor under a charging car, and on the simulation a second world
would write the same meter register file. So the claim comes first, before the
hardware is built; the one that loses says which process holds the channel and
exits having touched nothing. The lock itself: ``chargepoint/process_lock.py``.
"""

from __future__ import annotations

from pathlib import Path

from chargepoint.process_lock import LockHeld, ProcessLock

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
        self._lock = ProcessLock(Path(channel + LOCK_SUFFIX), 0o644)

    def acquire(self) -> None:
        """Take the claim, or raise ``ChannelTaken`` at once; any other failure (no right to make
        the file) is an OSError naming it."""
        self._lock.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except LockHeld as held:
            raise ChannelTaken(self.channel, held.pid) from None

    def release(self) -> None:
        self._lock.release()
