"""The schedule arithmetic: which profile sets the limit when, and the composite schedule.

Pure functions over plain dataclasses, so every case is a table of profiles and
instants. The cases follow the OCPP specifications' smart charging examples
(the daily 11 kW / 6 kW default profile, stacking, a transaction's relative
profile, the purposes' minimum) plus the edges: recurrence across midnight,
watts to amperes on one and three phases, gaps between profiles, validity.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from chargepoint.core.energy.schedule import (
    ChargingProfile,
    CompositePeriod,
    Kind,
    Period,
    Purpose,
    RateUnit,
    Recurrency,
    Schedule,
    Supply,
    Transaction,
    applicable,
    composite,
    limit_at,
    quantize,
)

SUPPLY = Supply(230.0, 3)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def profile(pid: int, periods: list[tuple[int, float] | tuple[int, float, int]], *, evse: int = 1,
            purpose: Purpose = Purpose.TX_DEFAULT, level: int = 0, kind: Kind = Kind.ABSOLUTE,
            start: str | None = "2024-01-01T00:00:00", duration: int | None = None,
            unit: RateUnit = RateUnit.AMPS, recurrency: Recurrency | None = None,
            valid_from: str | None = None, valid_to: str | None = None, tx: str | None = None,
            min_rate: float | None = None) -> ChargingProfile:
    return ChargingProfile(
        pid, evse, purpose, level, kind,
        Schedule(unit, tuple(Period(*p) for p in periods), at(start) if start else None, duration, min_rate),
        recurrency, at(valid_from) if valid_from else None, at(valid_to) if valid_to else None, tx)


def limit(profiles: list[ChargingProfile], when: str, *, evse: int = 1, tx: Transaction | None = None,
          supply: Supply = SUPPLY) -> tuple[float | None, float]:
    slot = limit_at(applicable(profiles, evse, tx), at(when), tx.started_at if tx else None, supply)
    return slot.amps, slot.until


# The 1.6 specification's example: a daily default of 11 kW, 6 kW from 08:00 to 20:00.
DAILY_11KW = profile(100, [(0, 11000.0, 3), (28800, 6000.0, 3), (72000, 11000.0, 3)],
                     kind=Kind.RECURRING, recurrency=Recurrency.DAILY, start="2013-01-01T00:00:00",
                     duration=86400, unit=RateUnit.WATTS, evse=0)


def test_daily_profile_in_watts_becomes_amperes_per_phase_and_names_its_next_change():
    # 11 kW on 3 x 230 V = 15.94 A -> 15.9 A (floored to 0.1 A); 6 kW = 8.69 A -> 8.6 A.
    assert limit([DAILY_11KW], "2024-05-06T07:59:59") == (15.9, at("2024-05-06T08:00:00"))
    assert limit([DAILY_11KW], "2024-05-06T08:00:00") == (8.6, at("2024-05-06T20:00:00"))
    assert limit([DAILY_11KW], "2024-05-06T20:00:00") == (15.9, at("2024-05-07T00:00:00"))


def test_watts_to_amperes_with_one_and_three_phases():
    one = profile(1, [(0, 3680.0, 1)], unit=RateUnit.WATTS)
    three = profile(2, [(0, 11040.0, 3)], unit=RateUnit.WATTS, evse=2)
    unsaid = profile(3, [(0, 11040.0)], unit=RateUnit.WATTS, evse=3)  # no numberPhases: 3
    assert limit([one], "2024-02-01T12:00:00")[0] == 16.0
    assert limit([three], "2024-02-01T12:00:00", evse=2)[0] == 16.0
    assert limit([unsaid], "2024-02-01T12:00:00", evse=3)[0] == 16.0
    # A single-phase supply: all the power flows on the one phase wired.
    assert limit([three], "2024-02-01T12:00:00", evse=2, supply=Supply(230.0, 1))[0] == 48.0
    # 3 x 230 V at 4 kW is 5.8 A: below 6 A the pilot offers nothing, so the limit is 0.
    assert limit([profile(4, [(0, 4000.0)], unit=RateUnit.WATTS)], "2024-02-01T12:00:00")[0] == 0.0


def test_stacking_the_higher_level_wins_while_valid_then_the_lower_again():
    # The spec's stacking example: a default for every day, and for one day (a holiday) a
    # profile of a higher stack level that lifts the daytime limit.
    holiday = profile(101, [(0, 32.0)], evse=0, level=1, kind=Kind.RECURRING, recurrency=Recurrency.DAILY,
                      start="2013-01-01T00:00:00", valid_from="2024-05-08T00:00:00",
                      valid_to="2024-05-09T00:00:00")
    both = [DAILY_11KW, holiday]
    assert limit(both, "2024-05-07T12:00:00") == (8.6, at("2024-05-07T20:00:00"))
    assert limit(both, "2024-05-07T23:00:00") == (15.9, at("2024-05-08T00:00:00"))
    assert limit(both, "2024-05-08T12:00:00")[0] == 32.0
    assert limit(both, "2024-05-09T12:00:00")[0] == 8.6
    assert limit(both, "2024-05-08T23:59:59")[1] == at("2024-05-09T00:00:00")


def test_a_higher_level_with_a_duration_leaves_a_gap_the_lower_level_fills():
    base = profile(1, [(0, 20.0)])
    burst = profile(2, [(0, 10.0)], level=3, start="2024-01-01T10:00:00", duration=1800)
    assert limit([base, burst], "2024-01-01T09:59:59") == (20.0, at("2024-01-01T10:00:00"))
    assert limit([base, burst], "2024-01-01T10:00:00") == (10.0, at("2024-01-01T10:30:00"))
    assert limit([base, burst], "2024-01-01T10:30:00") == (20.0, math.inf)


def test_recurring_daily_across_midnight():
    night = profile(7, [(0, 32.0), (28800, 10.0)], kind=Kind.RECURRING, recurrency=Recurrency.DAILY,
                    start="2024-01-01T22:00:00")  # 22:00-06:00 32 A, then 10 A until 22:00
    assert limit([night], "2024-03-10T23:30:00") == (32.0, at("2024-03-11T06:00:00"))
    assert limit([night], "2024-03-11T02:00:00") == (32.0, at("2024-03-11T06:00:00"))
    assert limit([night], "2024-03-11T06:00:00") == (10.0, at("2024-03-11T22:00:00"))
    assert limit([night], "2024-03-11T21:59:59")[0] == 10.0


def test_recurring_weekly():
    weekend = profile(8, [(0, 10.0), (5 * 86400, 32.0)], kind=Kind.RECURRING, recurrency=Recurrency.WEEKLY,
                      start="2024-01-01T00:00:00")  # a Monday: 10 A on weekdays, 32 A at the weekend
    assert limit([weekend], "2024-03-15T12:00:00") == (10.0, at("2024-03-16T00:00:00"))  # Friday
    assert limit([weekend], "2024-03-17T12:00:00") == (32.0, at("2024-03-18T00:00:00"))  # Sunday


def test_relative_to_the_transaction_start():
    tx = Transaction("L1", at("2024-04-02T10:17:23"))
    relative = profile(9, [(0, 16.0), (3600, 8.0), (7200, 32.0)], purpose=Purpose.TX, kind=Kind.RELATIVE,
                       start=None, tx="L1")
    assert limit([relative], "2024-04-02T10:20:00", tx=tx) == (16.0, at("2024-04-02T11:17:23"))
    assert limit([relative], "2024-04-02T11:17:23", tx=tx) == (8.0, at("2024-04-02T12:17:23"))
    assert limit([relative], "2024-04-02T15:00:00", tx=tx) == (32.0, math.inf)
    # Not this transaction's profile: it does not apply.
    other = Transaction("L2", tx.started_at)
    assert limit([relative], "2024-04-02T10:20:00", tx=other) == (None, math.inf)


def test_the_limit_is_the_minimum_over_purposes_and_a_tx_profile_replaces_the_default():
    station = profile(1, [(0, 20.0)], evse=0, purpose=Purpose.STATION_MAX)
    default = profile(2, [(0, 16.0)], level=5)
    tx = Transaction("L1", at("2024-01-01T00:00:00"))
    own = profile(3, [(0, 25.0)], purpose=Purpose.TX, tx="L1")
    assert limit([station, default], "2024-01-02T00:00:00")[0] == 16.0
    assert limit([station, default, own], "2024-01-02T00:00:00", tx=tx)[0] == 20.0  # own replaces default
    assert limit([station, default, own], "2024-01-02T00:00:00")[0] == 16.0  # no transaction: default
    # The station's maximum applies to EVSE 0, the defaults do not.
    assert limit([station, default], "2024-01-02T00:00:00", evse=0)[0] == 20.0


def test_an_evse_default_wins_over_the_station_wide_one_at_the_same_level():
    wide = profile(1, [(0, 10.0)], evse=0)
    own = profile(2, [(0, 20.0)], evse=1)
    assert limit([wide, own], "2024-01-02T00:00:00")[0] == 20.0
    assert limit([wide, own], "2024-01-02T00:00:00", evse=2)[0] == 10.0


def test_valid_from_and_valid_to_bound_a_profile():
    p = profile(1, [(0, 12.0)], valid_from="2024-06-01T00:00:00", valid_to="2024-06-02T00:00:00")
    assert limit([p], "2024-05-31T12:00:00") == (None, at("2024-06-01T00:00:00"))
    assert limit([p], "2024-06-01T12:00:00") == (12.0, at("2024-06-02T00:00:00"))
    assert limit([p], "2024-06-02T00:00:00") == (None, math.inf)


def test_min_charging_rate_pauses_a_period_below_it():
    p = profile(1, [(0, 16.0), (600, 8.0)], min_rate=10.0)
    assert limit([p], "2024-01-01T00:05:00")[0] == 16.0
    assert limit([p], "2024-01-01T00:15:00")[0] == 0.0


def test_quantize_floors_to_a_tenth_and_zeroes_below_six():
    assert [quantize(x) for x in (15.94, 16.0, 6.0, 5.99, 0.0, 32.05)] == [15.9, 16.0, 6.0, 0.0, 0.0, 32.0]


def test_composite_schedule_with_gaps_filled_by_the_bound():
    base = profile(1, [(0, 16.0), (3600, 8.0)], start="2024-01-01T10:00:00", duration=7200)
    top = profile(2, [(0, 10.0)], level=1, start="2024-01-01T10:30:00", duration=600)
    groups = applicable([base, top], 1, None)
    periods = composite(groups, at("2024-01-01T09:00:00"), 4 * 3600, None, SUPPLY, 32.0)
    assert periods == [
        CompositePeriod(0, 32.0, None),  # before the schedule: only the connector's rating
        CompositePeriod(3600, 16.0, None),
        CompositePeriod(5400, 10.0, None),  # 10:30 the stacked profile
        CompositePeriod(6000, 16.0, None),  # 10:40 back to the base
        CompositePeriod(7200, 8.0, None),
        CompositePeriod(10800, 32.0, None),  # 12:00 the base's duration is over
    ]


def test_composite_merges_equal_neighbours_and_bounds_every_period():
    p = profile(1, [(0, 20.0), (60, 20.0), (120, 40.0)])
    periods = composite(applicable([p], 1, None), at("2024-01-01T00:00:00"), 600, None, SUPPLY, 25.0)
    assert periods == [CompositePeriod(0, 20.0, None), CompositePeriod(120, 25.0, None)]
