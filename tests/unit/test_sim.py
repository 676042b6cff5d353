"""The simulated hardware must behave physically: exact volts, amps and watt-hours."""

from __future__ import annotations

import asyncio
import math
import threading

import pytest

from hal.clock import ManualClock
from hal.interfaces import (
    MeterFailure,
    MeterFailureKind,
    MeterReading,
    PilotLevels,
)
from hal.sim.world import SimEV, SimMeter, SimWorld

V = 230.0
REACTION_S = 0.3
SETTLE_S = 0.03


def make(ev: SimEV | None = None, **world_kw: object) -> tuple[ManualClock, SimWorld]:
    clock = ManualClock()
    return clock, SimWorld(clock, ev=ev, **world_kw)  # type: ignore[arg-type]


def charging(duty: float = 26.7, **ev_kw: object) -> tuple[ManualClock, SimWorld]:
    """A world whose EV is in C with the contacts settled closed."""
    clock, world = make(SimEV(**ev_kw))  # type: ignore[arg-type]
    world.plug_in()
    world.pilot.set_pwm(duty)
    clock.advance(REACTION_S)
    assert world.ev.state == "C"
    world.contactor.set_closed(True)
    clock.advance(SETTLE_S)
    assert world.contactor.closed
    return clock, world


def read(meter: SimMeter) -> MeterReading | MeterFailure:
    return asyncio.run(meter.read())


def reading(meter: SimMeter) -> MeterReading:
    result = read(meter)
    assert isinstance(result, MeterReading)
    return result


# --- pilot ------------------------------------------------------------------


def test_pilot_unplugged_steady_and_pwm() -> None:
    _, world = make()
    assert world.pilot.read() == PilotLevels(12.0, 12.0)
    world.pilot.set_pwm(50.0)
    assert world.pilot.read() == PilotLevels(12.0, -12.0)


def test_pilot_follows_ev_states_b_c_and_back() -> None:
    clock, world = make()
    world.plug_in()
    assert world.pilot.read() == PilotLevels(9.0, 9.0)
    world.pilot.set_pwm(50.0)
    assert world.pilot.read() == PilotLevels(9.0, -12.0)
    clock.advance(REACTION_S)
    assert world.pilot.read() == PilotLevels(6.0, -12.0)
    world.pilot.set_pwm(100.0)
    assert world.pilot.read() == PilotLevels(6.0, 6.0)
    clock.advance(REACTION_S)
    assert world.pilot.read() == PilotLevels(9.0, 9.0)


def test_pilot_state_d_for_ev_needing_ventilation() -> None:
    clock, world = make(SimEV(needs_ventilation=True))
    world.plug_in()
    world.pilot.set_pwm(50.0)
    clock.advance(REACTION_S)
    assert world.ev.state == "D"
    assert world.pilot.read() == PilotLevels(3.0, -12.0)


@pytest.mark.parametrize("plugged", [False, True])
def test_pilot_negative_reads_minus_12(plugged: bool) -> None:
    _, world = make()
    if plugged:
        world.plug_in()
    world.pilot.set_negative()
    assert world.pilot.read() == PilotLevels(-12.0, -12.0)
    assert world.pilot.duty_percent == 0.0


def test_missing_diode_mirrors_the_negative_plateau() -> None:
    clock, world = make(SimEV(diode=False))
    world.pilot.set_pwm(50.0)
    assert world.pilot.read() == PilotLevels(12.0, -12.0)  # no EV, no load
    world.plug_in()
    assert world.pilot.read() == PilotLevels(9.0, -9.0)
    clock.advance(REACTION_S)
    assert world.pilot.read() == PilotLevels(6.0, -6.0)
    world.ev.diode = True
    assert world.pilot.read() == PilotLevels(6.0, -12.0)
    world.ev.diode = False
    world.pilot.set_pwm(100.0)
    assert world.pilot.read() == PilotLevels(6.0, 6.0)


def test_short_circuit_reads_zero_and_stops_the_ev() -> None:
    clock, world = charging()
    world.ev.short_circuit = True
    assert world.pilot.read() == PilotLevels(0.0, 0.0)
    assert world.ev.current_a == 0.0
    clock.advance(REACTION_S)
    assert world.ev.state == "B"
    world.pilot.set_negative()
    assert world.pilot.read() == PilotLevels(0.0, 0.0)
    world.ev.short_circuit = False
    assert world.pilot.read() == PilotLevels(-12.0, -12.0)


