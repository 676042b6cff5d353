"""The 1.6 Smart Charging feature profile: charging profiles in 1.6 words.

SetChargingProfile, ClearChargingProfile and GetCompositeSchedule, and the
profile a RemoteStartTransaction may carry, translated to and from the core's
neutral profiles (``core/energy/schedule.py``); the engine (``core/energy/smart_charging.py``)
decides everything. The handlers are a block the adapter routes to the 1.6 peer.

The CSMS's transaction ids are its own integers; the core knows transactions by
their local id, which the outbox maps. Numbers may arrive as ``Decimal`` (the
library parses these actions' payloads so for their ``multipleOf`` rules) and
are taken as plain floats and ints here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import (
    Action,
    ChargingProfileKindType,
    ChargingProfilePurposeType,
    ChargingProfileStatus,
    ChargingRateUnitType,
    ClearChargingProfileStatus,
    GetCompositeScheduleStatus,
    RecurrencyKind,
)

from chargepoint.core.energy.schedule import (
    ChargingProfile,
    Kind,
    Period,
    Purpose,
    RateUnit,
    Recurrency,
    Schedule,
)
from chargepoint.core.energy.smart_charging import SmartCharging
from chargepoint.core.station import Station
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.common.requests import field_time
from chargepoint.protocol.common.timefmt import iso_utc

log = logging.getLogger(__name__)

PURPOSES = {ChargingProfilePurposeType.charge_point_max_profile: Purpose.STATION_MAX,
            ChargingProfilePurposeType.tx_default_profile: Purpose.TX_DEFAULT,
            ChargingProfilePurposeType.tx_profile: Purpose.TX}
KINDS = {ChargingProfileKindType.absolute: Kind.ABSOLUTE, ChargingProfileKindType.recurring: Kind.RECURRING,
         ChargingProfileKindType.relative: Kind.RELATIVE}
RECURRENCIES = {RecurrencyKind.daily: Recurrency.DAILY, RecurrencyKind.weekly: Recurrency.WEEKLY}
UNITS = {ChargingRateUnitType.amps: RateUnit.AMPS, ChargingRateUnitType.watts: RateUnit.WATTS}


class UnknownTransaction(Exception):
    """A TxProfile names a transaction id the station does not know."""




def profile_from_16(p: dict[str, Any], connector_id: int,
                    local_id: Callable[[str], str | None]) -> ChargingProfile:
    """A 1.6 ChargingProfile (snake_case, as the library hands it over) as the core's."""
    s = p["charging_schedule"]
    transaction_id = None
    if p.get("transaction_id") is not None:
        transaction_id = local_id(str(int(p["transaction_id"])))
        if transaction_id is None:
            raise UnknownTransaction(f"transaction {p['transaction_id']} is not known here")
    periods = tuple(Period(int(x["start_period"]), float(x["limit"]),
                           None if x.get("number_phases") is None else int(x["number_phases"]))
                    for x in s["charging_schedule_period"])
    kind = KINDS[ChargingProfileKindType(p["charging_profile_kind"])]
    schedule = Schedule(
        unit=UNITS[ChargingRateUnitType(s["charging_rate_unit"])], periods=periods,
        start=None if kind is Kind.RELATIVE else field_time(s.get("start_schedule"), "startSchedule"),
        duration_s=None if s.get("duration") is None else int(s["duration"]),
        min_rate=None if s.get("min_charging_rate") is None else float(s["min_charging_rate"]))
    recurrency = p.get("recurrency_kind")
    return ChargingProfile(
        id=int(p["charging_profile_id"]), evse_id=connector_id,
        purpose=PURPOSES[ChargingProfilePurposeType(p["charging_profile_purpose"])],
        stack_level=int(p["stack_level"]), kind=kind, schedule=schedule,
        recurrency=RECURRENCIES[RecurrencyKind(recurrency)] if recurrency else None,
        valid_from=field_time(p.get("valid_from"), "validFrom"),
        valid_to=field_time(p.get("valid_to"), "validTo"),
        transaction_id=transaction_id)


