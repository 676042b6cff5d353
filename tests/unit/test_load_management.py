"""Load management in simulated time: the main fuse against a kettle and an oven, a failing grid
meter, two connectors sharing one fuse; and the fair split on its own."""

from __future__ import annotations

import logging

import pytest

from chargepoint.core.energy.load_manager import RESUME_AFTER_S, ConnectorLoad, LoadManager, house_load
from tests.unit.energy_rig import EnergyRig

FUSE = 25.0
MARGIN = 1.0
#: From the grid meter seeing an overload to the claim lowering it (IEC 61851 then gives the EV 5 s).
REACTION_BOUND_S = 2.0
NIGHT = {"pv_peak_w": 0, "day_start_h": 23, "base_load_w": 400}


def test_the_house_load_is_the_grid_less_the_station_and_the_split_is_equal():
    connectors = [ConnectorLoad(1, True, (10.0, 10.0, 10.0)), ConnectorLoad(2, True, (10.0, 10.0, 10.0))]
    assert house_load((25.0, 22.0, 20.0), connectors) == (5.0, 2.0, 0.0)
    manager = LoadManager()
    head = manager.headroom((25.0, 22.0, 20.0), connectors, FUSE, MARGIN)
    assert head == (19.0, 22.0, 24.0)
    assert manager.split(head, connectors, now=0.0) == {1: 9.5, 2: 9.5}
    # A 1-phase EV on L1 shares L1 only: the 3-phase one gets the least of its phases' shares.
    mixed = [ConnectorLoad(1, True, (10.0, 0.0, 0.0)), ConnectorLoad(2, True, (10.0, 10.0, 10.0))]
    assert manager.split((19.0, 22.0, 24.0), mixed, now=0.0) == {1: 9.5, 2: 9.5}
    assert manager.split((30.0, 8.0, 24.0), mixed, now=0.0) == {1: 15.0, 2: 8.0}


def test_a_connector_that_cannot_get_6_a_is_paused_rather_than_all_starving():
    manager = LoadManager()
    drawing = (8.0, 8.0, 8.0)
    plugged = [ConnectorLoad(1, True, drawing), ConnectorLoad(2, True, drawing), ConnectorLoad(3, False)]
    claims = manager.split((10.0, 10.0, 10.0), plugged, now=0.0)
    assert claims[1] == 10.0 and claims[2] == 0.0, claims
    assert set(manager.paused) == {2}
    # Enough again, but the paused one waits a minute and needs 6 A plus a margin.
    assert manager.split((14.0, 14.0, 14.0), plugged, now=30.0)[2] == 0.0
    assert manager.split((12.5, 12.5, 12.5), plugged, now=RESUME_AFTER_S)[2] == 0.0
    first = manager.split((14.0, 14.0, 14.0), plugged, now=RESUME_AFTER_S + 1)
    assert first[1] == 7.0 and first[2] == 0.0, "connector 1 lowers first: its EV may still draw 10 A"
    back = manager.split((14.0, 14.0, 14.0), plugged, now=RESUME_AFTER_S + 2)
    assert back[1] == back[2] == 7.0 and not manager.paused
    # One that had not started when it was paused switched nothing: it need not wait.
    fresh = LoadManager()
    idle = [ConnectorLoad(1, True), ConnectorLoad(2, True)]
    assert fresh.split((6.0, 6.0, 6.0), idle, now=0.0) == {1: 6.0, 2: 0.0}
    assert fresh.split((14.0, 14.0, 14.0), idle, now=1.0) == {1: 7.0, 2: 7.0}


def test_offers_never_add_up_above_the_budget_while_an_ev_follows_a_lowered_one():
    manager = LoadManager()
    budget = (20.0, 20.0, 20.0)
    # One EV charging, the other connector empty: the charging one takes it all, the empty one is
    # offered what is left (nothing), so an EV plugged in there cannot add to the sum.
    one = [ConnectorLoad(1, True, (20.0, 20.0, 20.0)), ConnectorLoad(2, False)]
    assert manager.split(budget, one, now=0.0) == {1: 20.0, 2: 0.0}
    both = [ConnectorLoad(1, True, (20.0, 20.0, 20.0)), ConnectorLoad(2, True)]
    claims = manager.split(budget, both, now=1.0)
    assert claims == {1: 10.0, 2: 0.0}, "the newcomer waits until connector 1 has come down"
    followed = [ConnectorLoad(1, True, (10.0, 10.0, 10.0)), ConnectorLoad(2, True)]
    assert manager.split(budget, followed, now=2.0) == {1: 10.0, 2: 10.0}
    # Alone, an empty connector is offered the whole headroom: a session starts at it, not above.
    alone = LoadManager()
    assert alone.split((17.3, 18.0, 19.0), [ConnectorLoad(1, False)], now=0.0) == {1: 17.3}


