"""Charging profiles and the limit they set at any moment: pure computation, no I/O, no clock.

Both OCPP versions describe smart charging the same way: profiles with a
purpose (the station's maximum, the default for transactions, one
transaction's own), a stack level, a kind (absolute, recurring daily or
weekly, relative to the transaction's start), a validity window and a schedule
of periods. Their adapters translate to and from the dataclasses here; the
engine (``smart_charging.py``) asks this module what limit is in force at a
time and when it next changes.

One function, :func:`limit_at`, decides the limit; the composite schedule is
that function swept over a window (:func:`composite`), so what a CSMS is told
and what the safety loop is given cannot disagree. Limits are per phase, in
amperes, floored to 0.1 A (the precision a schedule is reported in), and a
limit below the 6 A the pilot can announce is 0: the EV is not allowed to
charge.

Times are seconds since the epoch (profiles speak of wall-clock time).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

#: Below this no PWM may be offered (IEC 61851-1): such a limit pauses charging.
MIN_CURRENT_A = 6.0
#: The phases a period means when it does not say (both OCPP versions).
DEFAULT_PHASES = 3
#: Most breakpoints one composite schedule may hold (a guard against runaway input).
MAX_BREAKPOINTS = 10_000


class Purpose(StrEnum):
    """What a profile limits."""

    #: The whole station (EVSE 0 only).
    STATION_MAX = "station_max"
    #: Every transaction on its EVSE (or on all, from EVSE 0) without a profile of its own.
    TX_DEFAULT = "tx_default"
    #: One transaction; discarded when it ends.
    TX = "tx"


class Kind(StrEnum):
    ABSOLUTE = "absolute"
    RECURRING = "recurring"
    RELATIVE = "relative"


class Recurrency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


RECURRENCE_S = {Recurrency.DAILY: 86_400, Recurrency.WEEKLY: 7 * 86_400}


class RateUnit(StrEnum):
    AMPS = "A"
    WATTS = "W"


@dataclass(frozen=True)
class Period:
    """From ``start_s`` after the schedule's start until the next period's start."""

    start_s: int
    limit: float
    phases: int | None = None


@dataclass(frozen=True)
class Schedule:
    unit: RateUnit
    periods: tuple[Period, ...]
    #: Absolute and recurring: when it starts (epoch s); None on an absolute one: at the transaction's start.
    start: float | None = None
    #: None: the last period lasts (a recurring schedule: until it recurs).
    duration_s: int | None = None
    #: Below this rate the EV charges badly: a period limited below it pauses charging.
    min_rate: float | None = None


@dataclass(frozen=True)
class ChargingProfile:
    """A profile as both OCPP versions mean it, under neutral names."""

    id: int
    #: 0: the station as a whole (station max, or a default for every EVSE).
    evse_id: int
    purpose: Purpose
    stack_level: int
    kind: Kind
    schedule: Schedule
    recurrency: Recurrency | None = None
    valid_from: float | None = None
    valid_to: float | None = None
    #: TX profiles: the station's local id of their transaction (None: the EVSE's next one).
    transaction_id: str | None = None
    #: A dynamic profile: one period whose limit the CSMS (or an energy manager) moves while it stays
    #: installed (``SmartCharging.update_dynamic``); ``dynamic_pull_s``: ask for the limit this often.
    dynamic: bool = False
    dynamic_pull_s: int | None = None


@dataclass(frozen=True)
class Supply:
    """What turns watts into amperes: the nominal phase voltage and the phases wired."""

    voltage_v: float = 230.0
    phases: int = 3

    def phases_in_use(self, period_phases: int | None) -> int:
        return min(period_phases or DEFAULT_PHASES, self.phases)

    def amps(self, value: float, unit: RateUnit, period_phases: int | None) -> float:
        if unit is RateUnit.AMPS:
            return value
        return value / (self.voltage_v * self.phases_in_use(period_phases))

    def watts(self, amps: float, period_phases: int | None) -> float:
        return amps * self.voltage_v * self.phases_in_use(period_phases)


@dataclass(frozen=True)
class Slot:
    """A limit in force from now until ``until`` (inf: until something else changes)."""

    amps: float | None  # None: no profile limits this connector now
    phases: int | None
    until: float


@dataclass(frozen=True)
class Transaction:
    """What the schedule needs of the transaction on an EVSE."""

    local_id: str
    started_at: float


def quantize(amps: float) -> float:
    """Floor to 0.1 A; below the pilot's minimum: 0 (not allowed to charge)."""
    floored = math.floor(amps * 10 + 1e-6) / 10
    return floored if floored >= MIN_CURRENT_A else 0.0


