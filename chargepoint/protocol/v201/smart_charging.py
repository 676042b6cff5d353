"""The 2.0.1 Smart Charging block (K): charging profiles in 2.0.1 words.

SetChargingProfile per EVSE (0: the station), GetChargingProfiles answered by
ReportChargingProfiles, ClearChargingProfile by id or by criteria,
GetCompositeSchedule, and the profile a RequestStartTransaction may carry,
translated to and from the core's neutral profiles (``core/energy/schedule.py``); the
engine (``core/energy/smart_charging.py``) decides everything. The handlers are a
block the adapter routes to the 2.0.1 peer.

Where 2.0.1 differs from 1.6 the translation says so: a profile with the
purpose and stack level of another one on the same EVSE (and another id) is
rejected rather than replacing it (K01.FR.06); ChargingStationExternalConstraints
is the station's own purpose, never the CSMS's (K01.FR.22); a schedule list
holds one schedule (more are for ISO 15118, which this station does not speak).
Transaction ids are the station's own in 2.0.1, so they need no mapping.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import OCPPError, PropertyConstraintViolationError
from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

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
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.common.requests import field_time
from chargepoint.protocol.common.timefmt import iso_utc

if TYPE_CHECKING:
    from chargepoint.core.station import Station

log = logging.getLogger(__name__)

PURPOSES = {"ChargingStationMaxProfile": Purpose.STATION_MAX, "TxDefaultProfile": Purpose.TX_DEFAULT,
            "TxProfile": Purpose.TX}
PURPOSE_WORDS = {neutral: word for word, neutral in PURPOSES.items()}
KINDS = {"Absolute": Kind.ABSOLUTE, "Recurring": Kind.RECURRING, "Relative": Kind.RELATIVE}
KIND_WORDS = {neutral: word for word, neutral in KINDS.items()}
RECURRENCIES = {"Daily": Recurrency.DAILY, "Weekly": Recurrency.WEEKLY}
RECURRENCY_WORDS = {neutral: word for word, neutral in RECURRENCIES.items()}
UNITS = {"A": RateUnit.AMPS, "W": RateUnit.WATTS}
#: Where every profile the CSMS installs comes from (the station reports no other source).
SOURCE = "CSO"
#: Most profiles in one ReportChargingProfiles.
PROFILES_PER_REPORT = 8


class Refused(Exception):
    """A profile the station cannot take, with the reason in words."""




def profile_from_201(p: dict[str, Any], evse_id: int) -> ChargingProfile:
    """A 2.0.1 ChargingProfileType (snake_case, as the library hands it over) as the core's;
    raises ``Refused`` for what is valid 2.0.1 but not for this station."""
    if p["charging_profile_purpose"] not in PURPOSES:
        raise Refused(f"{p['charging_profile_purpose']} is set by the station itself, not the CSMS")
    if len(p["charging_schedule"]) != 1:
        raise Refused("one charging schedule per profile (several are for ISO 15118)")
    s = p["charging_schedule"][0]
    if any(x.get("phase_to_use") is not None for x in s["charging_schedule_period"]):
        raise Refused("phaseToUse needs phase switching, which this station cannot do")
    periods = tuple(Period(int(x["start_period"]), float(x["limit"]),
                           None if x.get("number_phases") is None else int(x["number_phases"]))
                    for x in s["charging_schedule_period"])
    kind = KINDS[p["charging_profile_kind"]]
    schedule = Schedule(
        unit=UNITS[s["charging_rate_unit"]], periods=periods,
        start=None if kind is Kind.RELATIVE else field_time(s.get("start_schedule"), "startSchedule"),
        duration_s=None if s.get("duration") is None else int(s["duration"]),
        min_rate=None if s.get("min_charging_rate") is None else float(s["min_charging_rate"]))
    recurrency = p.get("recurrency_kind")
    return ChargingProfile(
        id=int(p["id"]), evse_id=evse_id, purpose=PURPOSES[p["charging_profile_purpose"]],
        stack_level=int(p["stack_level"]), kind=kind, schedule=schedule,
        recurrency=RECURRENCIES[recurrency] if recurrency else None,
        valid_from=field_time(p.get("valid_from"), "validFrom"),
        valid_to=field_time(p.get("valid_to"), "validTo"),
        transaction_id=p.get("transaction_id"))


def profile_to_201(p: ChargingProfile) -> dict[str, Any]:
    """The core's profile as a 2.0.1 ChargingProfileType (snake_case, for the library)."""
    s = p.schedule
    periods = []
    for x in s.periods:
        period: dict[str, Any] = {"start_period": x.start_s, "limit": x.limit}
        if x.phases is not None:
            period["number_phases"] = x.phases
        periods.append(period)
    schedule: dict[str, Any] = {"id": p.id, "charging_rate_unit": s.unit.value,
                                "charging_schedule_period": periods}
    optional_schedule = {"start_schedule": None if s.start is None else iso_utc(s.start),
                         "duration": s.duration_s, "min_charging_rate": s.min_rate}
    schedule.update({k: v for k, v in optional_schedule.items() if v is not None})
    out: dict[str, Any] = {"id": p.id, "stack_level": p.stack_level,
                           "charging_profile_purpose": PURPOSE_WORDS[p.purpose],
                           "charging_profile_kind": KIND_WORDS[p.kind], "charging_schedule": [schedule]}
    optional = {"recurrency_kind": None if p.recurrency is None else RECURRENCY_WORDS[p.recurrency],
                "valid_from": None if p.valid_from is None else iso_utc(p.valid_from),
                "valid_to": None if p.valid_to is None else iso_utc(p.valid_to),
                "transaction_id": p.transaction_id}
    out.update({k: v for k, v in optional.items() if v is not None})
    return out


