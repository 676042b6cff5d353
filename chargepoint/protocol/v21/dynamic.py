"""2.1 charging profiles: 2.0.1's, plus dynamic ones whose limit moves without a new profile.

A profile of kind ``Dynamic`` has one period; the CSMS moves its limit with
UpdateDynamicSchedule, or the station asks for it every ``dynUpdateInterval``
seconds with PullDynamicScheduleUpdate. The core keeps it as a dynamic profile
(``SmartCharging.update_dynamic``), so the limit reaches the pilot through the
same ``smart_charging`` claim as every profile, and the status shows that
claim binding when it is the lowest.

Of 2.1's operation modes an AC station without bidirectional power honours
``ChargingOnly`` (the default) and ``Idle`` (no energy: limit 0); the
others (setpoints, frequency and external control, local load balancing by
the EV side) and per-phase, discharge or setpoint limits are refused with the
reason, as are price-based schedules (a price schedule, a sales tariff, a
limit at a state of charge) the station cannot follow.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v21 import call, call_result
from ocpp.v21.enums import Action

from chargepoint.core.energy.schedule import ChargingProfile
from chargepoint.core.services import Services
from chargepoint.protocol.common.block import BlockContext
from chargepoint.protocol.v201.smart_charging import (
    Refused,
    SmartChargingHandlers,
    profile_from_201,
    profile_to_201,
)

if TYPE_CHECKING:
    from hal.clock import Clock

log = logging.getLogger(__name__)

#: The operation modes honoured, and what each does to a period's limit (None: the limit given).
OPERATION_MODES = {"ChargingOnly": None, "Idle": 0.0}
#: Schedule parts that make a schedule price-based or state-of-charge based: refused.
_PRICE_BASED = ("limit_at_so_c", "sales_tariff", "absolute_price_schedule", "price_level_schedule")
#: Longest the puller sleeps before looking at the installed profiles again.
PULL_RESCAN_S = 60.0


def _period_limit(period: dict[str, Any]) -> float:
    """The one limit of a 2.1 period the station can apply; Refused for anything else."""
    mode = period.get("operation_mode") or "ChargingOnly"
    if mode not in OPERATION_MODES:
        raise Refused(f"operation mode {mode} needs bidirectional power or external control")
    others = sorted(k for k, v in period.items() if v is not None and k not in (
        "start_period", "limit", "number_phases", "phase_to_use", "operation_mode", "custom_data"))
    if others:
        raise Refused(f"{', '.join(others)}: per-phase, discharge and setpoint limits are not supported")
    fixed = OPERATION_MODES[mode]
    if fixed is not None:
        return fixed
    if period.get("limit") is None:
        raise Refused("a period without a limit")
    return float(period["limit"])


def profile_from_21(p: dict[str, Any], evse_id: int, now: float) -> ChargingProfile:
    """A 2.1 ChargingProfileType (library spelling) as the core's; Refused for what the station
    cannot follow. A dynamic profile begins now, with its one period."""
    schedules = p.get("charging_schedule") or []
    for schedule in schedules:
        found = [k for k in _PRICE_BASED if schedule.get(k)]
        if found:
            raise Refused(f"{', '.join(found)}: price-based schedules are not supported")
        for period in schedule.get("charging_schedule_period") or []:
            period["limit"] = _period_limit(period)
            period["operation_mode"] = None
    dynamic = p["charging_profile_kind"] == "Dynamic"
    if dynamic:
        if len(schedules) == 1 and len(schedules[0]["charging_schedule_period"]) != 1:
            raise Refused("a dynamic profile has one period")
        p = {**p, "charging_profile_kind": "Absolute"}
        if schedules:
            p["charging_schedule"] = [{**schedules[0], "start_schedule": None}]
    profile = profile_from_201(p, evse_id)
    if not dynamic:
        return profile
    interval = p.get("dyn_update_interval")
    return replace(profile, schedule=replace(profile.schedule, start=math.floor(now)), dynamic=True,
                   dynamic_pull_s=int(interval) if interval else None)


def update_limit(update: dict[str, Any] | None) -> float:
    """The limit of a ChargingScheduleUpdate; Refused for what the station cannot apply."""
    if not update or update.get("limit") is None:
        raise Refused("the update gives no limit")
    others = sorted(k for k, v in update.items() if v is not None and k not in ("limit", "custom_data"))
    if others:
        raise Refused(f"{', '.join(others)}: per-phase, discharge and setpoint limits are not supported")
    return float(update["limit"])


def _rejected(reason: str) -> dict[str, str]:
    return {"reason_code": "InvalidValue", "additional_info": reason[:512]}


class DynamicContext(BlockContext, Protocol):
    #: Set when a dynamic profile to pull was installed (the puller looks again at once).
    dynamic_changed: asyncio.Event


class DynamicHandlers(SmartChargingHandlers):
    """2.1's smart charging block: 2.0.1's, with SetChargingProfile in 2.1 words (dynamic profiles
    reported as set) and UpdateDynamicSchedule."""

    def __init__(self, context: DynamicContext) -> None:
        super().__init__(context)
        self.dynamic_changed = context.dynamic_changed

    def profile_words(self, p: ChargingProfile) -> dict[str, Any]:
        """A dynamic profile is reported as the CSMS set it: kind Dynamic, no start, its pull interval."""
        words = profile_to_201(p)
        if p.dynamic:
            words["charging_profile_kind"] = "Dynamic"
            words["charging_schedule"][0].pop("start_schedule", None)
            if p.dynamic_pull_s:
                words["dyn_update_interval"] = p.dynamic_pull_s
        return words

    @on(Action.set_charging_profile, skip_schema_validation=True)
    async def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        engine = self._engine()
        try:
            profile = profile_from_21(charging_profile, int(evse_id), self.context.clock.time())
        except Refused as exc:
            log.info("SetChargingProfile %s rejected: %s", charging_profile.get("id"), exc)
            return call_result.SetChargingProfile(status="Rejected", status_info=_rejected(str(exc)))
        reason = engine.install(profile, replace_same_level=False)
        if reason is not None:
            return call_result.SetChargingProfile(status="Rejected", status_info=_rejected(reason))
        await engine.durable()
        if profile.dynamic_pull_s:
            self.dynamic_changed.set()
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.update_dynamic_schedule, skip_schema_validation=True)
    async def on_update_dynamic_schedule(self, charging_profile_id: int, schedule_update: dict[str, Any],
                                         **_: Any) -> Any:
        engine = self._engine()
        try:
            reason = engine.update_dynamic(int(charging_profile_id), update_limit(schedule_update))
        except Refused as exc:
            reason = str(exc)
        if reason is not None:
            return call_result.UpdateDynamicSchedule(status="Rejected", status_info=_rejected(reason))
        await engine.durable()
        return call_result.UpdateDynamicSchedule(status="Accepted")


class DynamicPuller:
    """Asks the CSMS for each pulled dynamic profile's limit every ``dynamic_pull_s`` (while connected)."""

    def __init__(self, services: Services, clock: Clock, send: Any, changed: asyncio.Event) -> None:
        self.services = services
        self.clock = clock
        self._send = send
        self._changed = changed
        #: Profile id -> when it was last asked for (the station's clock).
        self._asked: dict[int, float] = {}

    def _due(self) -> list[tuple[float, ChargingProfile]]:
        engine = self.services.smart_charging
        pulled = [p for p in (engine.installed() if engine else []) if p.dynamic and p.dynamic_pull_s]
        return [(self._asked.get(p.id, -math.inf) + (p.dynamic_pull_s or 0), p) for p in pulled]

    async def run(self) -> None:
        while True:
            self._changed.clear()
            now = self.clock.time()
            due = self._due()
            for when, profile in due:
                if when <= now:
                    self._asked[profile.id] = now
                    await self._pull(profile)
            due = self._due()
            wait = min([PULL_RESCAN_S, *(when - self.clock.time() for when, _ in due)])
            changed = asyncio.ensure_future(self._changed.wait())
            elapsed = asyncio.ensure_future(self.clock.sleep(max(wait, 0.0)))
            try:
                await asyncio.wait({changed, elapsed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                elapsed.cancel()

    async def _pull(self, profile: ChargingProfile) -> None:
        try:
            result = await self._send(call.PullDynamicScheduleUpdate(charging_profile_id=profile.id))
        except (TimeoutError, OCPPError) as exc:
            log.warning("PullDynamicScheduleUpdate %d not answered (%s)", profile.id, exc or "timeout")
            return
        if result.status != "Accepted":
            log.info("PullDynamicScheduleUpdate %d: %s", profile.id, result.status)
            return
        engine = self.services.smart_charging
        if engine is None:
            return
        try:
            reason = engine.update_dynamic(profile.id, update_limit(result.schedule_update))
        except Refused as exc:
            reason = str(exc)
        if reason is not None:
            log.warning("PullDynamicScheduleUpdate %d: the update is not applied: %s", profile.id, reason)