def _evaluate(p: ChargingProfile, t: float, tx_start: float | None) -> tuple[Period | None, float]:
    """The period of ``p`` in force at ``t`` (None: none) and the next time that may change."""
    valid_from = -math.inf if p.valid_from is None else p.valid_from
    valid_to = math.inf if p.valid_to is None else p.valid_to
    if t < valid_from:
        return None, valid_from
    if t >= valid_to:
        return None, math.inf
    s = p.schedule
    every = RECURRENCE_S[p.recurrency or Recurrency.DAILY] if p.kind is Kind.RECURRING else None
    if p.kind is Kind.RECURRING:
        first = s.start if s.start is not None else 0.0
        assert every is not None
        base = first + math.floor((t - first) / every) * every
    elif p.kind is Kind.ABSOLUTE and s.start is not None:
        base = s.start
    elif tx_start is None:
        # Relative with no transaction yet: it would begin with its first period.
        return s.periods[0], valid_to
    else:
        base = tx_start
    if t < base:
        return None, min(base, valid_to)
    end = math.inf if s.duration_s is None else base + s.duration_s
    recurs = math.inf if every is None else base + every
    end = min(end, recurs)
    if t >= end:
        return None, min(recurs, valid_to)
    offset = t - base
    current, following = s.periods[0], end
    for period in s.periods:
        if period.start_s <= offset:
            current = period
        else:
            following = min(end, base + period.start_s)
            break
    return current, min(following, valid_to)


def applicable(profiles: list[ChargingProfile], evse_id: int,
               tx: Transaction | None) -> dict[Purpose, list[ChargingProfile]]:
    """Per purpose, the profiles that may limit ``evse_id`` (0: the station), in the order they
    take precedence: higher stack level first, and at one level the EVSE's own before EVSE 0's."""
    out: dict[Purpose, list[ChargingProfile]] = {purpose: [] for purpose in Purpose}
    for p in profiles:
        if p.purpose is Purpose.STATION_MAX:
            ok = p.evse_id == 0
        elif evse_id == 0:
            ok = False
        elif p.purpose is Purpose.TX_DEFAULT:
            ok = p.evse_id in (0, evse_id)
        else:
            ok = p.evse_id == evse_id and (p.transaction_id is None or
                                           (tx is not None and p.transaction_id == tx.local_id))
        if ok:
            out[p.purpose].append(p)
    for group in out.values():
        group.sort(key=lambda p: (-p.stack_level, p.evse_id == 0, p.id))
    return out


def limit_at(groups: dict[Purpose, list[ChargingProfile]], t: float, tx_start: float | None,
             supply: Supply) -> Slot:
    """The limit at ``t``: per purpose the highest-precedence profile with a period in force,
    the minimum over purposes; a TX profile replaces the TX default."""
    amps: float | None = None
    phases: int | None = None
    until = math.inf
    for purpose, group in groups.items():
        if purpose is Purpose.TX_DEFAULT and any(
                _evaluate(p, t, tx_start)[0] is not None for p in groups[Purpose.TX]):
            for p in group:
                until = min(until, _evaluate(p, t, tx_start)[1])
            continue
        chosen: tuple[float, int | None] | None = None
        for p in group:
            period, changes = _evaluate(p, t, tx_start)
            until = min(until, changes)
            if period is None or chosen is not None:
                continue
            value = supply.amps(period.limit, p.schedule.unit, period.phases)
            floor = p.schedule.min_rate
            if floor is not None and value < supply.amps(floor, p.schedule.unit, period.phases):
                value = 0.0
            chosen = (value, period.phases)
        if chosen is not None and (amps is None or chosen[0] < amps):
            amps, phases = chosen
    return Slot(None if amps is None else quantize(amps), phases, until)


@dataclass(frozen=True)
class CompositePeriod:
    start_s: int
    amps: float
    phases: int | None


def composite(groups: dict[Purpose, list[ChargingProfile]], start: float, duration_s: int,
              tx_start: float | None, supply: Supply, bound_a: float) -> list[CompositePeriod]:
    """The limits over ``[start, start + duration_s)`` as periods, each also bounded by
    ``bound_a`` (the other claims, the connector's rating); where no profile applies the
    bound stands. Whole seconds, as both OCPP versions report them."""
    periods: list[CompositePeriod] = []
    t, end = float(start), start + duration_s
    for _ in range(MAX_BREAKPOINTS):
        if t >= end:
            break
        slot = limit_at(groups, t, tx_start, supply)
        amps = quantize(bound_a if slot.amps is None else min(slot.amps, bound_a))
        offset = int(math.floor(t - start + 1e-6))
        if not periods or (periods[-1].amps, periods[-1].phases) != (amps, slot.phases):
            if periods and periods[-1].start_s == offset:
                periods.pop()
            periods.append(CompositePeriod(offset, amps, slot.phases))
        t = slot.until  # always later than t (see _evaluate)
    return periods
