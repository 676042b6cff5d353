"""Choosing one or three phases for solar charging, in simulated time.

First the choice alone (``PhaseChooser``) on a surplus that rises from 1 kW through 2 kW to
5 kW and falls back; then the whole chain on the energy rig: the house's grid meter, the
energy manager, the safety loop with its phase contactor and the simulated EV, whose draw on
one or three phases the grid meter sees.
"""

from __future__ import annotations

import pytest

from chargepoint.config.model import SolarConfig
from chargepoint.core.energy.load_manager import ConnectorLoad
from chargepoint.core.energy.phase_policy import PhaseChooser
from tests.unit.energy_rig import EnergyRig

VOLTS = 230.0
CONFIG = SolarConfig(mode="pv", enable_delay_s=60.0, disable_delay_s=180.0, min_switch_interval_s=60.0,
                     hysteresis_a=1.0)


def amps(watts: float) -> float:
    """A surplus in W as the energy manager counts it: amps summed over the phases."""
    return watts / VOLTS


def test_the_thresholds_are_six_amps_on_one_and_on_three_phases():
    chooser = PhaseChooser(CONFIG)
    assert chooser.up_a * VOLTS == pytest.approx(4140.0)  # 6 A x 3 x 230 V
    assert chooser.down_a * VOLTS == pytest.approx(3450.0)  # 5 A x 3 x 230 V: the hysteresis below


def test_surplus_rising_and_falling_switches_one_three_one_with_the_delays_and_the_interval():
    chooser = PhaseChooser(CONFIG)
    choices: list[tuple[float, int]] = []

    def run(watts: float, start: float, end: float) -> None:
        t = start
        while t < end:
            got = chooser.choose(1, "pv", amps(watts), t, drawing=watts >= 1400)
            if not choices or choices[-1][1] != got:
                choices.append((t, got))
            t += 1.0

    run(1000, 0, 600)  # 1 kW: one phase (and the solar claim will wait for 1.4 kW)
    run(2000, 600, 1200)  # 2 kW: one phase covers it at 8.7 A; three would need 4.1 kW
    run(5000, 1200, 1800)  # 5 kW: three phases after the enable delay
    run(3800, 1800, 2400)  # 3.8 kW: inside the hysteresis band, stays on three
    run(2000, 2400, 3000)  # 2 kW: back to one after the disable delay
    assert choices == [(0, 1), (1260, 3), (2580, 1)], choices
    assert chooser.states[1].switches == 2


