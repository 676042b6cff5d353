"""Load management: what the house's main fuse leaves for the station, shared fairly.

The grid meter at the house connection measures everything: the house and the
station. Subtracting the station's own current per phase gives the house's
load; what the fuse (less a margin) leaves on a phase after that is the
station's headroom there. The headroom is split equally among the connectors
with an EV plugged in, on the phases each uses. A share below the 6 A the pilot
can offer cannot charge, so instead of every connector starving, connectors
are paused one by one (the highest number first, a connector waiting to come
back before one charging) until the others get 6 A. A paused connector comes
back only when its share would be 6 A plus a margin, and not within a minute of
being paused if it was charging then: the contactor and the car are not
switched on every dip.

This is pure logic on the readings it is given, with the time passed in; the
runner (``energy.py``) reads the meters and sets the ``load_manager`` claims.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from chargepoint.safety.iec61851 import MIN_PWM_CURRENT_A

#: A paused connector comes back when its share would be this much above 6 A ...
RESUME_MARGIN_A = 1.0
#: ... and no sooner than this after it was paused (the default of ``[solar] min_switch_interval_s``).
RESUME_AFTER_S = 60.0
#: A phase carrying more than this is one the connector's EV uses.
PHASE_IN_USE_A = 0.5

Phases = tuple[float, float, float]


@dataclass(frozen=True)
class ConnectorLoad:
    """One connector as load management sees it."""

    evse_id: int
    #: An EV is plugged in: it charges, or may start to.
    plugged: bool
    #: The station's own current through this connector per phase (0 with the contactor open).
    currents_a: Phases = (0.0, 0.0, 0.0)
    #: The phases its phase contactor gives or is about to give (1: L1 only; None: no phase
    #: contactor, the supply's phases).
    phase_count: int | None = None

    @property
    def drawing(self) -> bool:
        """Current flows through it now (an EV that may still be following an older, higher claim)."""
        return any(a > PHASE_IN_USE_A for a in self.currents_a)

    def phases(self, supply_phases: int) -> tuple[int, ...]:
        """The phases the EV draws on; while it draws nothing, all it may get (the cautious guess):
        the supply's, or L1 alone on a phase contactor that gives one phase and is not about to give three."""
        used = tuple(p for p in range(3) if self.currents_a[p] > PHASE_IN_USE_A)
        return used or tuple(range(min(supply_phases, self.phase_count or supply_phases)))


def own_currents(contactor_closed: bool, offered_a: float,
                 measured_a: tuple[float | None, float | None, float | None] | None) -> Phases:
    """The station's current through a connector per phase, as load management counts it.

    What its meter measured, but never more than the pilot offers now (a reading
    from before a lowered claim would make the house look smaller and the
    headroom larger), and nothing with the contactor open. An unknown phase
    counts as 0: the house then looks larger, the safe side for the fuse.
    """
    if not contactor_closed or measured_a is None:
        return 0.0, 0.0, 0.0
    out = [min(abs(a), offered_a) if a is not None else 0.0 for a in measured_a]
    return out[0], out[1], out[2]


def house_load(grid_a: Phases, connectors: Sequence[ConnectorLoad]) -> Phases:
    """The house's own current per phase: the grid's less the station's (negative while exporting)."""
    out = [grid_a[p] - sum(c.currents_a[p] for c in connectors) for p in range(3)]
    return out[0], out[1], out[2]


def floor_tenth(amps: float) -> float:
    """Round down to 0.1 A: a claim never rounds up over what the fuse leaves."""
    return max(0.0, math.floor(amps * 10 + 1e-9) / 10)


