"""The residual current device's part of the safety loop: the self-test before a session and reclosing.

Before each session (after plug-in, before the contactor first closes) the RCD
must show that it trips on its test input; a failed test is an RCD fault. After
a trip, the configuration decides whether the loop may reset the RCD by itself
(some countries forbid automatic reclosing): ``rcd_auto_reclose_attempts``
tries, each ``rcd_reclose_delay_s`` after the last trip, and none once used up
until the EV is unplugged or a technician clears the fault.
"""

from __future__ import annotations

import logging

from hal.interfaces import FaultInputs

#: The loop's own logger: a reclose is the loop's event, and its lines keep that source.
log = logging.getLogger("chargepoint.safety.evse")


class RcdPolicy:
    """Per-session RCD state of one safety loop (used under the loop's lock)."""

    def __init__(self, auto_reclose_attempts: int, reclose_delay_s: float, now: float) -> None:
        self.auto_reclose_attempts = auto_reclose_attempts
        self.reclose_delay_s = reclose_delay_s
        #: The self-test passed since the EV was plugged in.
        self.self_tested = False
        self.tripped_at = now
        self.reclose_attempts = 0

    def new_session(self, rcd_faulted: bool) -> None:
        """The EV was unplugged: the next one needs its own self-test."""
        self.self_tested = False
        if not rcd_faulted:
            self.reclose_attempts = 0

    def tripped(self, now: float) -> None:
        self.tripped_at = now

    def cleared(self) -> None:
        """A technician cleared the faults: the reclose budget starts again."""
        self.reclose_attempts = 0

    def may_reclose(self, now: float) -> bool:
        """Whether to try an automatic reclose now (counts the attempt)."""
        if self.reclose_attempts >= self.auto_reclose_attempts:
            return False
        if now - self.tripped_at < self.reclose_delay_s:
            return False
        self.reclose_attempts += 1
        return True

    def try_reclose(self, inputs: FaultInputs, now: float, name: str) -> bool:
        """Re-arm the RCD if an automatic reclose is due; True if it then stays healthy."""
        if not self.may_reclose(now):
            return False
        inputs.reset()
        if "rcd" in inputs.active():
            log.warning("%s: RCD reclose attempt %d failed", name, self.reclose_attempts)
            self.tripped(now)
            return False
        log.warning("%s: RCD reclosed automatically (attempt %d of %d)", name, self.reclose_attempts,
                    self.auto_reclose_attempts)
        return True
