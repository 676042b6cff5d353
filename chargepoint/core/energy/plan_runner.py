"""The departure plans of a station's connectors: set, cleared, kept, and applied at each grid reading.

The logic of one plan is ``plan.py``; this keeps them (one per connector, in
the state database so a restart loses none), tells the energy manager which
mode each connector is in for now, and estimates each connector's full power:
what its limits other than the solar claim allow, at most what the car takes.
A car's own maximum is learnt when it draws clearly less than it is offered.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from chargepoint.core.energy.load_manager import ConnectorLoad
from chargepoint.core.energy.plan import (
    ASSUMED_EV_A,
    Plan,
    Progress,
    describe,
    load_plans,
    plan_json,
    save_plans,
    step,
)
from chargepoint.safety.limits import LimitClaims

if TYPE_CHECKING:
    from chargepoint.core.storage.store import Store

log = logging.getLogger(__name__)

#: The claims the plan's estimate of full power leaves out (the plan lifts the solar claim).
NOT_LIMITS = frozenset({"solar"})
#: The car takes clearly less than offered: it draws at least this much less.
LESS_THAN_OFFERED_A = 1.0


class PlanError(ValueError):
    """A plan that cannot be set as asked; the message says why."""


class Plans:
    """The connectors' departure plans (see the module doc)."""

    def __init__(self, limits: Callable[[int], LimitClaims], meter_wh: Callable[[int], float | None],
                 supply_phases: int, voltage_v: float) -> None:
        self.limits = limits
        self.meter_wh = meter_wh
        self.supply_phases = supply_phases
        self.voltage_v = voltage_v
        self.plans: dict[int, Plan] = {}
        #: The most a car has been seen to take (A per phase), learnt while plugged in.
        self.ev_max_a: dict[int, float] = {}
        self.store: Store | None = None

    async def attach(self, store: Store) -> None:
        self.store = store
        self.plans = await store.call(load_plans, store)

    async def set(self, evse_id: int, energy_wh: float, deadline: float, now: float) -> Plan:
        if not 100 <= energy_wh <= 200_000:
            raise PlanError("the energy must be 0.1 to 200 kWh")
        if deadline <= now:
            raise PlanError("the departure time must be in the future")
        if deadline - now > 7 * 86400:
            raise PlanError("the departure time must be within a week")
        plan = Plan(evse_id, energy_wh, deadline, now, self.meter_wh(evse_id))
        self.plans[evse_id] = plan
        log.info("connector %d: departure plan %s", evse_id, describe(plan, None, now))
        await self._persist()
        return plan

    async def clear(self, evse_id: int) -> Plan | None:
        plan = self.plans.pop(evse_id, None)
        if plan is not None:
            log.info("connector %d: departure plan cleared", evse_id)
            await self._persist()
        return plan

    def modes(self, connectors: Sequence[ConnectorLoad], now: float) -> dict[int, str]:
        """Each planned connector's mode for now; a plan that changes state is logged and kept."""
        out: dict[int, str] = {}
        changed = False
        for c in connectors:
            self._learn(c)
            plan = self.plans.get(c.evse_id)
            if plan is None:
                continue
            progress = Progress(c.plugged, self.meter_wh(c.evse_id), self.full_power_w(c))
            before = plan.state
            mode = step(plan, progress, now)
            if plan.state != before:
                changed = True
                log.info("connector %d: departure plan %s", c.evse_id, describe(plan, progress, now))
            if mode is not None:
                out[c.evse_id] = mode
        if changed and self.store is not None:
            self.store.submit(save_plans, self.store, self._copy())
        return out

    def full_power_w(self, c: ConnectorLoad) -> float:
        """What the connector could charge at now without the solar claim, at most what the car takes."""
        claims = {k: v for k, v in self.limits(c.evse_id).snapshot().items() if k not in NOT_LIMITS}
        amps = min([*claims.values(), self.ev_max_a.get(c.evse_id, ASSUMED_EV_A)])
        return max(0.0, amps) * len(c.phases(self.supply_phases)) * self.voltage_v

    def _learn(self, c: ConnectorLoad) -> None:
        if not c.plugged:
            self.ev_max_a.pop(c.evse_id, None)  # the next car is another
            return
        if not c.drawing:
            return
        offered = self.limits(c.evse_id).resolve().amps
        drawn = max(c.currents_a)
        if math.isfinite(offered) and drawn < offered - LESS_THAN_OFFERED_A:
            self.ev_max_a[c.evse_id] = drawn
        elif drawn > self.ev_max_a.get(c.evse_id, 0.0) and c.evse_id in self.ev_max_a:
            self.ev_max_a[c.evse_id] = drawn

    def status(self, load: ConnectorLoad, now: float) -> dict[str, Any] | None:
        """The connector's plan as it stands now (None: no plan)."""
        plan = self.plans.get(load.evse_id)
        if plan is None:
            return None
        progress = Progress(load.plugged, self.meter_wh(load.evse_id), self.full_power_w(load))
        return plan_json(plan, progress, now)

    async def _persist(self) -> None:
        if self.store is not None:
            await asyncio.wrap_future(self.store.submit(save_plans, self.store, self._copy()))

    def _copy(self) -> dict[int, Plan]:
        """The plans as they are now, for the store's thread (the loop goes on changing its own)."""
        return {k: dataclasses.replace(p) for k, p in self.plans.items()}
