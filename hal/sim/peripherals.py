"""The simulated peripherals with no physics: fault inputs, card reader, plug lock.

Split from :mod:`hal.sim.world` because nothing here depends on the pilot, the
current or the clock: these are small state machines that tests and the demo
drive by hand (trip an RCD, tap a card, jam a lock). They share the world's
re-entrant lock, which :class:`hal.sim.world.SimWorld` passes in, so that they stay
consistent with the rest of the simulation; callbacks run outside that lock.
Import them from :mod:`hal.sim.world`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class SimFaultInputs:
    """Fault inputs that trip on demand.

    A trip latches, as an RCD does: the fault stays active after the condition
    is gone (:meth:`release`) until :meth:`reset` re-arms it. These are signals
    only; opening the contactor is the controller's job.
    """

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._present: set[str] = set()
        self._latched: set[str] = set()
        self._callbacks: list[Callable[[str], None]] = []
        self.self_test_passes = True
        """Set False to simulate an RCD that no longer responds to its test pulse."""

    def active(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._present | self._latched)

    def present(self) -> frozenset[str]:
        """The conditions still there (held), as opposed to latched after they passed."""
        with self._lock:
            return frozenset(self._present)

    def on_trip(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def self_test(self) -> bool:
        return self.self_test_passes

    def reset(self) -> None:
        """Re-arm the latches; a condition still present stays active."""
        with self._lock:
            self._latched.clear()

    def trip(self, name: str = "rcd") -> None:
        """Make fault ``name`` present and latch it.

        On the edge (the fault was not active) every registered callback is
        called synchronously in the caller's thread, outside the world's lock.
        """
        with self._lock:
            edge = name not in self._present and name not in self._latched
            self._present.add(name)
            self._latched.add(name)
            callbacks = list(self._callbacks)
        if edge:
            for callback in callbacks:
                callback(name)

    def release(self, name: str) -> None:
        """The condition behind ``name`` is gone; the latch holds until reset."""
        with self._lock:
            self._present.discard(name)


class SimCardReader:
    """A card reader on which tests and the demo present cards with :meth:`tap`."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._callback: Callable[[str], None] | None = None

    def start(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            self._callback = callback

    def close(self) -> None:
        with self._lock:
            self._callback = None

    def tap(self, id_tag: str) -> None:
        """Present a card: calls the callback in the caller's thread if started."""
        with self._lock:
            callback = self._callback
        if callback is not None:
            callback(id_tag)


class SimConnectorLock:
    """The plug lock of a socket outlet; ``jam()`` makes it stop moving."""

    def __init__(self, lock: threading.RLock) -> None:
        self._lock = lock
        self._locked = False
        self._jammed = False

    def set_locked(self, locked: bool) -> bool:
        with self._lock:
            if not self._jammed:
                self._locked = locked
            return self._locked == locked

    def locked(self) -> bool:
        with self._lock:
            return self._locked

    def jam(self) -> None:
        """The actuator stays where it is from now on (a broken lock motor)."""
        with self._lock:
            self._jammed = True
