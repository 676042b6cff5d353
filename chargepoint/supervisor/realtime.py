"""Real time for the supervisor: FIFO scheduling, locked memory, a garbage collector kept out of steps.

On a station the unit grants SCHED_FIFO (``CPUSchedulingPolicy=fifo``) and a
memory-lock limit; here the process locks its memory (``mlockall``) so a page
fault never delays a step, freezes what start-up allocated (``gc.freeze``) and
turns the automatic collector off. Garbage is then collected by the first
safety loop's thread between its steps, a young generation at a time, and
only when enough has piled up: a collection never lands inside a step, and
each one is timed for the status. What was granted is reported, never
assumed: a laptop or CI runs the same code without FIFO or the lock.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
import os
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

MCL_CURRENT, MCL_FUTURE = 1, 2
#: Young objects after which a collection runs between two steps.
GC_YOUNG_THRESHOLD = 2000
#: Every this many young collections, one of the middle generation too; every this many of those,
#: a full one (what survives two collections ends up in the oldest generation, and cyclic garbage
#: there would otherwise never be freed: a slow leak of locked memory over months). What start-up
#: made is frozen, so a full collection scans only what came since.
GC_MIDDLE_EVERY = 10
GC_FULL_EVERY = 10


def scheduling_policy() -> str:
    """The policy the process runs under: "fifo", "rr" or "other"."""
    try:
        policy = os.sched_getscheduler(0)
    except OSError:
        return "unknown"
    return {os.SCHED_FIFO: "fifo", os.SCHED_RR: "rr"}.get(policy, "other")


def lock_memory() -> str | None:
    """mlockall(MCL_CURRENT | MCL_FUTURE); None on success, else why not (e.g. the limit is too low)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if libc.mlockall(MCL_CURRENT | MCL_FUTURE) == 0:
            return None
        return os.strerror(ctypes.get_errno())
    except (OSError, AttributeError) as exc:
        return str(exc)


@dataclass
class GarbagePolicy:
    """Collects between steps (``between_steps``), timed."""

    collections: int = 0
    longest_s: float = 0.0
    _young: int = field(default=0, repr=False)

    def start(self) -> None:
        """After start-up: what exists now is never scanned again, and nothing collects by itself."""
        gc.collect()
        gc.freeze()
        gc.disable()

    def between_steps(self) -> None:
        if gc.get_count()[0] < GC_YOUNG_THRESHOLD:
            return
        started = time.perf_counter()
        self._young += 1
        generation = 0
        if self._young % GC_MIDDLE_EVERY == 0:
            generation = 2 if self._young % (GC_MIDDLE_EVERY * GC_FULL_EVERY) == 0 else 1
        gc.collect(generation)
        took = time.perf_counter() - started
        self.collections += 1
        self.longest_s = max(self.longest_s, took)