class LoadManager:
    """Splits a per-phase budget among the connectors; remembers which it paused and when."""

    def __init__(self, supply_phases: int = 3, resume_after_s: float = RESUME_AFTER_S) -> None:
        self.supply_phases = supply_phases
        self.resume_after_s = resume_after_s
        #: Connectors paused for want of headroom -> when.
        self.paused: dict[int, float] = {}
        #: The claims given at the last split (what each connector may still be drawing).
        self.claims: dict[int, float] = {}

    def headroom(self, grid_a: Phases, connectors: Sequence[ConnectorLoad], fuse_a: float,
                 margin_a: float) -> Phases:
        """What the station may draw in total per phase: the fuse less the margin less the house."""
        house = house_load(grid_a, connectors)
        out = [fuse_a - margin_a - house[p] for p in range(3)]
        return out[0], out[1], out[2]

    def split(self, budget_a: Phases, connectors: Sequence[ConnectorLoad], now: float) -> dict[int, float]:
        """The ``load_manager`` claim of every connector: its fair share of ``budget_a``, or 0 (paused).

        A share that rises is given only out of what the others leave now (see :meth:`_step`),
        so no sum of offers ever exceeds the budget while an EV is still following a lowered one.
        """
        plugged = [c for c in connectors if c.plugged]
        for evse_id in list(self.paused):
            if all(c.evse_id != evse_id for c in plugged):
                del self.paused[evse_id]  # unplugged: a new EV starts afresh
        returning = {c.evse_id for c in plugged if c.evse_id in self.paused
                     and now - self.paused[c.evse_id] >= self.resume_after_s}
        candidates = [c for c in plugged if c.evse_id not in self.paused or c.evse_id in returning]
        shares = self._shares(budget_a, candidates)
        while candidates and not all(
                shares[c.evse_id] >= MIN_PWM_CURRENT_A + (RESUME_MARGIN_A if c.evse_id in returning else 0.0)
                for c in candidates):
            # Pause one: a returning connector first (it stays paused), else the highest number.
            waiting = [c for c in candidates if c.evse_id in returning]
            drop = max(waiting or candidates, key=lambda c: c.evse_id)
            candidates.remove(drop)
            returning.discard(drop.evse_id)
            # Only a connector that was drawing current waits a minute to return: one that had not
            # started yet (plugged in during a shortage, or before the first reading) switched nothing.
            self.paused.setdefault(drop.evse_id, now if drop.drawing else -math.inf)
            shares = self._shares(budget_a, candidates)
        targets: dict[int, float] = {c.evse_id: 0.0 for c in plugged}
        for c in candidates:
            self.paused.pop(c.evse_id, None)
            targets[c.evse_id] = floor_tenth(shares[c.evse_id])
        idle = [c for c in connectors if not c.plugged]
        if idle:
            # An EV plugged in next would join the others: what it would get then.
            joined = self._shares(budget_a, [*candidates, *idle])
            for c in idle:
                targets[c.evse_id] = floor_tenth(joined[c.evse_id])
        self.claims = self._step(budget_a, connectors, targets)
        return dict(self.claims)

    def _step(self, budget_a: Phases, connectors: Sequence[ConnectorLoad],
              targets: dict[int, float]) -> dict[int, float]:
        """Lower at once; raise only into the room the others leave now.

        An EV follows a lowered pilot within its reaction time (IEC 61851-1 gives it
        5 s), so until then a connector drawing current may still take its previous
        claim: a rise elsewhere counts that, and comes at a later reading once the
        lowered offer holds. A connector drawing nothing takes its new claim at
        once. The plugged connectors are served first; an empty connector is
        offered what they leave (up to its share), so an EV plugged in starts at
        once, within the headroom, and never above it.
        """
        def held(c: ConnectorLoad, new: float) -> float:
            return max(self.claims.get(c.evse_id, 0.0), new) if c.drawing else new

        out: dict[int, float] = {}
        phases = self.supply_phases
        plugged = [c for c in connectors if c.plugged]
        empty = [c for c in connectors if not c.plugged]
        for c in [*plugged, *empty]:
            target, before = targets[c.evse_id], self.claims.get(c.evse_id, 0.0)
            if c.plugged and target <= before:
                out[c.evse_id] = target
                continue
            room = math.inf
            for p in c.phases(self.supply_phases):
                others = [o for o in connectors if o.evse_id != c.evse_id and p in o.phases(phases)]
                used = sum(held(o, out.get(o.evse_id, targets[o.evse_id] if o.plugged else 0.0))
                           for o in others)
                room = min(room, budget_a[p] - used)
            if not c.plugged:
                # What the plugged ones leave, shared among the empty ones still to be offered theirs.
                still = sum(1 for o in empty if o.evse_id not in out)
                out[c.evse_id] = floor_tenth(min(target, room / still))
                continue
            # No room yet: it keeps what it has (a connector not charging starts only with 6 A).
            amps = max(before, floor_tenth(min(target, room)))
            out[c.evse_id] = amps if amps >= MIN_PWM_CURRENT_A else 0.0
        return out

    def _shares(self, budget_a: Phases, connectors: Sequence[ConnectorLoad]) -> dict[int, float]:
        """Equal shares: on each phase the budget divided by the connectors using it; a connector's
        share is the least over its phases (an EV draws the same on each)."""
        users = [0, 0, 0]
        for c in connectors:
            for p in c.phases(self.supply_phases):
                users[p] += 1
        return {c.evse_id: min(budget_a[p] / users[p] for p in c.phases(self.supply_phases))
                for c in connectors}
