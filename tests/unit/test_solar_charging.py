"""Solar charging in simulated time: a cloudy day in pv mode, minpv and fast, and the mode kept across
a restart in a real state database."""

from __future__ import annotations

from dataclasses import dataclass

from chargepoint.core.energy.manager import EnergyManager
from chargepoint.core.storage.store import Store
from tests.unit.energy_rig import TICK, VOLTAGE, EnergyRig

#: A morning whose clouds come and go every 45 s of station time (0.1 h of a day running 8 times faster).
CLOUDY = {"pv_peak_w": 9000, "cloudiness": 0.5, "day_start_h": 9, "time_factor": 8, "base_load_w": 300,
          "seed": 7}
DAY_S = 1800.0


@dataclass
class DayLog:
    on_s: float = 0.0
    short_s: float = 0.0
    #: Energy the EV took that the PV did not cover (Wh).
    grid_for_ev_wh: float = 0.0
    crossings: int = 0
    _above: bool | None = None

    def watch(self, rig: EnergyRig) -> None:
        grid = rig.grid()
        ev = rig.worlds[1]
        station = ev.ev.current_a * 3 if ev.contactor.closed else 0.0
        surplus = (station - sum(grid)) / 3
        above = surplus >= 6
        if self._above is not None and above != self._above:
            self.crossings += 1
        self._above = above
        if ev.contactor.closed:
            self.on_s += TICK
            self.grid_for_ev_wh += max(0.0, min(station, sum(grid))) * VOLTAGE * TICK / 3600
        state = rig.energy.solar.states.get(1)
        if state is not None and state.charging and state.pending_since is not None:
            self.short_s += TICK


def _gaps(rig: EnergyRig) -> list[float]:
    times = [t for t, _, _ in rig.switches]
    return [b - a for a, b in zip(times, times[1:], strict=False)]


async def test_a_cloudy_day_in_pv_mode_switches_at_most_once_a_minute_and_takes_little_from_the_grid():
    rig = EnergyRig(ev_max_a=16, solar={"mode": "pv", "hysteresis_a": 1.0, "disable_delay_s": 90},
                    house=CLOUDY)
    day = DayLog()
    try:
        rig.plug_all()
        await rig.run(DAY_S, day.watch)
    finally:
        await rig.close()
    assert day.crossings >= 15, f"the surplus crossed 6 A only {day.crossings} times: not a cloudy day"
    starts = [t for t, _, closed in rig.switches if closed]
    assert len(starts) >= 2 and any(not closed for _, _, closed in rig.switches), rig.switches
    assert min(_gaps(rig)) >= 59.0, f"contactor switched {min(_gaps(rig)):.1f} s after the last time"
    assert len(rig.switches) <= DAY_S / 60 + 1
    # From the grid only: the hysteresis while charging, and 6 A while the surplus is short
    # (at most the disable delay each time), plus up to one poll after each cloud.
    allowed_wh = 3 * VOLTAGE * (1.0 * day.on_s + 6.0 * day.short_s + 16.0 * 1.0 * day.crossings) / 3600
    assert day.grid_for_ev_wh <= allowed_wh, (day.grid_for_ev_wh, allowed_wh, day)
    total_wh = 3 * VOLTAGE * 16 * day.on_s / 3600
    assert day.grid_for_ev_wh < 0.5 * total_wh, "most of the charge came from the sun"


async def test_without_delays_only_the_switch_interval_holds_the_contactor_back():
    rig = EnergyRig(ev_max_a=16, solar={"mode": "pv", "enable_delay_s": 0, "disable_delay_s": 0,
                                        "hysteresis_a": 0}, house=CLOUDY)
    try:
        rig.plug_all()
        await rig.run(DAY_S / 2)
    finally:
        await rig.close()
    assert len(rig.switches) >= 6, rig.switches
    assert min(_gaps(rig)) >= 59.0, _gaps(rig)


async def test_minpv_keeps_6_a_without_sun_and_fast_sets_no_solar_claim():
    night = {"pv_peak_w": 0, "day_start_h": 23}
    rig = EnergyRig(ev_max_a=16, solar={"mode": "minpv"}, house=night)
    try:
        rig.plug_all()
        await rig.run(10)
        assert rig.claim(1, "solar") == 6.0 and rig.worlds[1].ev.current_a == 6.0
        await rig.energy.set_mode("fast")
        await rig.run(2)
        assert rig.claim(1, "solar") is None and rig.worlds[1].ev.current_a == 16.0
        await rig.energy.set_mode("pv")
        await rig.run(5)
        assert rig.claim(1, "solar") == 6.0, "charging when pv began: it pauses only after the delay"
        await rig.run(300)
        assert rig.claim(1, "solar") == 0.0 and not rig.worlds[1].contactor.closed
        assert rig.energy.status()["connectors"][0]["solar"] == "paused: waiting for surplus"
    finally:
        await rig.close()


async def test_the_mode_is_kept_across_a_restart(tmp_path):
    rig = EnergyRig(solar={"mode": "fast"})
    store = await Store.open(tmp_path)
    try:
        await rig.energy.attach(store)
        assert rig.energy.mode == "fast"
        await rig.energy.set_mode("minpv")
    finally:
        await store.close()
    again = EnergyManager(rig.energy.connectors, rig.energy.meter, rig.config, rig.clock)
    assert again.mode == "fast", "the file's default before the state database is read"
    store = await Store.open(tmp_path)
    try:
        await again.attach(store)
        assert again.mode == "minpv"
    finally:
        await store.close()


async def test_off_stops_charging_at_once_holds_a_plan_and_fast_resumes():
    sunny = {"pv_peak_w": 9000, "cloudiness": 0.0, "day_start_h": 12, "base_load_w": 300}
    rig = EnergyRig(ev_max_a=16, solar={"mode": "fast", "min_switch_interval_s": 60}, house=sunny)
    try:
        rig.plug_all()
        await rig.run(5)
        assert rig.worlds[1].contactor.closed
        await rig.energy.set_mode("off")
        await rig.run(3)
        assert rig.claim(1, "solar") == 0.0 and not rig.worlds[1].contactor.closed, "off is at once"
        said = rig.energy.status()["connectors"][0]["solar"]
        assert said == "off: no charging until another mode is chosen"
        # A departure plan does not override off: the homeowner said no charging.
        await rig.energy.plans.set(1, 5000.0, rig.clock.time() + 1800, rig.clock.time())
        await rig.run(120)
        assert rig.claim(1, "solar") == 0.0 and not rig.worlds[1].contactor.closed
        await rig.energy.plans.clear(1)
        await rig.energy.set_mode("fast")
        await rig.run(3)
        assert rig.claim(1, "solar") is None and rig.worlds[1].contactor.closed
    finally:
        await rig.close()