def remote_start_profile(station: Station, p: dict[str, Any], connector_id: int | None,
                         local_id: Callable[[str], str | None]) -> ChargingProfile | None:
    """The TxProfile a RemoteStartTransaction carries, in the core's words; None if it does not
    translate (the start is then rejected: a limit the CSMS asked for must not be dropped). Whether
    the station takes it is ``core/remote_start.py``'s decision."""
    try:
        return profile_from_16(p, connector_id or min(station.connectors), local_id)
    except (UnknownTransaction, PropertyConstraintViolationError, KeyError, ValueError) as exc:
        log.info("RemoteStartTransaction: charging profile refused: %s", exc)
        return None


class SmartChargingHandlers(Block[BlockContext]):
    """The Smart Charging CALLs of the 1.6 peer (``Peer16`` inherits them)."""


    def _engine(self) -> SmartCharging:
        engine = self.context.services.smart_charging
        assert engine is not None, "the daemon builds the smart charging engine"
        return engine

    @on(Action.set_charging_profile, skip_schema_validation=True)
    async def on_set_charging_profile(self, connector_id: int, cs_charging_profiles: dict) -> Any:
        engine = self._engine()
        try:
            profile = profile_from_16(cs_charging_profiles, int(connector_id), self.context.outbox.local_id)
        except UnknownTransaction as exc:
            log.info("SetChargingProfile rejected: %s", exc)
            return call_result.SetChargingProfile(status=ChargingProfileStatus.rejected)
        if engine.install(profile) is not None:
            return call_result.SetChargingProfile(status=ChargingProfileStatus.rejected)
        await engine.durable()
        return call_result.SetChargingProfile(status=ChargingProfileStatus.accepted)

    @on(Action.clear_charging_profile, skip_schema_validation=True)
    async def on_clear_charging_profile(self, id: int | None = None, connector_id: int | None = None,
                                        charging_profile_purpose: str | None = None,
                                        stack_level: int | None = None) -> Any:
        engine = self._engine()
        purpose = None if charging_profile_purpose is None else \
            PURPOSES[ChargingProfilePurposeType(charging_profile_purpose)]
        gone = engine.clear(profile_id=id, evse_id=connector_id, purpose=purpose, stack_level=stack_level)
        await engine.durable()
        return call_result.ClearChargingProfile(
            status=ClearChargingProfileStatus.accepted if gone else ClearChargingProfileStatus.unknown)

    @on(Action.get_composite_schedule, skip_schema_validation=True)
    def on_get_composite_schedule(self, connector_id: int, duration: int,
                                  charging_rate_unit: str | None = None) -> Any:
        unit = UNITS[ChargingRateUnitType(charging_rate_unit)] if charging_rate_unit else RateUnit.AMPS
        schedule = self._engine().composite(int(connector_id), int(duration), unit)
        if schedule is None:
            return call_result.GetCompositeSchedule(status=GetCompositeScheduleStatus.rejected)
        periods = []
        for start_s, limit, phases in schedule.periods:
            period: dict[str, Any] = {"start_period": start_s, "limit": _one_decimal(limit)}
            if phases is not None:
                period["number_phases"] = phases
            periods.append(period)
        start = iso_utc(schedule.start)
        return call_result.GetCompositeSchedule(
            status=GetCompositeScheduleStatus.accepted, connector_id=schedule.evse_id, schedule_start=start,
            charging_schedule={"duration": schedule.duration_s, "start_schedule": start,
                               "charging_rate_unit": ChargingRateUnitType.watts if unit is RateUnit.WATTS
                               else ChargingRateUnitType.amps,
                               "charging_schedule_period": periods})


def _one_decimal(value: float) -> float:
    """1.6 limits have one decimal (``multipleOf`` 0.1); floored, never above what applies."""
    return math.floor(value * 10 + 1e-6) / 10
