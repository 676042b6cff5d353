"""What the safety loop reads of the pilot in one step: all of it, or only what decides a change.

A change of the EV's state (C -> B: the EV wants the contactor open) is acted
on after its confirming sample (the classifier's debounce). Every conversion
between the first sight of the change and that confirmation delays the
contactor, so while a change is being decided the loop reads only what decides
it: the confirming step reads the positive plateau alone (one conversion where
a full read makes two), and neither step re-reads PP, which cannot change the
decision. The negative plateau (the diode check) and PP come back at the next
full step. A pilot that keeps flickering without settling still has its PP read
at least every ``PP_DEFER_STEPS + 1`` steps.
"""

from __future__ import annotations

from dataclasses import dataclass

from chargepoint.safety.iec61851 import PilotClassifier
from hal.interfaces import Pilot, PilotLevels

#: Steps in a row whose PP read may wait while a pilot change is decided.
PP_DEFER_STEPS = 4


@dataclass(frozen=True)
class Sample:
    """One step's readings of the pilot."""

    levels: PilotLevels
    #: ``levels.low_v`` was measured in this step (else it is the previous step's and the diode
    #: is judged at the next full read, not twice on one sample).
    low_measured: bool
    #: PP was read in this step (``pp_ohms`` is this step's reading).
    pp_read: bool
    pp_ohms: float | None = None


class PilotSampler:
    """Chooses and makes one step's pilot reads (see the module's description)."""

    def __init__(self, pilot: Pilot, classifier: PilotClassifier) -> None:
        self._pilot = pilot
        self._classifier = classifier
        self._previous: PilotLevels | None = None
        self._pp_deferred = 0

    def sample(self) -> Sample:
        previous = self._previous
        quick = self._classifier.confirming and previous is not None
        if quick and previous is not None:
            levels = PilotLevels(self._pilot.read_high_v(), previous.low_v)
        else:
            levels = self._pilot.read()
        self._previous = levels
        changing = quick or self._classifier.differs(levels.high_v)
        if changing and self._pp_deferred < PP_DEFER_STEPS:
            self._pp_deferred += 1
            return Sample(levels, low_measured=not quick, pp_read=False)
        self._pp_deferred = 0
        return Sample(levels, low_measured=not quick, pp_read=True,
                      pp_ohms=self._pilot.read_proximity_ohms())