@pytest.mark.parametrize("duty", [-0.1, 100.1, math.nan])
def test_set_pwm_rejects_duty_outside_0_to_100(duty: float) -> None:
    _, world = make()
    world.pilot.set_pwm(40.0)
    with pytest.raises(ValueError):
        world.pilot.set_pwm(duty)
    assert world.pilot.duty_percent == 40.0


def test_proximity_resistor_only_while_plugged() -> None:
    _, world = make(cable_ohms=680.0)
    assert world.pilot.read_proximity_ohms() is None
    world.plug_in()
    assert world.pilot.read_proximity_ohms() == 680.0
    world.unplug()
    assert world.pilot.read_proximity_ohms() is None
    _, tethered = make(cable_ohms=None)
    tethered.plug_in()
    assert tethered.pilot.read_proximity_ohms() is None


# --- EV behaviour -------------------------------------------------------------


def test_ev_closes_s2_only_with_pwm_after_reaction_time() -> None:
    clock, world = make()
    world.plug_in()
    clock.advance(60.0)
    assert world.ev.state == "B" and not world.ev.s2_closed
    world.pilot.set_pwm(26.7)
    clock.advance(REACTION_S - 0.001)
    assert world.ev.state == "B"
    clock.advance(0.002)
    assert world.ev.state == "C" and world.ev.s2_closed


def test_ev_stops_at_once_and_opens_s2_after_reaction_when_pwm_ends() -> None:
    clock, world = charging()
    assert world.ev.current_a == 16.0
    world.pilot.set_pwm(100.0)
    assert world.ev.current_a == 0.0
    clock.advance(REACTION_S - 0.001)
    assert world.ev.state == "C"
    clock.advance(0.002)
    assert world.ev.state == "B"


def test_ev_forgets_a_decision_revoked_within_its_reaction_time() -> None:
    clock, world = make()
    world.plug_in()
    world.pilot.set_pwm(50.0)
    clock.advance(REACTION_S / 2)
    world.pilot.set_pwm(100.0)
    clock.advance(REACTION_S)
    assert world.ev.state == "B"


@pytest.mark.parametrize(
    ("duty", "amps"),
    [
        (8.0, 6.0),
        (9.9, 6.0),
        (10.0, 6.0),
        (26.7, 16.02),
        (50.0, 30.0),
        (85.0, 51.0),
        (90.0, 65.0),
        (96.0, 80.0),
        (97.0, 80.0),
    ],
)
def test_ev_decodes_offered_current_from_duty(duty: float, amps: float) -> None:
    _, world = charging(duty, max_current_a=100.0)
    assert world.ev.current_a == pytest.approx(amps, abs=1e-9)


@pytest.mark.parametrize(("duty", "amps"), [(26.7, 16.0), (90.0, 16.0), (20.0, 12.0)])
def test_ev_draws_at_most_its_own_maximum(duty: float, amps: float) -> None:
    _, world = charging(duty, max_current_a=16.0)
    assert world.ev.current_a == pytest.approx(amps, abs=1e-9)


@pytest.mark.parametrize("duty", [2.0, 5.0, 7.5, 97.5, 99.9, 100.0])
def test_ev_does_not_charge_on_invalid_duty(duty: float) -> None:
    clock, world = make()
    world.plug_in()
    world.contactor.set_closed(True)
    world.pilot.set_pwm(duty)
    clock.advance(60.0)
    assert world.ev.state == "B"
    assert world.ev.current_a == 0.0
    assert world.meter.energy_wh == 0.0


@pytest.mark.parametrize("soc", [0.8, 0.9])
def test_full_ev_does_not_close_s2(soc: float) -> None:
    clock, world = make(SimEV(soc=soc, target_soc=0.8))
    world.plug_in()
    world.pilot.set_pwm(50.0)
    world.contactor.set_closed(True)
    clock.advance(60.0)
    assert world.ev.state == "B"
    assert world.ev.soc == soc
    assert world.meter.energy_wh == 0.0


