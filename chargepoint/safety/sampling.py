"""What the safety loop reads of the pilot in one step: all of it, or only what decides a change.

A change of the EV's state (C -> B: the EV wants the contactor open) is acted
on after its confirming sample (the classifier's debounce). Every conversion
between the first sight of the change and that confirmation delays the
contactor, so the positive plateau is read first, and while it shows a change
being decided the loop reads nothing else: not the negative plateau, which only
the diode check needs, nor PP, which cannot change the decision. Both come
back at the next full step (the diode is judged on measured samples only). A
pilot that keeps flickering without settling still has its PP read at least
every ``PP_DEFER_STEPS + 1`` steps (45 ms at the 5 ms tick).
"""

from __future__ import annotations

from dataclasses import dataclass

from chargepoint.safety.iec61851 import PilotClassifier
from hal.interfaces import Pilot, PilotLevels

#: Steps in a row whose PP read may wait while a pilot change is decided.
PP_DEFER_STEPS = 8


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
        high_v = self._pilot.read_high_v()
        previous = self._previous
        changing = self._classifier.confirming or self._classifier.differs(high_v)
        if changing and previous is not None:
            levels, low_measured = PilotLevels(high_v, previous.low_v), False
        else:
            levels, low_measured = PilotLevels(high_v, self._pilot.read_low_v()), True
        self._previous = levels
        if changing and self._pp_deferred < PP_DEFER_STEPS:
            self._pp_deferred += 1
            return Sample(levels, low_measured, pp_read=False)
        self._pp_deferred = 0
        return Sample(levels, low_measured, pp_read=True, pp_ohms=self._pilot.read_proximity_ohms())
