"""A 2.1 dynamic charging limit moving the pilot, in simulated time (the rig of ``test_station.py``).

The profile arrives in 2.1 words (``chargingProfileKind`` Dynamic, one period
ChargingOnly), is installed in the core's smart charging engine, and each
update of its limit (UpdateDynamicSchedule's, or a pulled one) reaches the
pilot within a tick as the ``smart_charging`` claim, which the status shows
binding; below 6 A the EV pauses. It survives a restart of the engine in the
real state database, still dynamic, with its last limit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chargepoint.core.energy.smart_charging import CLAIM, SmartCharging
from chargepoint.core.events import Activity
from chargepoint.protocol.v21.dynamic import profile_from_21, update_limit
from chargepoint.protocol.v201.smart_charging import Refused
from chargepoint.safety.iec61851 import duty_for_current
from tests.unit import test_station
from tests.unit.test_smart_charging import engine_for
from tests.unit.test_station import TICK, Bench

bench = test_station.bench  # the fixture: started rigs and stores, closed after each test


def dynamic(limit: float, mode: str = "ChargingOnly", **period: Any) -> dict[str, Any]:
    """A 2.1 dynamic profile as the library hands it over (snake_case)."""
    return {"id": 5, "stack_level": 0, "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Dynamic", "dyn_update_interval": 60,
            "charging_schedule": [{"id": 1, "charging_rate_unit": "A", "charging_schedule_period": [
                {"start_period": 0, "limit": limit, "operation_mode": mode, **period}]}]}


async def test_each_update_moves_the_pilot_within_a_tick(bench: Bench, tmp_path: Path) -> None:
    rig = await bench.rig()
    engine = engine_for(rig)
    store = await bench.store(tmp_path / "db")
    engine.store = store
    await rig.charge()
    profile = profile_from_21(dynamic(16), 1, rig.clock.time())
    assert profile.dynamic and profile.dynamic_pull_s == 60
    assert engine.install(profile) is None
    await rig.run(2 * TICK)
    assert rig.world.pilot.duty_percent == duty_for_current(16)
    for amps in (10.0, 7.5, 13.0):
        assert engine.update_dynamic(5, update_limit({"limit": amps})) is None
        await rig.run(2 * TICK)
        assert rig.world.pilot.duty_percent == duty_for_current(amps), amps
        view = rig.station.view(1)
        assert (view.claims[CLAIM], view.limit.binding) == (amps, CLAIM)
    assert engine.update_dynamic(5, 4.0) is None  # below 6 A: the EV waits, the transaction goes on
    await rig.run(2 * TICK)
    assert rig.world.pilot.duty_percent == 100.0
    await rig.run_until(lambda: rig.status.activity == Activity.SUSPENDED_EVSE, 3.0, "paused")
    assert engine.update_dynamic(5, 12.0) is None
    await rig.run_until(lambda: rig.status.activity == Activity.CHARGING and rig.world.contactor.closed,
                        3.0, "charging again")
    assert abs(rig.world.ev.current_a - 12.0) < 0.01
    await engine.durable()

    again = SmartCharging(rig.station)
    await again.attach(store)
    kept = again.profiles[5]
    assert kept.dynamic and kept.dynamic_pull_s == 60 and kept.schedule.periods[0].limit == 12.0


async def test_a_profile_that_is_not_dynamic_cannot_be_moved(bench: Bench) -> None:
    rig = await bench.rig()
    engine = engine_for(rig)
    fixed = profile_from_21({**dynamic(16), "charging_profile_kind": "Absolute",
                             "charging_schedule": [{**dynamic(16)["charging_schedule"][0],
                                                    "start_schedule": "2026-01-01T00:00:00Z"}]}, 1, 0.0)
    assert engine.install(fixed) is None
    assert engine.update_dynamic(5, 8.0) == "there is no dynamic charging profile 5"
    assert engine.update_dynamic(6, 8.0) == "there is no dynamic charging profile 6"


@pytest.mark.parametrize(("profile", "words"), [
    (dynamic(10, "CentralSetpoint"), "operation mode CentralSetpoint"),
    (dynamic(10, limit_l2=5.0), "limit_l2"),
    (dynamic(10, setpoint=3.0), "setpoint"),
])
def test_what_needs_bidirectional_power_or_per_phase_limits_is_refused(profile: dict[str, Any],
                                                                       words: str) -> None:
    with pytest.raises(Refused, match=words):
        profile_from_21(profile, 1, 0.0)


def test_idle_means_no_energy_and_an_update_without_a_limit_is_refused() -> None:
    idle = profile_from_21(dynamic(16, "Idle"), 1, 0.0)
    assert idle.schedule.periods[0].limit == 0.0
    with pytest.raises(Refused, match="no limit"):
        update_limit({"setpoint": 3.0})
    with pytest.raises(Refused, match="setpoint"):
        update_limit({"limit": 8.0, "setpoint": 3.0})
