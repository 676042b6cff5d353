"""Smart charging reaching the car: the engine over the station and the physical simulation,
in simulated time (the rig of ``test_station.py``: the safety loop stepped once per tick).

What the simulated EV reads from the pilot is checked one tick before and one
tick after each period boundary; a limit below 6 A pauses the session
(SuspendedEVSE, contactor open) and a higher one resumes it; the engine sleeps
until the next boundary instead of polling; profiles and the operator's limit
survive a restart in the real state database.
"""

from __future__ import annotations

import math
from pathlib import Path

from chargepoint.core.energy.schedule import (
    ChargingProfile,
    Kind,
    Period,
    Purpose,
    RateUnit,
    Schedule,
    Supply,
)
from chargepoint.core.energy.smart_charging import CLAIM, SmartCharging
from chargepoint.core.events import Activity, StopReason
from chargepoint.core.operator_limit import OperatorLimits
from chargepoint.safety.iec61851 import duty_for_current
from hal.sim.world import offered_current_a
from tests.unit import test_station
from tests.unit.test_station import REMOTE, TICK, Bench, Rig

bench = test_station.bench  # the fixture: started rigs and stores, closed after each test

#: The boundaries of the test schedule, in seconds after its start, and the limits from each.
STEPS = [(0, 13.0), (20, 10.0), (40, 4.0), (60, 8.0)]


def stepped(start: float, pid: int = 1, purpose: Purpose = Purpose.TX_DEFAULT,
            evse: int = 1) -> ChargingProfile:
    return ChargingProfile(pid, evse, purpose, 0, Kind.ABSOLUTE,
                           Schedule(RateUnit.AMPS, tuple(Period(s, a) for s, a in STEPS), start))


def engine_for(rig: Rig) -> SmartCharging:
    engine = SmartCharging(rig.station, Supply(230.0, 3))
    engine.start()
    return engine


def ev_reads(rig: Rig) -> float | None:
    """The current the simulated EV reads from the pilot's duty cycle."""
    return offered_current_a(rig.world.pilot.duty_percent)


async def test_the_ev_follows_each_period_within_one_tick_and_pauses_below_six_amperes(bench: Bench) -> None:
    rig = await bench.rig()
    engine = engine_for(rig)
    await rig.charge()
    start = math.ceil(rig.clock.time()) + 5
    assert engine.install(stepped(start)) is None
    await rig.settle()
    boundaries = [(start + s, a) for s, a in STEPS]

    previous = None
    for when, amps in boundaries:
        before = when - rig.clock.time()
        await rig.run(before - TICK)  # the last tick before the boundary
        if previous is not None:
            assert rig.world.pilot.duty_percent == (duty_for_current(previous) if previous >= 6 else 100.0)
        await rig.run(2 * TICK)  # the boundary's tick, and the safety loop's tick after it
        assert rig.clock.time() - when <= 2 * TICK
        if amps >= 6:
            assert rig.world.pilot.duty_percent == duty_for_current(amps)
            assert ev_reads(rig) == amps
        else:
            assert rig.world.pilot.duty_percent == 100.0, "below 6 A: a steady +12 V"
            assert ev_reads(rig) is None
            await rig.run_until(lambda: rig.status.activity == Activity.SUSPENDED_EVSE
                                and not rig.world.contactor.closed, 3.0, "paused, contactor open")
            assert rig.world.ev.state == "B" and rig.station.active_transactions(), "the transaction goes on"
        assert rig.station.view(1).claims[CLAIM] == (amps if amps >= 6 else 0.0)
        previous = amps

    await rig.run_until(lambda: rig.status.activity == Activity.CHARGING and rig.world.contactor.closed,
                        3.0, "charging again at 8 A")
    assert abs(rig.world.ev.current_a - 8.0) < 0.01
    assert engine.next_change[1] == math.inf


