"""How many phases each connector should give its EV: the energy manager's side of phase switching.

Only a connector whose safety loop has a phase contactor (hardware.md, "Phase
switching: KM2") takes part; the others charge on the phases they are wired for.
The safety supervisor carries a request out with the EV paused and KM1 open
(``safety/phases.py``): about 6-12 s without charging, so a switch is worth it
only when it lasts.

* ``fast`` and ``minpv``: three phases (as fast as the other limits allow; min+pv
  already takes from the grid).
* ``pv``: an EV needs 6 A per phase, so three phases need a surplus of
  6 A x 3 x 230 V ~ 4.1 kW, one phase 6 A x 230 V ~ 1.4 kW. While the EV
  charges: one phase until the surplus has covered three phases' 6 A (``up_a``,
  summed over phases) for ``enable_delay_s``; back to one once it has been
  below that less three times ``hysteresis_a`` for ``disable_delay_s``. Two
  switches of a connector, and a switch and a start or pause of its charge, are
  at least ``min_switch_interval_s`` apart, whatever the sky does. While no
  current flows the choice follows the surplus at once (KM2 then moves with
  KM1 open, costing nothing): a paused EV waits on one phase, ready for the
  next 1.4 kW, or starts on three when the sun gives 4.1 kW.

Pure logic with the time passed in; ``energy.py`` runs it before the solar
claims, so the share of the surplus is worked out on the phases chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from chargepoint.config.model import SolarConfig
from chargepoint.safety.iec61851 import MIN_PWM_CURRENT_A

ONE, THREE = 1, 3


class PhaseSwitching(Protocol):
    """A connector's phase contactor as its safety loop offers it (``safety.phases.PhaseSwitch``, or the
    supervisor's through its channel)."""

    @property
    def configured(self) -> bool: ...

    @property
    def phases(self) -> int | None:
        """Phases in use now."""
        ...

    @property
    def target(self) -> int | None:
        """Phases last asked for."""
        ...

    def request(self, phases: int) -> str | None: ...


@dataclass
class PhaseState:
    """One connector's phase choice."""

    #: What was last asked of the supervisor (None: nothing yet).
    wanted: int | None = None
    #: When the choice last changed (None: never).
    switched_at: float | None = None
    #: Since when the surplus has called for the other choice (None: it does not).
    pending_since: float | None = None
    #: Changes so far.
    switches: int = 0


class PhaseChooser:
    """The phases each connector with a phase contactor should use."""

    def __init__(self, config: SolarConfig) -> None:
        self.config = config
        self.states: dict[int, PhaseState] = {}

    @property
    def up_a(self) -> float:
        """Surplus (summed over phases) at which three phases can charge: 3 x 6 A."""
        return THREE * MIN_PWM_CURRENT_A

    @property
    def down_a(self) -> float:
        """Surplus (summed over phases) below which three phases go back to one."""
        return THREE * (MIN_PWM_CURRENT_A - self.config.hysteresis_a)

    def choose(self, evse_id: int, mode: str, surplus_a: float, now: float, *, drawing: bool = False,
               last_start_or_pause: float | None = None) -> int:
        """The phases connector ``evse_id`` should use now, given its mode and its share of the surplus
        (amps summed over the phases, what the connector itself draws included).

        While its EV draws, a switch interrupts the charge like a pause: it waits for the delays and
        keeps ``min_switch_interval_s`` from the connector's last start or pause too. While nothing is
        drawn it only moves KM2 with KM1 open, so it follows the surplus at once (the interval
        between two switches of KM2 still holds): a paused EV starts on the phases that suit.
        """
        state = self.states.setdefault(evse_id, PhaseState())
        if state.wanted is None:  # the first choice: at once (the interval counts from it)
            state.wanted = THREE if mode != "pv" or surplus_a >= self.up_a else ONE
            state.switched_at = now
            return state.wanted
        if mode != "pv":
            state.pending_since = None
            if state.wanted != THREE and self._interval_over(state, now, drawing, last_start_or_pause):
                self._switch(state, THREE, now)
            return state.wanted
        if state.wanted == ONE:
            wants_change, delay = surplus_a >= self.up_a, self.config.enable_delay_s
        else:
            wants_change, delay = surplus_a < self.down_a, self.config.disable_delay_s
        if not wants_change:
            state.pending_since = None
            return state.wanted
        if state.pending_since is None:
            state.pending_since = now
        waited = now - state.pending_since >= delay or not drawing
        if waited and self._interval_over(state, now, drawing, last_start_or_pause):
            self._switch(state, THREE if state.wanted == ONE else ONE, now)
        return state.wanted

    def _interval_over(self, state: PhaseState, now: float, drawing: bool,
                       last_start_or_pause: float | None) -> bool:
        interval = self.config.min_switch_interval_s
        if state.switched_at is not None and now - state.switched_at < interval:
            return False
        return not drawing or last_start_or_pause is None or now - last_start_or_pause >= interval

    def _switch(self, state: PhaseState, phases: int, now: float) -> None:
        state.wanted, state.switched_at, state.pending_since = phases, now, None
        state.switches += 1

    def describe(self, evse_id: int, now: float) -> str | None:
        """The choice in a few words for the status (None: no choice made for this connector)."""
        state = self.states.get(evse_id)
        if state is None or state.wanted is None:
            return None
        words = f"{state.wanted} phase{'s' if state.wanted == THREE else ''}"
        if state.pending_since is not None:
            other = ONE if state.wanted == THREE else THREE
            delay = self.config.enable_delay_s if state.wanted == ONE else self.config.disable_delay_s
            due = max(state.pending_since + delay,
                      (state.switched_at or -1e18) + self.config.min_switch_interval_s)
            words += f", {other} in {max(0.0, due - now):.0f} s unless the surplus changes"
        return words
