"""A remote start with a charging profile: the station takes the profile with the start, or neither."""

from __future__ import annotations

from chargepoint.core.energy.schedule import ChargingProfile, Kind, Period, Purpose, RateUnit, Schedule
from chargepoint.core.events import Activity
from chargepoint.core.remote_start import remote_start
from tests.unit import test_station
from tests.unit.test_smart_charging import engine_for
from tests.unit.test_station import REMOTE, Bench

bench = test_station.bench  # the fixture: started rigs and stores, closed after each test


def tx_profile(pid: int, purpose: Purpose = Purpose.TX, amps: float = 10.0) -> ChargingProfile:
    return ChargingProfile(pid, 1, purpose, 0, Kind.RELATIVE, Schedule(RateUnit.AMPS, (Period(0, amps),)))


async def test_a_profile_the_station_would_not_take_refuses_the_start(bench: Bench) -> None:
    rig = await bench.rig()
    engine = engine_for(rig)
    result = remote_start(rig.station, engine, REMOTE, 1, tx_profile(5, Purpose.TX_DEFAULT))
    assert not result.accepted and "its purpose must be TxProfile" in result.refusal
    assert rig.station.view(1).session is None and 5 not in engine.profiles, "neither start nor profile"


async def test_a_start_that_is_taken_installs_its_profile_for_the_evse_that_took_it(bench: Bench) -> None:
    rig = await bench.rig()
    engine = engine_for(rig)
    result = remote_start(rig.station, engine, REMOTE, None, tx_profile(6, amps=8.0))
    assert result.accepted and result.evse_id == 1
    assert engine.profiles[6].evse_id == 1, "installed before any energy flows, pending its transaction"
    rig.world.plug_in()
    await rig.run_until(lambda: rig.status.activity == Activity.CHARGING, 3.0, "charging")
    assert engine.profiles[6].transaction_id == rig.started[-1].local_id
    assert rig.station.view(1).limit.amps == 8.0


async def test_a_refused_start_installs_no_profile(bench: Bench) -> None:
    rig = await bench.rig()
    engine = engine_for(rig)
    assert remote_start(rig.station, engine, REMOTE, 9, tx_profile(7)).accepted is False  # no EVSE 9
    assert 7 not in engine.profiles