async def test_the_engine_sleeps_until_the_next_change_instead_of_polling(bench: Bench) -> None:
    rig = await bench.rig()
    engine = engine_for(rig)
    start = math.ceil(rig.clock.time()) + 1000
    engine.install(stepped(start))
    await rig.settle()
    timer = engine._timer
    assert timer is not None and not timer.done()
    sleepers = [deadline for deadline, _ in rig.clock._sleepers]
    assert any(abs(d - (rig.clock.monotonic() + start - rig.clock.time())) < 1e-6 for d in sleepers)
    await rig.run(5.0)
    assert engine._timer is timer, "nothing woke the engine before its boundary"
    assert rig.station.view(1).claims.get(CLAIM) is None, "no profile in force before its start"


async def test_a_remote_start_profile_applies_to_its_transaction_and_goes_with_it(bench: Bench) -> None:
    rig = await bench.rig()
    engine = engine_for(rig)
    engine.install(ChargingProfile(1, 0, Purpose.TX_DEFAULT, 0, Kind.RELATIVE,
                                   Schedule(RateUnit.AMPS, (Period(0, 16.0),))))
    own = ChargingProfile(7, 1, Purpose.TX, 0, Kind.RELATIVE,
                          Schedule(RateUnit.WATTS, (Period(0, 2300.0, 1), Period(60, 6900.0, 3))))
    assert engine.install(own) is not None, "no transaction: a TX profile is refused"
    assert rig.station.remote_start(REMOTE, 1).accepted
    assert engine.install(own, pending=True) is None
    rig.world.plug_in()
    await rig.run_until(lambda: rig.status.activity == Activity.CHARGING, 3.0, "charging")
    local_id = rig.started[-1].local_id
    assert engine.profiles[7].transaction_id == local_id, "bound to the transaction it started"
    assert rig.station.view(1).claims[CLAIM] == 10.0  # 2300 W on one phase at 230 V
    assert ev_reads(rig) == 10.0
    await rig.run(60.0)
    assert ev_reads(rig) == 10.0, "6900 W on three phases is 10 A too"
    await rig.finish(rig.station.stop_transaction(1, StopReason.LOCAL))
    await rig.settle()
    assert 7 not in engine.profiles, "a transaction's profile ends with it"
    assert rig.station.view(1).claims[CLAIM] == 16.0, "the default again"


async def test_profiles_and_operator_limits_survive_a_restart(bench: Bench, tmp_path: Path) -> None:
    rig = await bench.rig()
    state = tmp_path / "state-restart"
    store = await bench.store(state)
    engine = SmartCharging(rig.station)
    await engine.attach(store)
    engine.start()
    profile = stepped(math.floor(rig.clock.time()) - 30, pid=42, purpose=Purpose.STATION_MAX, evse=0)
    assert engine.install(profile) is None
    await engine.durable()
    operator = OperatorLimits(rig.station)
    await operator.attach(store)
    await operator.set([1], 9.5)
    assert rig.station.view(1).limit.binding == "operator"
    engine.close()
    await store.close()
    bench.stores.remove(store)

    rig.station.hardware(1).limits.set(CLAIM, None)
    rig.station.hardware(1).limits.set("operator", None)
    again = await bench.store(state)
    second = SmartCharging(rig.station)
    await second.attach(again)
    second.start()
    await OperatorLimits(rig.station).attach(again)
    assert second.profiles == {42: profile}
    claims = rig.station.view(1).claims
    assert claims["operator"] == 9.5 and claims[CLAIM] == 10.0  # 30 s in: the 10 A period
    assert rig.station.view(1).limit.binding == "operator"
    assert second.clear(profile_id=42) == [42]
    await second.durable()
    rows = await again.call(lambda: again.db.execute("SELECT count(*) FROM charging_profiles").fetchone())
    assert rows[0] == 0
    second.close()


async def test_the_composite_schedule_is_what_the_claim_becomes(bench: Bench) -> None:
    rig = await bench.rig()
    engine = engine_for(rig)
    start = math.floor(rig.clock.time())
    engine.install(stepped(start))
    schedule = engine.composite(1, 90)
    assert schedule is not None
    assert schedule.periods == ((0, 13.0, None), (20, 10.0, None), (40, 0.0, None), (60, 8.0, None))
    for offset, amps, _ in schedule.periods:
        await rig.run(start + offset + 0.5 - rig.clock.time())
        assert rig.station.view(1).claims[CLAIM] == amps
    assert engine.composite(9, 60) is None
