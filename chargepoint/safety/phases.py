"""Switching between one and three phases: the safety loop's side of the phase contactor.

A station with a second contactor (KM2, hardware.md "Phase switching: KM2") can
give the EV one phase or three. Solar charging wants that: an EV needs at least
6 A per phase, so three phases start at about 4.1 kW and one at about 1.4 kW.
The daemon's energy policy decides *how many*; this module decides *when* the
contactor may move, and it alone drives it.

The rules, carried out step by step by the safety loop (``EvseController``):

1. A request (``request``) only sets the target; nothing switches at once.
2. While the target differs from the phases in use, the EV is paused: the pilot
   goes to a steady +12 V (100 %, "not allowed to charge"). KM1 then opens by the
   loop's own rules: on the EV's C -> B, or ``pwm_off_contactor_timeout_s`` (6 s)
   after the PWM went off if the EV stays in C.
3. KM2 moves only when KM1 is commanded open, its auxiliary contact (if wired)
   shows open, and the pilot has been at 100 % and KM1 open for at least
   ``before_s`` (3 s), on top of the EV's own answer to the pilot (its C -> B):
   its charger has stopped and sees a supply that is off, not one that flickers.
4. After the switch the pilot stays at 100 % for ``after_s`` (3 s) more, so KM2
   has settled and the EV sees a pause long enough to wake its charger again on
   the new supply (cars that get the new phases under a running PWM may refuse
   to charge until replugged). Then the loop offers current again and KM1 closes
   on the EV's B -> C as at any start.
5. A fault at any point releases KM2 (one phase, the de-energised state) once
   KM1 is open (``km1_release_s`` after its command, and its auxiliary contact
   showing open); the target stays, and the switch starts over with its pauses
   once the fault is gone. So KM2 never moves with KM1 closed, not even in a
   fault; only a shutdown of the loop (``close``) or a power cut drops both at once.

With no phase contactor configured, requests are refused with the reason and the
loop is unchanged. Everything here runs under the controller's lock, on its
injected clock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from chargepoint.safety.outputs import PWM_OFF, Outputs
from hal.interfaces import PhaseContactor

log = logging.getLogger(__name__)

#: Phases the hardware can give: KM2 released, KM2 energised.
ONE, THREE = 1, 3


@dataclass(frozen=True)
class PhaseTiming:
    """The pauses around a switch (module docstring, rules 3 and 4)."""

    #: KM1 open and the pilot at 100 % for at least this long before KM2 moves.
    before_s: float = 3.0
    #: The pilot stays at 100 % this long after KM2 moved.
    after_s: float = 3.0
    #: After a fault, KM2 is released this long after KM1 was commanded open (and once KM1's auxiliary
    #: contact, if wired, shows open): KM1's opening time with its suppressor is well inside it.
    km1_release_s: float = 0.2


class PhaseSwitch:
    """The phase contactor as the safety loop drives it: the target, the phases in use, the pauses."""

    def __init__(self, contactor: PhaseContactor | None, name: str,
                 timing: PhaseTiming | None = None) -> None:
        self._contactor = contactor
        self._timing = timing or PhaseTiming()
        self.name = name
        #: Phases the EV gets now (None: no phase contactor, the station's wiring decides).
        self.phases: int | None = None if contactor is None else ONE
        #: Phases asked for; a station with KM2 starts on three, as one without it would charge.
        self.target: int | None = None if contactor is None else THREE
        #: Until when the pilot stays at 100 % after a switch (rule 4).
        self._resume_at: float | None = None
        #: Switches made (for the status and the tests).
        self.switches = 0

    @property
    def configured(self) -> bool:
        return self._contactor is not None

    def request(self, phases: int) -> str | None:
        """Ask for one or three phases; returns why not, or None. Applied by ``hold`` over later steps."""
        if self._contactor is None:
            return f"{self.name}: no phase contactor configured ([board.phase_contactor])"
        if phases not in (ONE, THREE):
            return f"{self.name}: phases must be 1 or 3, not {phases!r}"
        if phases != self.target:
            log.info("%s: %d phase(s) requested (now %d)", self.name, phases, self.phases)
        self.target = phases
        return None

    @property
    def switching(self) -> bool:
        """A switch is wanted or its pause after is running: the EV is held paused."""
        return self._contactor is not None and (self.target != self.phases or self._resume_at is not None)

    def hold(self, now: float, out: Outputs, feedback: bool | None, faulted: bool) -> bool:
        """One step of the rules; True while the pilot must stay at 100 % (a switch under way).

        Called by the loop before it decides the offer, with its outputs as the previous step
        left them and the auxiliary contact as read in this step.
        """
        if self._contactor is None:
            return False
        if faulted:
            self._resume_at = None
            km1_open = not out.closed and not feedback and now - out.switched_at >= self._timing.km1_release_s
            if self.phases != ONE and km1_open:
                log.warning("%s: fault: phase contactor released (one phase)", self.name)
                self._set(False, now)
            return True
        if self._resume_at is not None:
            if now < self._resume_at:
                return True
            self._resume_at = None
        target = self.target  # read once: ``request`` may write it from another thread
        if target == self.phases:
            return False
        # Rule 2: pause. Rule 3: move only with KM1 open, shown open, and quiet for before_s.
        if out.closed or feedback or out.duty != PWM_OFF:
            return True
        if now - max(out.pwm_off_since, out.switched_at) < self._timing.before_s:
            return True
        self._set(target == THREE, now)
        self._resume_at = now + self._timing.after_s
        return True

    def write_safe(self) -> None:
        """Release KM2 whatever we believe it is: at shutdown, after KM1 was commanded open, as a
        power cut would (a fault in a running loop releases it through ``hold`` once KM1 is open)."""
        if self._contactor is None:
            return
        try:
            self._contactor.set_three_phase(False)
        except Exception:
            log.exception("%s: could not release the phase contactor", self.name)
        if self.phases != ONE:
            self.phases = ONE
            self._resume_at = None

    def _set(self, three: bool, now: float) -> None:
        assert self._contactor is not None
        self.phases = THREE if three else ONE
        self.switches += 1
        log.info("%s: switched to %d phase(s) at %.2f s", self.name, self.phases, now)
        self._contactor.set_three_phase(three)