def test_unplug_is_state_a_at_once() -> None:
    clock, world = charging()
    energy = world.meter.energy_wh
    world.unplug()
    assert world.ev.state == "A" and not world.ev.plugged
    assert world.ev.current_a == 0.0
    assert world.pilot.read() == PilotLevels(12.0, -12.0)
    clock.advance(3600.0)
    assert world.meter.energy_wh == energy


def test_replugged_ev_arrives_with_s2_open() -> None:
    _, world = charging()
    world.unplug()
    world.plug_in()
    assert world.ev.state == "B"
    assert world.ev.current_a == 0.0


def test_ev_belongs_to_one_world() -> None:
    ev = SimEV()
    make(ev)
    with pytest.raises(ValueError):
        make(ev)


@pytest.mark.parametrize(
    "kw",
    [{"phases": 2}, {"soc": 1.2}, {"capacity_wh": 0.0}, {"max_current_a": 0.0}],
)
def test_ev_rejects_unphysical_parameters(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        SimEV(**kw)  # type: ignore[arg-type]


# --- energy and battery -------------------------------------------------------


@pytest.mark.parametrize(("phases", "watts"), [(3, 11_040.0), (1, 3_680.0)])
def test_energy_is_v_times_i_times_phases_times_t(phases: int, watts: float) -> None:
    clock, world = charging(26.7, phases=phases)
    start = world.meter.energy_wh
    soc = world.ev.soc
    clock.advance(3600.0)
    assert world.meter.energy_wh - start == pytest.approx(watts, rel=1e-9)
    assert world.ev.soc - soc == pytest.approx(watts / 60_000.0, rel=1e-9)


def test_no_energy_with_contactor_open() -> None:
    clock, world = make()
    world.plug_in()
    world.pilot.set_pwm(26.7)
    clock.advance(3600.0)
    assert world.ev.state == "C"
    assert world.ev.current_a == 0.0
    assert world.meter.energy_wh == 0.0
    assert world.ev.soc == 0.5


def test_contacts_carry_current_until_settled_open() -> None:
    clock, world = charging()
    start = world.meter.energy_wh
    clock.advance(100.0)
    world.contactor.set_closed(False)
    clock.advance(3600.0)
    assert world.meter.energy_wh - start == pytest.approx(11_040.0 * 100.03 / 3600.0)


def test_duty_change_integrates_the_old_current_first() -> None:
    clock, world = charging(50.0, max_current_a=32.0)
    start = world.meter.energy_wh
    clock.advance(1800.0)
    world.pilot.set_pwm(25.0)  # 30 A -> 15 A, no read in between
    clock.advance(1800.0)
    expected = V * 3 * (30.0 * 0.5 + 15.0 * 0.5)
    assert world.meter.energy_wh - start == pytest.approx(expected, rel=1e-9)


def test_battery_fills_exactly_within_one_long_step() -> None:
    clock, world = charging(capacity_wh=10_000.0, soc=0.5, target_soc=0.8)
    start = world.meter.energy_wh
    clock.advance(10 * 3600.0)
    assert world.ev.soc == 0.8
    assert world.meter.energy_wh - start == pytest.approx(3_000.0, rel=1e-9)
    assert world.ev.state == "B"
    assert world.ev.current_a == 0.0


def test_battery_full_stops_current_at_the_computed_instant() -> None:
    clock, world = charging(capacity_wh=10_000.0, soc=0.9)
    full_after = 1_000.0 / 11_040.0 * 3600.0  # 326.09 s
    clock.advance(full_after - 0.01)
    assert world.ev.current_a == 16.0
    clock.advance(0.02)
    assert world.ev.current_a == 0.0
    assert world.ev.soc == 1.0
    assert world.ev.state == "C"
    clock.advance(REACTION_S)
    assert world.ev.state == "B"
    assert world.meter.energy_wh == pytest.approx(1_000.0, rel=1e-9)


def test_energy_matches_soc_under_concurrent_use() -> None:
    clock, world = charging(capacity_wh=20_000.0, soc=0.1)
    soc0 = world.ev.soc
    stop = threading.Event()

    def safety_loop() -> None:
        duty = 26.7
        while not stop.is_set():
            duty = 50.0 if duty == 26.7 else 26.7
            world.pilot.set_pwm(duty)
            world.pilot.read()
            world.contactor.feedback()

    def asyncio_side() -> None:
        while not stop.is_set():
            read(world.meter)

    threads = [
        threading.Thread(target=safety_loop),
        threading.Thread(target=asyncio_side),
    ]
    for thread in threads:
        thread.start()
    for _ in range(2_000):
        clock.advance(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
    # Both duties offer more than the EV's 16 A, so the draw never changes.
    assert world.meter.energy_wh == pytest.approx(2_000 * 11_040.0 / 3600.0, rel=1e-9)
    assert world.ev.soc - soc0 == pytest.approx(world.meter.energy_wh / 20_000.0)


# --- contactor ----------------------------------------------------------------


def test_contactor_contacts_and_aux_follow_after_settle_time() -> None:
    clock, world = make()
    contactor = world.contactor
    contactor.set_closed(True)
    assert contactor.commanded and not contactor.closed
    assert contactor.feedback() is False
    clock.advance(SETTLE_S - 0.001)
    assert not contactor.closed
    clock.advance(0.002)
    assert contactor.closed and contactor.feedback() is True
    contactor.set_closed(True)
    assert contactor.switch_count == 1
    contactor.set_closed(False)
    assert not contactor.commanded and contactor.closed
    clock.advance(SETTLE_S)
    assert not contactor.closed and contactor.feedback() is False
    assert contactor.switch_count == 2


def test_welded_contactor_keeps_conducting() -> None:
    clock, world = charging()
    world.contactor.weld()
    world.contactor.set_closed(False)
    clock.advance(1.0)
    assert not world.contactor.commanded
    assert world.contactor.closed and world.contactor.feedback() is True
    assert world.ev.current_a == 16.0


def test_open_contactor_welds_at_its_next_closing() -> None:
    clock, world = make()
    world.contactor.weld()
    clock.advance(1.0)
    assert not world.contactor.closed
    world.contactor.set_closed(True)
    clock.advance(SETTLE_S)
    world.contactor.set_closed(False)
    clock.advance(1.0)
    assert world.contactor.closed


def test_broken_aux_reads_open_while_contacts_are_closed() -> None:
    _, world = charging()
    world.contactor.break_aux()
    assert world.contactor.feedback() is False
    assert world.contactor.closed
    assert world.ev.current_a == 16.0


def test_contactor_without_aux_has_no_feedback() -> None:
    clock, world = make(contactor_aux=False)
    world.contactor.set_closed(True)
    clock.advance(SETTLE_S)
    assert world.contactor.closed
    assert world.contactor.feedback() is None


# --- fault inputs and card reader ---------------------------------------------


def test_fault_trip_latches_and_calls_back_in_callers_thread() -> None:
    _, world = make()
    seen: list[tuple[str, threading.Thread]] = []
    world.faults.on_trip(lambda name: seen.append((name, threading.current_thread())))
    assert world.faults.active() == frozenset()
    world.faults.trip()
    assert seen == [("rcd", threading.current_thread())]
    assert world.faults.active() == {"rcd"}
    world.faults.trip("rcd")
    assert len(seen) == 1  # no new edge while latched
    world.faults.release("rcd")
    assert world.faults.active() == {"rcd"}
    world.faults.reset()
    assert world.faults.active() == frozenset()


def test_reset_keeps_a_fault_that_is_still_present() -> None:
    _, world = make()
    world.faults.trip("estop")
    world.faults.reset()
    assert world.faults.active() == {"estop"}
    world.faults.release("estop")
    assert world.faults.active() == frozenset()


def test_trip_callback_may_use_the_world_from_another_thread() -> None:
    _, world = make()
    helper: list[threading.Thread] = []

    def open_contactor(_name: str) -> None:
        thread = threading.Thread(target=world.contactor.set_closed, args=(False,))
        thread.start()
        thread.join(timeout=5)
        helper.append(thread)

    world.contactor.set_closed(True)
    world.faults.on_trip(open_contactor)
    world.faults.trip()
    assert not helper[0].is_alive()
    assert not world.contactor.commanded


def test_fault_self_test() -> None:
    _, world = make()
    assert world.faults.self_test() is True
    world.faults.self_test_passes = False
    assert world.faults.self_test() is False


def test_card_reader_reports_taps_only_while_started() -> None:
    _, world = make()
    tags: list[str] = []
    world.card_reader.tap("ignored")
    world.card_reader.start(tags.append)
    world.card_reader.tap("04A1B2C3")
    world.card_reader.close()
    world.card_reader.tap("late")
    assert tags == ["04A1B2C3"]


# --- meter --------------------------------------------------------------------


def test_meter_reading_while_idle() -> None:
    clock, world = make(meter_start_wh=1234.5, frequency_hz=49.9)
    clock.advance(10.0)
    assert reading(world.meter) == MeterReading(
        timestamp=1_700_000_010.0,
        energy_import_wh=1234.5,
        energy_export_wh=0.0,
        power_w=0.0,
        currents_a=(0.0, 0.0, 0.0),
        voltages_v=(V, V, V),
        frequency_hz=49.9,
        power_factor=None,
        powers_w=(0.0, 0.0, 0.0),
    )


def test_meter_reading_of_a_single_phase_ev() -> None:
    clock, world = charging(50.0, max_current_a=32.0, phases=1)
    clock.advance(3600.0)
    result = reading(world.meter)
    assert result.currents_a == (30.0, 0.0, 0.0)
    assert result.power_w == pytest.approx(6_900.0)
    assert result.power_factor == 1.0
    assert result.energy_import_wh == pytest.approx(6_900.0, rel=1e-9)
    assert result.timestamp == clock.time()


def test_meter_fail_next_queues_failures() -> None:
    _, world = make()
    world.meter.fail_next(MeterFailureKind.TIMEOUT, count=2)
    world.meter.fail_next(MeterFailureKind.CRC)
    kinds = [read(world.meter) for _ in range(4)]
    assert kinds[:3] == [
        MeterFailure(MeterFailureKind.TIMEOUT, "simulated timeout"),
        MeterFailure(MeterFailureKind.TIMEOUT, "simulated timeout"),
        MeterFailure(MeterFailureKind.CRC, "simulated crc"),
    ]
    assert isinstance(kinds[3], MeterReading)
    with pytest.raises(ValueError):
        world.meter.fail_next(MeterFailureKind.CRC, count=-1)


def test_closed_meter_reads_disconnected() -> None:
    _, world = make()
    asyncio.run(world.meter.close())
    result = read(world.meter)
    assert isinstance(result, MeterFailure)
    assert result.kind is MeterFailureKind.DISCONNECTED


# --- cost: the physics advances once per tick ----------------------------------


def test_physics_advances_once_per_tick_of_the_safety_loop_and_meter() -> None:
    """The safety loop reads pilot, PP and contactor every tick; the meter is read
    once a tick here. Only the meter's energy read integrates: one step per tick,
    not one (or two) per hal call, and the energy is still exact."""
    from chargepoint.safety.evse import EvseConfig, EvseController
    from chargepoint.safety.limits import LimitClaims

    clock, world = make(SimEV(max_current_a=16.0))
    limits = LimitClaims()
    limits.set("station", 16.0)
    tick = 0.01
    evse = EvseController(world.pilot, world.contactor, world.faults, clock, limits, EvseConfig(tick_s=tick))
    evse.allow()
    world.plug_in()
    for _ in range(200):  # B, PWM on, the EV reacts, contactor closes and settles
        clock.advance(tick)
        evse.step()
    assert world.contactor.closed and world.ev.current_a == 16.0
    start_wh, start_t = world.meter.energy_wh, clock.monotonic()

    idle_steps = world.steps
    for _ in range(100):  # ticks with nothing due: reading states integrates nothing
        clock.advance(tick)
        evse.step()
    assert world.steps == idle_steps

    for _ in range(100):
        clock.advance(tick)
        evse.step()
        reading(world.meter)
    assert world.steps - idle_steps == 100
    elapsed = clock.monotonic() - start_t
    assert world.meter.energy_wh - start_wh == pytest.approx(V * 3 * 16.0 * elapsed / 3600.0, rel=1e-9)


def test_an_event_due_between_reads_is_applied_by_a_state_read() -> None:
    """Lazy integration must not hide an event: the contacts settle at their due time
    even if nothing but state reads happen after the command."""
    clock, world = make()
    world.contactor.set_closed(True)
    steps = world.steps
    clock.advance(SETTLE_S / 2)
    assert world.contactor.feedback() is False
    assert world.steps == steps  # not due yet: nothing integrated
    clock.advance(SETTLE_S)
    assert world.contactor.feedback() is True