def test_a_flickering_surplus_does_not_switch_more_than_once_per_interval():
    chooser = PhaseChooser(SolarConfig(mode="pv", enable_delay_s=0.0, disable_delay_s=0.0,
                                       min_switch_interval_s=300.0, hysteresis_a=1.0))
    switches = []
    for t in range(0, 1800):
        watts = 5000 if (t // 20) % 2 else 1500  # a cloud every 20 s
        got = chooser.choose(1, "pv", amps(watts), float(t), drawing=True)
        if not switches or switches[-1][1] != got:
            switches.append((t, got))
    gaps = [b[0] - a[0] for a, b in zip(switches, switches[1:], strict=False)]
    assert gaps and min(gaps) >= 300, switches


def test_with_no_current_flowing_the_choice_follows_the_surplus_at_once_but_keeps_the_interval():
    chooser = PhaseChooser(CONFIG)
    assert chooser.choose(1, "pv", amps(1000), 0.0) == 1
    assert chooser.choose(1, "pv", amps(5000), 30.0) == 1, "60 s since the last switch of KM2"
    assert chooser.choose(1, "pv", amps(5000), 60.0) == 3, "no enable delay: the paused EV starts on three"


def test_while_charging_a_switch_keeps_the_interval_from_the_last_start_or_pause():
    chooser = PhaseChooser(SolarConfig(mode="pv", enable_delay_s=10.0, disable_delay_s=10.0,
                                       min_switch_interval_s=60.0, hysteresis_a=1.0))
    assert chooser.choose(1, "pv", amps(2000), 0.0) == 1
    started = 100.0  # the solar controller started the charge on one phase
    for t in range(100, 160):
        assert chooser.choose(1, "pv", amps(5000), float(t), drawing=True, last_start_or_pause=started) == 1
    assert chooser.choose(1, "pv", amps(5000), 160.0, drawing=True, last_start_or_pause=started) == 3


def test_minpv_and_fast_use_three_phases():
    chooser = PhaseChooser(CONFIG)
    assert chooser.choose(1, "minpv", 0.0, 0.0) == 3
    assert chooser.choose(2, "fast", 0.0, 0.0) == 3
    # From pv on one phase, a switch to fast waits for the interval like any other switch.
    assert chooser.choose(3, "pv", 0.0, 0.0) == 1
    assert chooser.choose(3, "fast", 0.0, 30.0) == 1
    assert chooser.choose(3, "fast", 0.0, 60.0) == 3


def test_the_load_manager_counts_one_phase_on_l1_alone():
    idle_one = ConnectorLoad(1, True, phase_count=1)
    idle_three = ConnectorLoad(1, True, phase_count=3)
    idle_plain = ConnectorLoad(1, True)
    assert idle_one.phases(3) == (0,)
    assert idle_three.phases(3) == idle_plain.phases(3) == (0, 1, 2)
    drawing_three = ConnectorLoad(1, True, (7.0, 7.0, 7.0), phase_count=1)
    assert drawing_three.phases(3) == (0, 1, 2), "what flows counts over what the contactor is said to give"


# -------------------------------------------------------------------- the whole chain


def sunny_rig(surplus_w: float, *, phase_contactor: bool) -> EnergyRig:
    """A house with no load and a steady export of ``surplus_w`` (a constant PV), one 3-phase EV."""
    rig = EnergyRig(solar={"mode": "pv", "enable_delay_s": 30, "disable_delay_s": 60,
                           "min_switch_interval_s": 60},
                    house={"pv_peak_w": 0, "base_load_w": 0}, phase_contactor=phase_contactor)
    rig.house.switch_on("sun", -surplus_w, phases=3)
    return rig


async def test_two_kilowatts_of_surplus_charge_on_one_phase_and_the_sun_gives_more_than_without_switching():
    solar_wh = {}
    for with_km2 in (True, False):
        rig = sunny_rig(2000, phase_contactor=with_km2)
        rig.plug_all()
        await rig.run(600)
        world = rig.worlds[1]
        solar_wh[with_km2] = rig.energy.solar_wh
        if with_km2:
            assert rig.evses[1].status.phases == 1 and world.ev.phases == 1
            assert world.ev.current_a == pytest.approx(8.6, abs=0.2)  # 2 kW on L1
            assert world.phase_contactor.under_load == 0
            grid = rig.grid()
            assert abs(sum(grid)) * VOLTS < 300, grid  # the export is used, not bought
        else:
            assert world.ev.current_a == 0.0, "three phases need 4.1 kW: the EV waits"
        await rig.close()
    assert solar_wh[False] == 0.0
    # 2 kW for the ~9 minutes after the 30 s enable delay and the switch's pauses.
    assert solar_wh[True] > 250, solar_wh


async def test_surplus_up_and_down_switches_through_the_safety_loop_in_order_and_never_under_load():
    rig = sunny_rig(1000, phase_contactor=True)
    rig.plug_all()
    world, evse = rig.worlds[1], rig.evses[1]
    events: list[tuple[float, str]] = []
    last = {"phases": None, "pwm": None, "km1": None}

    def watch(r: EnergyRig) -> None:
        status = evse.status
        now = r.clock.monotonic()
        for key, value in (("phases", status.phases), ("pwm", status.pwm_duty < 100.0),
                           ("km1", status.contactor_closed)):
            if last[key] != value:
                last[key] = value
                events.append((now, f"{key} {value}"))
        if world.phase_contactor.switch_count and status.contactor_closed:
            assert world.phase_contactor.phases == (3 if status.phases == 3 else 1)

    await rig.run(300, watch)  # 1 kW: one phase, paused (below 1.4 kW)
    assert evse.status.phases == 1 and not evse.status.contactor_closed
    rig.house.switch_off("sun")
    rig.house.switch_on("sun", -2000, phases=3)
    await rig.run(300, watch)  # 2 kW: charging on one phase
    assert evse.status.contactor_closed and world.ev.phases == 1
    rig.house.switch_off("sun")
    rig.house.switch_on("sun", -6000, phases=3)
    await rig.run(300, watch)  # 6 kW: three phases
    assert evse.status.phases == 3 and evse.status.contactor_closed and world.ev.phases == 3
    up = [e for e in events if e[1] == "phases 3"][-1][0]
    rig.house.switch_off("sun")
    rig.house.switch_on("sun", -2000, phases=3)
    await rig.run(400, watch)  # back to 2 kW: one phase again
    assert evse.status.phases == 1 and evse.status.contactor_closed and world.ev.phases == 1
    down = [e for e in events if e[1] == "phases 1"][-1][0]
    assert down - up >= 60.0, "the minimum switch interval"
    assert world.phase_contactor.under_load == 0
    # Each switch: PWM off, KM1 open, phases, PWM on, KM1 closed, in that order.
    for switch_at in (up, down):
        before = [e for t, e in events if t <= switch_at][-3:]
        after = [e for t, e in events if t > switch_at][:2]
        assert before[-3:-1] == ["pwm False", "km1 False"], (switch_at, before)
        assert after == ["pwm True", "km1 True"], (switch_at, after)
    await rig.close()


async def test_the_status_shows_the_phases_per_connector_and_the_cli_says_them():
    from chargepoint.cli.control_mode import energy_lines

    rig = sunny_rig(2000, phase_contactor=True)
    rig.plug_all()
    await rig.run(120)
    status = rig.energy.status()
    connector = status["connectors"][0]
    assert connector["phases"] == 1 and connector["phases_words"] == "on 1 phase"
    assert "  connector 1: charging from surplus (1 switch(es)); on 1 phase" in energy_lines(status)
    rig.house.switch_off("sun")
    rig.house.switch_on("sun", -6000, phases=3)
    await rig.run(10)
    assert "3 in " in rig.energy.status()["connectors"][0]["phases_words"]
    seen: list[str] = []

    def words(r: EnergyRig) -> None:
        now = r.energy.status()["connectors"][0]["phases_words"]
        if not seen or seen[-1] != now:
            seen.append(now)

    await rig.run(40, words)
    assert "switching to 3 phases (EV paused)" in seen and seen[-1] == "on 3 phases", seen
    await rig.close()
    plain = sunny_rig(2000, phase_contactor=False)
    assert plain.energy.status()["connectors"][0]["phases"] is None


def test_the_fuse_budget_of_a_one_phase_connector_is_l1_s_alone():
    from chargepoint.core.energy.load_manager import LoadManager

    budget = (20.0, 4.0, 4.0)  # an oven on L2 and L3 leaves them 4 A
    one = LoadManager(3).split(budget, [ConnectorLoad(1, True, phase_count=1)], 0.0)
    three = LoadManager(3).split(budget, [ConnectorLoad(1, True, phase_count=3)], 0.0)
    assert one == {1: 20.0}, "on L1 alone it charges at what L1 leaves"
    assert three == {1: 0.0}, "on three phases 4 A is below 6 A: paused"


async def test_a_switch_to_three_phases_never_takes_a_loaded_phase_over_the_fuse():
    # PV on L1 (a one-phase inverter) gives 6 kW of surplus; an oven holds L2 at 13 A of a 16 A fuse.
    rig = EnergyRig(load={"main_fuse_a": 16, "margin_a": 1},
                    solar={"mode": "pv", "enable_delay_s": 10, "disable_delay_s": 10,
                           "min_switch_interval_s": 60},
                    house={"pv_peak_w": 0, "base_load_w": 0}, phase_contactor=True)
    rig.house.switch_on("sun", -9000, phases=1)
    rig.house.switch_on("oven", 3000, phases=1)
    rig.house.appliances["oven"] = (0.0, 3000.0, 0.0)  # on L2
    rig.plug_all()
    worst = [0.0, 0.0, 0.0]

    def watch(r: EnergyRig) -> None:
        for p, amps in enumerate(r.grid()):
            worst[p] = max(worst[p], amps)

    await rig.run(300, watch)
    evse = rig.evses[1]
    assert rig.energy.phases.states[1].wanted == 3, "6 kW of surplus asks for three phases"
    assert worst[1] <= 16.0, worst
    assert rig.claim(1, "load_manager") == 0.0, "L2 leaves 2 A: the EV waits on three phases"
    assert not evse.status.contactor_closed
    await rig.close()