def remote_start_profile(station: Station, p: dict[str, Any], evse_id: int | None) -> ChargingProfile | None:
    """The TxProfile a RequestStartTransaction carries, in the core's words; None if it does not
    translate or names a transaction (K05.FR.04): the start is then rejected. Whether the station
    takes it is ``core/remote_start.py``'s decision."""
    try:
        profile = profile_from_201(p, evse_id or min(station.connectors))
    except (Refused, PropertyConstraintViolationError, KeyError, ValueError) as exc:
        log.info("RequestStartTransaction: charging profile refused: %s", exc)
        return None
    if profile.transaction_id is not None:
        log.info("RequestStartTransaction: charging profile %d refused: it must not name a transaction "
                 "(K05.FR.04)", profile.id)
        return None
    return profile


def _rejected(reason: str) -> dict[str, str]:
    return {"reason_code": "InvalidValue", "additional_info": reason[:512]}


def _one_decimal(value: float) -> float:
    """2.0.1 limits have at most one decimal; floored, never above what applies."""
    return math.floor(value * 10 + 1e-6) / 10


class SmartChargingHandlers(Block[BlockContext]):
    """The smart charging block (K): profiles set, cleared, reported; the composite schedule."""

    def __init__(self, context: BlockContext) -> None:
        super().__init__(context)
        #: Reports asked for and not yet sent, by requestId: the profiles per EVSE, taken when asked.
        self._pending_profile_reports: dict[int, list[tuple[int, list[dict[str, Any]]]]] = {}

    def profile_words(self, p: ChargingProfile) -> dict[str, Any]:
        """A profile as this version reports it (2.1's block, built on this one, names dynamic ones)."""
        return profile_to_201(p)

    def _engine(self) -> SmartCharging:
        engine = self.context.services.smart_charging
        assert engine is not None, "the daemon builds the smart charging engine"
        return engine

    @on(Action.set_charging_profile, skip_schema_validation=True)
    async def on_set_charging_profile(self, evse_id: int, charging_profile: dict[str, Any], **_: Any) -> Any:
        engine = self._engine()
        try:
            profile = profile_from_201(charging_profile, int(evse_id))
        except Refused as exc:
            log.info("SetChargingProfile %s rejected: %s", charging_profile.get("id"), exc)
            return call_result.SetChargingProfile(status="Rejected", status_info=_rejected(str(exc)))
        reason = engine.install(profile, replace_same_level=False)
        if reason is not None:
            return call_result.SetChargingProfile(status="Rejected", status_info=_rejected(reason))
        await engine.durable()
        return call_result.SetChargingProfile(status="Accepted")

    @on(Action.clear_charging_profile, skip_schema_validation=True)
    async def on_clear_charging_profile(self, charging_profile_id: int | None = None,
                                        charging_profile_criteria: dict[str, Any] | None = None,
                                        **_: Any) -> Any:
        engine = self._engine()
        criteria = charging_profile_criteria or {}
        word = criteria.get("charging_profile_purpose")
        if word is not None and word not in PURPOSES:  # external constraints: never the CSMS's to clear
            return call_result.ClearChargingProfile(status="Unknown")
        gone = engine.clear(profile_id=charging_profile_id, evse_id=criteria.get("evse_id"),
                            purpose=None if word is None else PURPOSES[word],
                            stack_level=criteria.get("stack_level"))
        await engine.durable()
        return call_result.ClearChargingProfile(status="Accepted" if gone else "Unknown")

    @on(Action.get_composite_schedule, skip_schema_validation=True)
    def on_get_composite_schedule(self, duration: int, evse_id: int, charging_rate_unit: str | None = None,
                                  **_: Any) -> Any:
        unit = UNITS[charging_rate_unit] if charging_rate_unit else RateUnit.AMPS
        schedule = self._engine().composite(int(evse_id), int(duration), unit)
        if schedule is None:
            return call_result.GetCompositeSchedule(
                status="Rejected", status_info=_rejected(f"there is no EVSE {evse_id}"))
        periods = []
        for start_s, limit, phases in schedule.periods:
            period: dict[str, Any] = {"start_period": start_s, "limit": _one_decimal(limit)}
            if phases is not None:
                period["number_phases"] = phases
            periods.append(period)
        return call_result.GetCompositeSchedule(status="Accepted", schedule={
            "evse_id": schedule.evse_id, "duration": schedule.duration_s,
            "schedule_start": iso_utc(schedule.start), "charging_rate_unit": unit.value,
            "charging_schedule_period": periods})

    # ------------------------------------------------------------- reports
    @on(Action.get_charging_profiles, skip_schema_validation=True)
    def on_get_charging_profiles(self, request_id: int, charging_profile: dict[str, Any],
                                 evse_id: int | None = None, **_: Any) -> Any:
        sources = charging_profile.get("charging_limit_source")
        ids = charging_profile.get("charging_profile_id")
        word = charging_profile.get("charging_profile_purpose")
        level = charging_profile.get("stack_level")
        found = [p for p in self._engine().installed(evse_id)
                 if (sources is None or SOURCE in sources) and (ids is None or p.id in ids)
                 and (word is None or PURPOSES.get(word) is p.purpose)
                 and (level is None or p.stack_level == level)]
        if not found:
            return call_result.GetChargingProfiles(status="NoProfiles")
        by_evse: dict[int, list[dict[str, Any]]] = {}
        for p in found:
            by_evse.setdefault(p.evse_id, []).append(self.profile_words(p))
        parts = [(evse, profiles[i:i + PROFILES_PER_REPORT]) for evse, profiles in sorted(by_evse.items())
                 for i in range(0, len(profiles), PROFILES_PER_REPORT)]
        self._pending_profile_reports[request_id] = parts
        return call_result.GetChargingProfiles(status="Accepted")

    @after(Action.get_charging_profiles)
    async def send_charging_profiles(self, request_id: int, **_: Any) -> None:
        parts = self._pending_profile_reports.pop(request_id, None)
        if parts is None:
            return
        for number, (evse_id, profiles) in enumerate(parts):
            request = call.ReportChargingProfiles(
                request_id=request_id, charging_limit_source=SOURCE, evse_id=evse_id,
                charging_profile=profiles, tbc=number < len(parts) - 1)
            try:
                await self.context.call(request)
            except (OCPPError, TimeoutError) as exc:
                log.warning("charging profiles report %d: part %d of %d not delivered (%s), rest not sent",
                            request_id, number + 1, len(parts),
                            type(exc).__name__ if isinstance(exc, TimeoutError) else exc)
                return
        log.info("charging profiles report %d sent in %d part(s)", request_id, len(parts))