def test_every_split_keeps_held_and_new_offers_within_the_budget():
    """Random steps of the house load and plugs: the offers never add up above the budget, and no rise
    adds to what drawing EVs may still take from their previous offers."""
    import random
    rnd = random.Random(5)
    manager = LoadManager()
    currents: dict[int, float] = {1: 0.0, 2: 0.0, 3: 0.0}
    plugged = {1: False, 2: False, 3: False}
    for step in range(2000):
        budget = rnd.choice([8.0, 14.0, 19.0, 24.0, 30.0])
        if rnd.random() < 0.1:
            n = rnd.randint(1, 3)
            plugged[n] = not plugged[n]
            currents[n] = 0.0
        loads = [ConnectorLoad(n, plugged[n], (currents[n],) * 3) for n in (1, 2, 3)]
        before = dict(manager.claims)
        claims = manager.split((budget,) * 3, loads, now=float(step))
        held = sum(max(before.get(c.evse_id, 0.0), claims[c.evse_id]) if c.drawing else claims[c.evse_id]
                   for c in loads)
        following = sum(before.get(c.evse_id, 0.0) for c in loads if c.drawing)
        assert sum(claims.values()) <= budget + 1e-9, (step, budget, claims)
        # Above the budget only while EVs follow a lowered offer, and never by a rise.
        assert held <= max(budget, following) + 1e-9, (step, budget, before, claims, loads)
        for n in (1, 2, 3):  # the EVs follow the new offers before the next reading
            currents[n] = claims[n] if plugged[n] else 0.0


async def test_a_kettle_and_an_oven_never_hold_the_fuse_above_its_rating_longer_than_the_bound():
    rig = EnergyRig(load={"main_fuse_a": FUSE, "margin_a": MARGIN}, house=NIGHT)
    over_since: list[float | None] = [None]
    longest = [0.0]
    peak = [0.0]

    def watch(r: EnergyRig) -> None:
        now, worst = r.clock.monotonic(), max(r.grid())
        peak[0] = max(peak[0], worst)
        if worst > FUSE:
            over_since[0] = over_since[0] if over_since[0] is not None else now
            longest[0] = max(longest[0], now - over_since[0])
        else:
            over_since[0] = None

    try:
        rig.plug_all()
        await rig.run(15.5, watch)  # the appliances come between two grid readings, as they would
        charging = rig.worlds[1].ev.current_a
        assert charging >= 20, "before the kettle, the EV takes what the fuse leaves"
        rig.house.switch_on("kettle", 2300)          # 10 A on L1
        await rig.run(20, watch)
        assert rig.limits[1].resolve().binding == "load_manager"
        rig.house.switch_on("oven", 4140, phases=3)   # 6 A on each phase: L1 leaves about 7 A
        await rig.run(20, watch)
        with_both = rig.worlds[1].ev.current_a
        assert 6 <= with_both <= charging - 15, with_both
        assert max(rig.grid()) <= FUSE - MARGIN + 0.1
        rig.house.switch_off("kettle")
        rig.house.switch_off("oven")
        await rig.run(10, watch)
        assert rig.worlds[1].ev.current_a == pytest.approx(charging, abs=0.5), "back up once they are off"
    finally:
        await rig.close()
    assert peak[0] > FUSE, "the appliances did overload the fuse for a moment (else the test proves nothing)"
    assert longest[0] <= REACTION_BOUND_S, f"fuse above {FUSE} A for {longest[0]:.2f} s"


async def test_a_failing_grid_meter_falls_back_is_reported_once_and_recovers(caplog):
    caplog.set_level(logging.INFO, logger="chargepoint.core.energy.manager")
    rig = EnergyRig(load={"main_fuse_a": FUSE, "fallback_a": 8, "stale_after_s": 5}, house=NIGHT)
    try:
        rig.plug_all()
        await rig.run(10)
        normal = rig.claim(1, "load_manager")
        assert normal is not None and normal > 8
        rig.house.failing = True
        await rig.run(3)
        assert rig.claim(1, "load_manager") == normal, "a few failed reads: the last decision holds"
        assert rig.energy.status()["grid_meter"]["state"] == "failing"
        await rig.run(30)
        status = rig.energy.status()["grid_meter"]
        assert rig.claim(1, "load_manager") == 8.0 and rig.worlds[1].ev.current_a == 8.0
        assert status["state"] == "fallback" and status["fallbacks"] == 1 and status["failures"] >= 30
        assert "no_answer" in status["last_error"]
        warnings = [r for r in caplog.records if "no good reading" in r.getMessage()]
        assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING, "said once, not per read"
        rig.house.failing = False
        await rig.run(3)
        assert rig.claim(1, "load_manager") == normal
        assert rig.energy.status()["grid_meter"]["state"] == "ok"
        assert any("reads again" in r.getMessage() for r in caplog.records)
    finally:
        await rig.close()


