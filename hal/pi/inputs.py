"""Hard-wired fault inputs on a Raspberry Pi board: RCD/RCM trip and emergency stop.

Each input is a gpiozero ``DigitalInputDevice``. A trip is handled in
gpiozero's callback thread (lgpio's on a Pi): the registered callbacks (the
safety loop's, which opens the contactor and switches PWM off) are called
there at once, without waiting for any loop. The safety loop also polls
:meth:`PiFaultInputs.active` as a second line.

Trips latch like an RCD: an input stays reported until :meth:`reset` after
the condition has gone.

The RCM's self-test: an optional output wired to the RCM's test input. Before
each session the safety loop calls :meth:`PiFaultInputs.self_test`, which
pulses it and waits for the trip input to follow; a trip seen during the test
is expected and not reported, one that persists after the test is.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hal.pi.contactor import make_input

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputSpec:
    """One fault input: ``name`` as the safety loop knows it (``"rcd"``,
    ``"emergency_stop"``), its GPIO, which level means "tripped", and the pull."""

    name: str
    pin: int
    active_high: bool
    pull: str = "off"


@dataclass(frozen=True)
class SelfTestSpec:
    """The RCM test output and how long to wait for the trip and the recovery."""

    pin: int
    active_high: bool = True
    input_name: str = "rcd"
    timeout_s: float = 0.3
    recovery_s: float = 2.0


class PiFaultInputs:
    """``hal.interfaces.FaultInputs`` on GPIO."""

    def __init__(self, inputs: list[InputSpec], *, self_test: SelfTestSpec | None = None,
                 pin_factory: Any = None) -> None:
        from gpiozero import OutputDevice

        names = [spec.name for spec in inputs]
        if len(set(names)) != len(names):
            raise ValueError("fault input names must be unique")
        if self_test is not None and self_test.input_name not in names:
            raise ValueError(f"self-test input {self_test.input_name!r} is not one of the inputs")
        self._lock = threading.Lock()
        self._latched: set[str] = set()
        self._callbacks: list[Callable[[str], None]] = []
        self._devices: dict[str, Any] = {}
        self._testing: str | None = None
        self._test_seen = threading.Event()
        self._test_spec = self_test
        self._test_out: Any = None
        self.trips = 0
        """Trips reported (not counting the expected ones during a self-test)."""
        try:
            for spec in inputs:
                device = make_input(spec.pin, active_high=spec.active_high, pull=spec.pull,
                                    pin_factory=pin_factory)
                self._devices[spec.name] = device
                device.when_activated = self._handler(spec.name)
            if self_test is not None:
                self._test_out = OutputDevice(self_test.pin, active_high=self_test.active_high,
                                              initial_value=False, pin_factory=pin_factory)
        except Exception:
            self.close()
            raise

    def _handler(self, name: str) -> Callable[[], None]:
        def tripped() -> None:
            self._tripped(name)
        return tripped

    def _tripped(self, name: str) -> None:
        """In gpiozero's callback thread: latch and tell the safety loop at once."""
        with self._lock:
            if self._testing == name:
                self._test_seen.set()
                return
            self._latched.add(name)
            self.trips += 1
            callbacks = list(self._callbacks)
        log.error("fault input %s tripped", name)
        for callback in callbacks:
            try:
                callback(name)
            except Exception:
                log.exception("trip callback failed for %s", name)

    # -- FaultInputs -------------------------------------------------------------------------

    def active(self) -> frozenset[str]:
        with self._lock:
            testing = self._testing
            present = {name for name, device in self._devices.items()
                       if device.is_active and name != testing}
            return frozenset(present | self._latched)

    def on_trip(self, callback: Callable[[str], None]) -> None:
        with self._lock:
            self._callbacks.append(callback)

    def reset(self) -> None:
        """Re-arm the latches; an input still active stays reported by :meth:`active`."""
        with self._lock:
            self._latched.clear()

    def self_test(self) -> bool:
        """Pulse the RCM's test input; True if its trip output followed.

        Blocks for the RCM's reaction (tens of ms) and its recovery, bounded by
        the configured timeouts. Without a test output, True at once.
        """
        spec = self._test_spec
        if spec is None or self._test_out is None:
            return True
        device = self._devices[spec.input_name]
        with self._lock:
            if device.is_active or spec.input_name in self._latched:
                log.error("RCM self-test impossible: %s already active", spec.input_name)
                return False
            self._testing = spec.input_name
            self._test_seen.clear()
        try:
            self._test_out.on()
            seen = self._test_seen.wait(spec.timeout_s) or bool(device.is_active)
        finally:
            self._test_out.off()
        deadline = time.monotonic() + spec.recovery_s
        while device.is_active and time.monotonic() < deadline:
            time.sleep(0.005)
        with self._lock:
            self._testing = None
        if device.is_active:
            log.error("RCM still tripped %.1f s after its self-test", spec.recovery_s)
            self._tripped(spec.input_name)
            return False
        if not seen:
            log.error("RCM self-test failed: no trip within %.2f s of the test pulse", spec.timeout_s)
        return seen

    def close(self) -> None:
        for device in list(self._devices.values()):
            device.close()
        self._devices.clear()
        if self._test_out is not None:
            self._test_out.close()
            self._test_out = None
