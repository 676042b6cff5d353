"""The supervisor's decisions in simulated time: requests, refusals and the orphan policy.

A ``SafetyStation`` over the physical simulation on a ManualClock, stepped by
hand: what the daemon asks is only a request, and when the daemon goes, a
charging connector goes on capped for the grace and then stops by itself.
"""

from __future__ import annotations

from typing import Any

import pytest

from chargepoint.config import parse
from chargepoint.safety.iec61851 import CpState
from chargepoint.supervisor import wire
from chargepoint.supervisor.hardware import build_simulation
from chargepoint.supervisor.sim import sim_action
from chargepoint.supervisor.station import ORPHAN_CLAIM, OrphanPolicy, SafetyStation
from chargepoint.supervisor.wire import WireError
from hal.clock import ManualClock

TICK = 0.01


def make(grace_s: float = 120.0, limit_a: float = 16.0, tmp_path: Any = None) -> tuple[SafetyStation, Any]:
    config = parse({"station": {"identity": "CP1", "state_dir": str(tmp_path), "max_current_a": 32},
                    "simulation": {"ev_max_current_a": 32},
                    "safety": {"orphan_grace_s": grace_s, "orphan_limit_a": limit_a}}, "<test>")
    clock = ManualClock()
    hardware = build_simulation(config, clock)
    station = SafetyStation(hardware.connectors, clock, OrphanPolicy(grace_s, limit_a), sim_action)
    return station, clock


def run(station: SafetyStation, clock: ManualClock, seconds: float) -> None:
    for _ in range(round(seconds / TICK)):
        clock.advance(TICK)
        for c in station.connectors.values():
            c.evse.step()
        station.tick()


def ask(station: SafetyStation, op: str, control: bool = True, **fields: Any) -> dict[str, Any]:
    request = wire.parse_request(wire.decode(wire.encode({"id": 1, "op": op, **fields})))
    return station.handle(request, control=control)


def charging(station: SafetyStation, clock: ManualClock) -> Any:
    """Plug in, grant energy, let the EV go to C: the contactor closed."""
    station.attach()
    ask(station, "sim", connector=1, action="plug")
    ask(station, "energy", connector=1, granted=True)
    run(station, clock, 3.0)
    c = station.connectors[1]
    assert c.evse.status.cp_state is CpState.C and c.evse.status.contactor_closed
    return c


def test_daemon_gone_charging_goes_on_capped_for_the_grace_then_stops(tmp_path):
    station, clock = make(grace_s=120.0, limit_a=16.0, tmp_path=tmp_path)
    c = charging(station, clock)
    assert c.evse.status.offered_a == 32.0
    station.detach()
    run(station, clock, 1.0)
    assert c.evse.status.contactor_closed and c.evse.status.offered_a == 16.0
    assert c.evse.status.binding_limit == ORPHAN_CLAIM
    run(station, clock, 118.0)
    assert c.evse.status.contactor_closed, "still inside the grace"
    assert 0 < station.orphan_left_s() <= 1.0
    run(station, clock, 1.5)
    status = c.evse.status
    assert not status.charging_allowed and status.pwm_duty == 100.0
    run(station, clock, 0.5)  # the EV sees no PWM, goes to B; the contactor opens
    assert not c.evse.status.contactor_closed
    assert station.orphan_left_s() is None


def test_a_daemon_back_within_the_grace_finds_its_grant_and_claims(tmp_path):
    station, clock = make(tmp_path=tmp_path)
    c = charging(station, clock)
    ask(station, "claim", connector=1, name="smart_charging", amps=10)
    run(station, clock, 0.5)
    duty = c.evse.status.pwm_duty
    station.detach()
    run(station, clock, 30.0)
    assert c.evse.status.pwm_duty == duty, "10 A is below the orphan cap: the duty does not change"
    station.attach()
    run(station, clock, 200.0)
    assert c.evse.status.contactor_closed and c.evse.status.charging_allowed
    assert c.limits.snapshot().get("smart_charging") == 10.0 and ORPHAN_CLAIM not in c.limits.snapshot()