async def test_two_connectors_share_one_fuse_fairly_and_pause_one_when_both_cannot_get_6_a():
    rig = EnergyRig(connectors=2, load={"main_fuse_a": 20, "margin_a": 1}, house=NIGHT)
    try:
        rig.plug_all()
        await rig.run(15)
        a, b = rig.worlds[1].ev.current_a, rig.worlds[2].ev.current_a
        assert a == b and 8 <= a <= 9.5, (a, b)
        assert max(rig.grid()) <= 20 - 1 + 0.1
        rig.house.switch_on("kettle", 2000)   # L1: 19 - 0.9 (house) - 8.7 = 9.4 A for two: 4.7 each
        await rig.run(5)
        assert rig.claim(2, "load_manager") == 0.0 and not rig.worlds[2].contactor.closed
        assert rig.worlds[1].ev.current_a >= 9.0, "connector 1 gets the whole headroom"
        assert max(rig.grid()) <= 20 - 1 + 0.1
        paused_at = rig.clock.monotonic()
        rig.house.switch_off("kettle")
        await rig.run(30)
        assert not rig.worlds[2].contactor.closed, "not back within a minute of the pause"
        await rig.run(40)
        assert rig.worlds[2].contactor.closed and rig.worlds[1].ev.current_a == rig.worlds[2].ev.current_a
        opened = max(t for t, evse_id, closed in rig.switches if evse_id == 2 and not closed)
        back = next(t for t, evse_id, closed in rig.switches if evse_id == 2 and closed and t > paused_at)
        # The pause is decided a reaction time before the contactor opens; the return likewise.
        assert back - opened >= RESUME_AFTER_S - 1.0, (opened, back)
    finally:
        await rig.close()


async def test_an_ev_plugged_in_starts_at_the_headroom_and_a_second_never_lifts_the_sum_over_the_fuse():
    rig = EnergyRig(connectors=2, load={"main_fuse_a": FUSE, "margin_a": MARGIN}, house=NIGHT)
    peak = [0.0]

    def watch(r: EnergyRig) -> None:
        peak[0] = max(peak[0], max(r.grid()))

    try:
        await rig.run(3.3, watch)  # the first reading is in; plug in between two of them
        rig.worlds[1].plug_in()
        rig.evses[1].allow()
        await rig.run(10, watch)
        first = rig.worlds[1].ev.current_a
        assert first >= 20, "alone, the EV takes what the fuse leaves from the start"
        assert peak[0] <= FUSE - MARGIN + 0.1, peak[0]
        rig.worlds[2].plug_in()
        rig.evses[2].allow()
        await rig.run(10, watch)
        a, b = rig.worlds[1].ev.current_a, rig.worlds[2].ev.current_a
        assert a == b and a >= 10, (a, b)
        assert peak[0] <= FUSE - MARGIN + 0.1, f"the second EV lifted a phase to {peak[0]:.1f} A"
        closes = [(t, e) for t, e, closed in rig.switches if closed]
        assert [e for _, e in closes] == [1, 2] and len(rig.switches) == 2, "no chatter at plug-in"
    finally:
        await rig.close()


async def test_an_error_applying_a_reading_falls_back_and_the_manager_goes_on(caplog):
    caplog.set_level(logging.INFO, logger="chargepoint.core.energy.manager")
    rig = EnergyRig(load={"main_fuse_a": FUSE, "fallback_a": 8}, house=NIGHT)
    broken = [True]
    healthy_loads = rig.energy.connectors.loads

    def loads():  # a fault injected where the station's view is read
        if broken[0] and rig.clock.monotonic() > 5:
            raise RuntimeError("view unreadable")
        return healthy_loads()

    rig.energy.connectors.loads = loads  # type: ignore[method-assign]
    try:
        rig.plug_all()
        await rig.run(4)
        normal = rig.claim(1, "load_manager")
        assert normal is not None and normal > 8
        broken[0] = True
        await rig.run(5)
        assert rig.claim(1, "load_manager") == 8.0, "the fallback, not a frozen claim"
        errors = [r for r in caplog.records if "could not be applied" in r.getMessage()]
        assert len(errors) == 1 and errors[0].levelno == logging.ERROR, "said once, not every reading"
        broken[0] = False
        await rig.run(3)
        assert rig.claim(1, "load_manager") == normal, "the manager kept running"
    finally:
        await rig.close()
