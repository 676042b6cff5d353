"""A technician's output test: the one time the contactor may click without an EV.

``chargepoint relay test`` and ``pilot test`` (and the board bring-up tool)
drive the contactor or the pilot to check the wiring. The safety loop applies
such a request itself, step by step, and only while the pilot reads state A,
nothing is faulted and the station has not given permission to charge; the
moment any of that changes, or the hold time passes, the test ends and the
outputs go safe. This module holds the request and the rule; the loop holds
the lock and the outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Set
from dataclasses import dataclass
from typing import Any

from chargepoint.safety.iec61851 import CpState

log = logging.getLogger(__name__)

#: Longest a technician's output test may hold the contactor or pilot.
OUTPUT_TEST_MAX_S = 10.0


@dataclass(frozen=True)
class OutputTest:
    """What a running test drives (None: unchanged) and until when (monotonic seconds)."""

    contactor: bool | None
    duty: float | None
    until: float

    def describe(self) -> str:
        contactor = {None: "unchanged", True: "closed", False: "open"}[self.contactor]
        pilot = "unchanged" if self.duty is None else f"{self.duty:g} %"
        return f"contactor {contactor}, pilot {pilot}"


def check_request(duty: float | None) -> str | None:
    """Why a requested duty cannot be driven, or None."""
    if duty is not None and not 0.0 < duty <= 100.0:
        return f"duty must be above 0 and at most 100 %, not {duty:g}"
    return None


def refusal(cp_state: CpState | None, faults: Set[object], allowed: bool) -> str | None:
    """Why an output test may not run (or go on) now, or None."""
    if cp_state is not CpState.A:
        return "an output test needs state A (no EV connected)"
    if faults:
        return "faulted: " + ", ".join(sorted(str(getattr(f, "value", f)) for f in faults))
    if allowed:
        return "the station has given permission to charge"
    return None


def drive(test: OutputTest | None, now: float, cp_state: CpState | None, faults: Set[object], allowed: bool,
          out: Any, name: str) -> OutputTest | None:
    """Apply a running test to the outputs (under the loop's lock); None once it is over, because
    the rule no longer holds (said as a warning) or its hold time has passed."""
    if test is None:
        return None
    why = refusal(cp_state, faults, allowed)
    if why or now > test.until:
        log.log(logging.WARNING if why else logging.INFO, "%s: output test ended (%s)", name,
                why or "hold time over")
        return None
    if test.duty is not None:
        out.set_pwm(test.duty, 0.0, now)
    if test.contactor is not None:
        out.set_contactor(test.contactor, now)
    return test
