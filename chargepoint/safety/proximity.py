"""The proximity pilot (PP) as the safety loop reads it: the cable's rating, and a plug on its way out.

A plug's PP contact breaks before its CP contact, so PP reading open while the
pilot still shows an EV is a plug being pulled: energy stops at once, but it is
an unplug, not a fault (the CSMS is not told Faulted on every departure). Only
if it lasts is the cable broken (no PP resistor): then it is a fault.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from chargepoint.safety.iec61851 import CpState, ProximityError, cable_ampacity
from chargepoint.safety.status import PLUGGED

#: How long PP may read open while the pilot still shows an EV before it is a
#: fault (a cable without its PP resistor) rather than a plug being pulled out.
CABLE_LEAVING_S = 2.0


@dataclass(frozen=True)
class ProximityVerdict:
    #: The cable's current rating (None: tethered, no PP, or unreadable).
    cable_a: float | None
    #: True: a PP fault now; False: any PP fault is over; None: leave it as it is.
    fault: bool | None
    #: The plug is being pulled out: stop energy now.
    leaving: bool


class ProximityWatch:
    """Judges each PP reading against the pilot state (one per safety loop, under its lock)."""

    def __init__(self) -> None:
        self._leaving = False
        self._leaving_since = 0.0

    def check(self, state: CpState | None, ohms: float | None, now: float) -> ProximityVerdict:
        leaving = ohms is not None and math.isinf(ohms) and state in PLUGGED
        if leaving and not self._leaving:
            self._leaving_since = now
        self._leaving = leaving
        try:
            cable_a: float | None = cable_ampacity(ohms)
            valid = True
        except ProximityError:
            cable_a, valid = None, False
        if leaving and now - self._leaving_since > CABLE_LEAVING_S:
            return ProximityVerdict(cable_a, True, leaving)
        # With no EV an empty socket reads open: normal, and the end of any PP fault.
        if state is CpState.A or leaving or (valid and state is CpState.B):
            return ProximityVerdict(cable_a, False, leaving)
        return ProximityVerdict(cable_a, None if valid else True, leaving)