def test_an_ev_that_leaves_during_the_grace_takes_the_grant_with_it(tmp_path):
    """The grant was that car's: a car plugged in next, still inside the grace, gets no energy until
    a daemon decides, and the daemon's hello says the EV left (its transaction ends as an unplug)."""
    station, clock = make(tmp_path=tmp_path)
    c = charging(station, clock)
    station.detach()
    run(station, clock, 1.0)
    assert ask(station, "state")["connectors"][0]["ev_left_at"] is None
    unplugged_at = clock.time()
    ask(station, "sim", connector=1, action="unplug")
    run(station, clock, 1.0)
    assert not c.evse.status.charging_allowed and not c.evse.status.contactor_closed
    seen_by = clock.time()
    ask(station, "sim", connector=1, action="plug")
    run(station, clock, 10.0)
    status = c.evse.status
    assert status.cp_state is CpState.B and not status.contactor_closed and status.pwm_duty == 100.0
    station.attach()
    # When it left, on the station's clock: the daemon ends that car's transaction then, not now.
    left_at = ask(station, "hello")["connectors"][0]["ev_left_at"]
    assert unplugged_at <= left_at <= seen_by < clock.time() - 9.0
    # That daemon is killed before it records the stop: the next one hears of it too.
    station.detach()
    run(station, clock, 1.0)
    station.attach()
    assert ask(station, "hello")["connectors"][0]["ev_left_at"] == left_at
    ask(station, "energy", connector=1, granted=True)  # the daemon decided: a new session
    assert ask(station, "state")["connectors"][0]["ev_left_at"] is None
    run(station, clock, 3.0)
    assert c.evse.status.contactor_closed


def test_with_the_daemon_attached_an_unplug_leaves_the_grant_to_the_daemon(tmp_path):
    """Attached, the daemon decides what an unplug ends (a transaction may outlive it)."""
    station, clock = make(tmp_path=tmp_path)
    c = charging(station, clock)
    ask(station, "sim", connector=1, action="unplug")
    run(station, clock, 1.0)
    assert c.evse.status.charging_allowed and not c.evse.status.contactor_closed
    assert ask(station, "state")["connectors"][0]["ev_left_at"] is None

def test_grace_zero_stops_at_once(tmp_path):
    station, clock = make(grace_s=0.0, tmp_path=tmp_path)
    c = charging(station, clock)
    station.detach()
    assert not c.evse.status.charging_allowed or not c.evse._allowed
    run(station, clock, 0.5)
    assert not c.evse.status.contactor_closed


def test_a_detach_without_energy_granted_starts_no_grace(tmp_path):
    station, clock = make(tmp_path=tmp_path)
    station.attach()
    station.detach()
    assert station.orphan_left_s() is None


@pytest.mark.parametrize(("op", "fields", "code"), [
    ("claim", {"connector": 1, "name": "operator", "amps": 40}, "refused"),  # above the 32 A rating
    ("claim", {"connector": 1, "name": "cable", "amps": 6}, "refused"),  # the supervisor's own claim
    ("claim", {"connector": 9, "name": "operator", "amps": 6}, "bad_field"),
    ("output_test", {"connector": 1, "contactor": True}, "refused"),  # state B: an EV is there
    ("lock", {"connector": 1, "locked": False}, "refused"),  # contactor closed
])
def test_refused_requests_change_nothing(tmp_path, op, fields, code):
    station, clock = make(tmp_path=tmp_path)
    c = charging(station, clock)
    before = (c.evse.status, c.limits.snapshot(), c.lock.locked())
    with pytest.raises(WireError) as refused:
        ask(station, op, **fields)
    assert refused.value.code == code
    run(station, clock, 0.5)
    after = c.evse.status
    assert (after.contactor_closed, after.pwm_duty, c.limits.snapshot(), c.lock.locked()) == \
        (before[0].contactor_closed, before[0].pwm_duty, before[1], before[2])


def test_a_claim_above_the_cable_is_refused_while_that_cable_is_in(tmp_path):
    station, clock = make(tmp_path=tmp_path)
    world = station.connectors[1].world
    world.pilot._cable_ohms = 680.0  # a 20 A cable
    station.attach()
    ask(station, "sim", connector=1, action="plug")
    run(station, clock, 0.5)
    with pytest.raises(WireError, match="20 A"):
        ask(station, "claim", connector=1, name="operator", amps=25)
    assert ask(station, "claim", connector=1, name="operator", amps=16)["resolved_a"] == 16.0


