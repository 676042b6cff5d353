"""Solar charging: how much of the PV surplus each connector may take, and when it starts and pauses.

Three modes, as evcc taught home users to expect:

* ``fast``: no solar claim at all; everything the other limits allow.
* ``pv``: surplus only. A connector starts once the export has covered 6 A on
  the phases it uses for ``enable_delay_s``, then follows the surplus; once the
  surplus has been below 6 A less ``hysteresis_a`` for ``disable_delay_s`` it
  pauses (claim 0, which the safety loop turns into a steady +12 V, the EV
  waiting in state B). Meanwhile it keeps 6 A and draws the shortfall from the
  grid: that is the price of not switching on every cloud.
* ``minpv``: 6 A always, plus whatever surplus there is.

The surplus is what the station draws now plus what the house exports, summed
over the phases (meters and tariffs net the phases), shared equally among the
connectors with an EV, and divided by the phases each uses. Two switches of a
connector (start or pause) are at least ``min_switch_interval_s`` apart,
whatever the sky does, so neither the contactor nor the car is switched more
than once a minute. Pure logic with the time passed in; ``energy.py`` runs it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from chargepoint.config.model import SOLAR_MODES, SolarConfig
from chargepoint.core.energy.load_manager import ConnectorLoad
from chargepoint.safety.iec61851 import MIN_PWM_CURRENT_A


@dataclass
class SolarState:
    """One connector's place in the pv mode's cycle."""

    charging: bool = False
    #: When it last started or paused (None: never).
    switched_at: float | None = None
    #: Since when the surplus has called for the opposite of ``charging`` (None: it does not).
    pending_since: float | None = None
    #: Starts and pauses so far.
    switches: int = 0


class SolarController:
    """The ``solar`` claims of a station's connectors."""

    def __init__(self, config: SolarConfig, supply_phases: int = 3) -> None:
        self.config = config
        self.supply_phases = supply_phases
        self._mode = config.mode
        self.states: dict[int, SolarState] = {}
        #: Each connector's mode at the last update: the station's, or its own for now (see update).
        self.effective: dict[int, str] = {}

    @property
    def mode(self) -> str:
        return self._mode

    def set_mode(self, mode: str, connectors: Sequence[ConnectorLoad]) -> None:
        """Change the mode; a connector drawing current now counts as started (it pauses only
        after the disable delay, not at once)."""
        if mode not in SOLAR_MODES:
            raise ValueError(f"unknown mode {mode!r}; known: {', '.join(SOLAR_MODES)}")
        if mode == self._mode:
            return
        self._mode = mode
        self.effective.clear()
        for c in connectors:
            state = self.states.setdefault(c.evse_id, SolarState())
            state.charging = any(a > 0.5 for a in c.currents_a)
            state.pending_since = None

    def share_a(self, surplus_a: float, connectors: Sequence[ConnectorLoad], c: ConnectorLoad) -> float:
        """Connector ``c``'s share of the surplus (summed over phases) as a current per phase."""
        plugged = sum(1 for x in connectors if x.plugged) or 1
        return surplus_a / plugged / len(c.phases(self.supply_phases))

    def update(self, surplus_a: float, connectors: Sequence[ConnectorLoad], now: float,
               overrides: Mapping[int, str] | None = None) -> dict[int, float | None]:
        """The claim of every connector (None: no claim, in fast mode).

        ``overrides``: a connector's own mode for now (a departure plan's: pv while it waits for
        the sun, fast once it needs the grid); a start it causes keeps the switch interval too.
        """
        claims: dict[int, float | None] = {}
        for c in connectors:
            state = self.states.setdefault(c.evse_id, SolarState())
            # Off is the homeowner's "do not charge": a departure plan does not override it.
            own = None if self._mode == "off" else (overrides or {}).get(c.evse_id)
            mode = own or self._mode
            if self.effective.get(c.evse_id, mode) != mode:
                state.charging, state.pending_since = c.drawing, None  # as set_mode does
            self.effective[c.evse_id] = mode
            if mode == "fast":
                claims[c.evse_id] = None if own is None or not c.plugged else self._start_now(state, now)
                continue
            if mode == "off":
                if state.charging:  # paused now; a later start still keeps the switch interval
                    state.charging, state.switched_at = False, now
                    state.switches += 1
                state.pending_since = None
                claims[c.evse_id] = 0.0
                continue
            if not c.plugged:
                # The next EV starts from the beginning of the cycle (the switch interval still holds).
                state.charging, state.pending_since = False, None
                claims[c.evse_id] = MIN_PWM_CURRENT_A if mode == "minpv" else 0.0
                continue
            share = self.share_a(surplus_a, connectors, c)
            follow = max(MIN_PWM_CURRENT_A, math.floor(share * 10 + 1e-9) / 10)
            if mode == "minpv":
                claims[c.evse_id] = follow
                continue
            self._cycle(state, share, now)
            claims[c.evse_id] = follow if state.charging else 0.0
        return claims

    def _start_now(self, state: SolarState, now: float) -> float | None:
        """Charge without a solar limit, once the switch interval since the last pause is over."""
        if state.charging:
            return None
        if state.switched_at is not None and now - state.switched_at < self.config.min_switch_interval_s:
            return 0.0
        state.charging, state.switched_at, state.pending_since = True, now, None
        state.switches += 1
        return None

    def _cycle(self, state: SolarState, share: float, now: float) -> None:
        """pv: start after the enable delay of enough surplus, pause after the disable delay of too little."""
        cfg = self.config
        if state.charging:
            wants_change, delay = share < MIN_PWM_CURRENT_A - cfg.hysteresis_a, cfg.disable_delay_s
        else:
            wants_change, delay = share >= MIN_PWM_CURRENT_A, cfg.enable_delay_s
        if not wants_change:
            state.pending_since = None
            return
        if state.pending_since is None:
            state.pending_since = now
        interval_over = state.switched_at is None or now - state.switched_at >= cfg.min_switch_interval_s
        if now - state.pending_since >= delay and interval_over:
            state.charging = not state.charging
            state.switched_at, state.pending_since = now, None
            state.switches += 1

    def describe(self, evse_id: int, now: float, plugged: bool = True) -> str:
        """What the connector does in this mode, in a few words for the status."""
        state = self.states.get(evse_id)
        mode = self.effective.get(evse_id, self._mode)
        if mode == "fast":
            return "fast: no solar limit"
        if mode == "off":
            return "off: no charging until another mode is chosen"
        if not plugged:
            if mode == "minpv":
                return "no EV: one plugged in charges at 6 A plus the surplus"
            return (f"no EV: one plugged in starts once the surplus has covered 6 A for "
                    f"{self.config.enable_delay_s:g} s")
        if mode == "minpv" or state is None:
            return "6 A plus the surplus" if mode == "minpv" else "paused: waiting for surplus"
        if state.pending_since is not None:
            verb = "pausing" if state.charging else "starting"
            delay = self.config.disable_delay_s if state.charging else self.config.enable_delay_s
            due = max(state.pending_since + delay,
                      (state.switched_at if state.switched_at is not None else -math.inf)
                      + self.config.min_switch_interval_s)
            return f"{'charging' if state.charging else 'paused'}, {verb} in " \
                   f"{max(0.0, due - now):.0f} s unless the surplus changes"
        return "charging from surplus" if state.charging else "paused: waiting for surplus"
