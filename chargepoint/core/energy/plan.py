"""The departure plan: "N kWh by HH:MM", from the sun first and from the grid as needed to make it.

A homeowner with PV wants the car charged by the morning, from the sun where
it can be, and without paying for grid energy the sun would have given. The
sun cannot be foreseen, so the plan waits for it as long as it can and then
uses the grid: until the latest start (the deadline less the time the rest
takes at the connector's full power, with a margin) the connector charges as
in pv mode, from surplus only; from then on it charges at full power, the sun's
share and the grid's, until the energy is in. Every bit of sun before the
latest start lowers what is left and so moves the latest start later: the grid
gives only what the sun did not. Once the energy is in, the station's own mode
applies again; at the deadline the plan says whether it was met.

Full power is what the other limits allow (the main fuse's share, the station
rating), at most what the car has been seen to take; before the car has drawn
any current it is taken as ``ASSUMED_EV_A`` on the supply's phases. The energy
counts from the connector's meter register, so it survives a restart (the plan
is kept in the state database).

Pure logic with the times passed in; ``energy.py`` applies it at each grid
reading through the solar controller's per-connector mode.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from chargepoint.core.storage.store import meta_get, meta_set

if TYPE_CHECKING:
    from chargepoint.core.storage.store import Store

#: Until the car has drawn current, the plan assumes it takes this per phase.
ASSUMED_EV_A = 16.0
#: The latest start leaves this much time spare, and assumes full power is this share of the estimate.
MARGIN_S = 15 * 60.0
POWER_SHARE = 0.9
#: Where the plans are kept (the store's meta table: name -> JSON).
PLANS_KEY = "departure_plans"


@dataclass
class Plan:
    """One connector's plan. Times are epoch seconds (the station's wall clock)."""

    evse_id: int
    energy_wh: float
    deadline: float
    set_at: float
    #: The connector meter's import register when the plan was set (None: no reading then).
    meter_start_wh: float | None
    #: "solar" (waiting for surplus), "grid" (full power), "met", "missed", "ended" (EV gone).
    state: str = "solar"
    #: When the energy was in, or the plan ended.
    finished_at: float | None = None
    #: Energy charged when it finished.
    final_wh: float | None = None

    @property
    def active(self) -> bool:
        return self.state in ("solar", "grid")


@dataclass(frozen=True)
class Progress:
    """What the plan knows of its connector at one reading."""

    plugged: bool
    #: The connector meter's import register now (None: no reading).
    meter_wh: float | None
    #: Full power now (W): what the limits allow, at most what the car takes.
    full_power_w: float


def charged_wh(plan: Plan, meter_wh: float | None) -> float:
    if plan.final_wh is not None:
        return plan.final_wh
    if meter_wh is None or plan.meter_start_wh is None:
        return 0.0
    return max(0.0, meter_wh - plan.meter_start_wh)


def latest_start(plan: Plan, left_wh: float, full_power_w: float) -> float:
    """When full power must begin to put ``left_wh`` in by the deadline (with the margin)."""
    power = max(1.0, full_power_w * POWER_SHARE)
    return plan.deadline - MARGIN_S - left_wh / power * 3600


def step(plan: Plan, progress: Progress, now: float) -> str | None:
    """Advance the plan; returns the connector's mode from the plan ("pv" or "fast"), or None (the
    station's own mode: no plan in force)."""
    if not plan.active:
        return None
    if plan.meter_start_wh is None and progress.meter_wh is not None:
        plan.meter_start_wh = progress.meter_wh  # the meter answered only now: count from here
    done = charged_wh(plan, progress.meter_wh)
    if done >= plan.energy_wh:
        plan.state, plan.finished_at, plan.final_wh = "met", now, done
        return None
    if now >= plan.deadline:
        plan.state, plan.finished_at, plan.final_wh = "missed", now, done
        return None
    if not progress.plugged:
        if done > 0:  # the car left with what it had: the plan is over
            plan.state, plan.finished_at, plan.final_wh = "ended", now, done
            return None
        return "pv"
    if plan.state == "solar" and now >= latest_start(plan, plan.energy_wh - done, progress.full_power_w):
        plan.state = "grid"
    return "fast" if plan.state == "grid" else "pv"


def clock_text(epoch: float) -> str:
    return time.strftime("%H:%M", time.localtime(epoch))


def describe(plan: Plan, progress: Progress | None, now: float) -> str:
    """The plan's state in words, for the status, the dashboard and MQTT."""
    goal = f"{plan.energy_wh / 1000:.1f} kWh by {clock_text(plan.deadline)}"
    done = charged_wh(plan, progress.meter_wh if progress else None)
    so_far = f"{done / 1000:.1f} kWh so far"
    if plan.state == "met":
        return f"{goal}: met at {clock_text(plan.finished_at or now)}"
    if plan.state == "missed":
        return f"{goal}: missed, {done / 1000:.1f} kWh charged by then"
    if plan.state == "ended":
        return f"{goal}: ended, the EV left with {done / 1000:.1f} kWh"
    if progress is not None and not progress.plugged:
        return f"{goal}: waiting for the EV"
    if plan.state == "grid":
        power = max(1.0, (progress.full_power_w if progress else 0.0) * POWER_SHARE)
        ready = now + (plan.energy_wh - done) / power * 3600
        return f"{goal}: charging from sun and grid, {so_far}, done about {clock_text(ready)}"
    start = latest_start(plan, plan.energy_wh - done, progress.full_power_w if progress else 0.0)
    return (f"{goal}: solar first, {so_far}; the grid from {clock_text(max(start, now))} "
            "if the sun falls short")


def plan_json(plan: Plan, progress: Progress | None, now: float) -> dict[str, Any]:
    done = charged_wh(plan, progress.meter_wh if progress else None)
    return {"connector": plan.evse_id, "energy_wh": plan.energy_wh, "deadline": plan.deadline,
            "set_at": plan.set_at, "state": plan.state, "charged_wh": round(done, 1),
            "finished_at": plan.finished_at, "words": describe(plan, progress, now)}


# ------------------------------------------------- database (store thread)
def load_plans(store: Store) -> dict[int, Plan]:
    text = meta_get(store, PLANS_KEY)
    if text is None:
        return {}
    return {int(k): Plan(**v) for k, v in json.loads(text).items()}


def save_plans(store: Store, plans: dict[int, Plan]) -> None:
    meta_set(store, PLANS_KEY, json.dumps({str(k): asdict(p) for k, p in plans.items()}))