def test_closing_in_state_b_is_refused_and_energy_alone_does_not_close(tmp_path):
    station, clock = make(tmp_path=tmp_path)
    station.attach()
    world = station.connectors[1].world
    world.ev.target_soc = 0.0  # a full battery: the EV stays in B (it asks for no energy)
    world.ev.plug_in()
    ask(station, "energy", connector=1, granted=True)
    run(station, clock, 2.0)
    c = station.connectors[1]
    assert c.evse.status.cp_state is CpState.B and c.evse.status.pwm_duty < 100.0
    assert not c.evse.status.contactor_closed
    with pytest.raises(WireError):
        ask(station, "output_test", connector=1, contactor=True, hold_s=5)
    assert not c.evse.status.contactor_closed


def test_an_unavailable_connector_refuses_energy(tmp_path):
    station, clock = make(tmp_path=tmp_path)
    c = charging(station, clock)
    ask(station, "availability", connector=1, operative=False)
    run(station, clock, 0.5)
    assert not c.evse.status.contactor_closed
    with pytest.raises(WireError, match="unavailable"):
        ask(station, "energy", connector=1, granted=True)


def test_a_read_only_peer_reads_and_changes_nothing(tmp_path):
    station, clock = make(tmp_path=tmp_path)
    c = charging(station, clock)
    assert ask(station, "state", control=False)["connectors"][0]["status"]["contactor"] is True
    for op, fields in [("energy", {"connector": 1, "granted": False}),
                       ("claim", {"connector": 1, "name": "x", "amps": 6}),
                       ("clear_faults", {"connector": 1}), ("sim", {"connector": 1, "action": "unplug"})]:
        with pytest.raises(WireError) as refused:
            ask(station, op, control=False, **fields)
        assert refused.value.code == "read_only"
    run(station, clock, 0.5)
    assert c.evse.status.contactor_closed and c.evse.status.charging_allowed


def test_garbage_collected_between_steps_reaches_the_oldest_generation():
    """Cyclic garbage that survived into the oldest generation is freed too, by the collections the
    loop runs between its steps (with the automatic collector off, nothing else would)."""
    import gc
    import weakref

    from chargepoint.supervisor.realtime import (
        GC_FULL_EVERY,
        GC_MIDDLE_EVERY,
        GC_YOUNG_THRESHOLD,
        GarbagePolicy,
    )

    class Node:
        pass

    policy = GarbagePolicy()
    policy.start()
    try:
        cycle = Node()
        cycle.me = cycle  # type: ignore[attr-defined]
        gone = weakref.ref(cycle)
        gc.collect(1)  # survives two collections: now in the oldest generation
        gc.collect(1)
        del cycle
        for _ in range(GC_MIDDLE_EVERY * GC_FULL_EVERY):
            alive = [Node() for _ in range(GC_YOUNG_THRESHOLD)]  # what a while of steps allocates
            policy.between_steps()
            del alive
        assert gone() is None and policy.collections >= GC_MIDDLE_EVERY * GC_FULL_EVERY
    finally:
        gc.unfreeze()
        gc.enable()


def test_a_claim_clamped_to_one_cable_is_sent_again_for_the_next_cable():
    """The daemon's 32 A limit went out as 20 A while a 20 A cable was in (the supervisor refuses
    more); with the next car's 32 A cable it must reach the supervisor as 32 A again."""
    from chargepoint.supervisor.claims import RemoteClaims

    sent: list[tuple[str, float | None]] = []
    claims = RemoteClaims(lambda name, amps: sent.append((name, amps)))
    claims.mirror({"station": 32.0, "cable": 20.0}, everything=False)
    claims.set("smart_charging", 32.0)
    assert sent == [("smart_charging", 20.0)] and claims.get("smart_charging") == 32.0
    claims.mirror({"station": 32.0}, everything=False)  # unplugged
    claims.mirror({"station": 32.0, "cable": 32.0}, everything=False)  # the next cable
    assert sent[-1] == ("smart_charging", 32.0)
    claims.set("smart_charging", None)
    assert sent[-1] == ("smart_charging", None)
