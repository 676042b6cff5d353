"""The demo's house scenarios: solar surplus charging (``--scenario solar``) and the main fuse (``fuse``).

The station is the real daemon on the simulated hal, as in the session demo,
with a simulated house around it: its grid meter is served as an SDM630 over
Modbus TCP on loopback and read by the real driver, like the station meter.
The station's clock runs ``speed`` times faster than real time (the safety
loop keeps its timing in that clock); the house's day runs faster still
(``[house] time_factor``), so a day's sun passes in about a minute.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from typing import Any

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from chargepoint.protocol.bench_csms.v16 import CentralSystem

IDENTITY = "DEMO-HOME-1"
#: Seconds of real time each scenario runs.
SOLAR_WALL_S = 60.0
FUSE_WALL_S = 50.0
FUSE_A = 25.0
#: How often the demo looks at the house (real seconds).
TICK_S = 0.01
#: The safety loop's tick and the scheduling of a busy demo, on top of the grid meter's period.
REACTION_MARGIN_S = 0.2


def station_clock(elapsed_s: float, house: Any, scenario: str) -> str:
    """The time of a line: the house's time of day in the solar scenario (its day runs faster than
    the station's clock), with the station's seconds since the start, which the countdowns count."""
    seconds = f"{elapsed_s:7.1f}s"
    if scenario != "solar":
        return seconds
    hour = house.hour()
    return f"{seconds} {int(hour):02d}:{int(hour % 1 * 60):02d}"


def _summary(figures: dict[str, float], reaction_s: float, min_switch_s: float, scenario: str) -> str:
    energy = figures["energy_wh"]
    text = f"done: {energy:.0f} Wh charged"
    if scenario == "solar":
        share = figures["solar_wh"] / energy * 100 if energy > 0 else 0.0
        text += f", {figures['solar_wh']:.0f} Wh of it from the sun ({share:.0f} %)"
    text += (f"; contactor switched {figures['switches']:.0f} time(s)"
             + (f", two switches at least {figures['shortest_switch_gap_s']:.0f} s apart "
                f"(minimum {min_switch_s:g} s)" if figures["shortest_switch_gap_s"] else ""))
    if figures["phase_switches"]:
        text += f"; phases switched {figures['phase_switches']:.0f} time(s)"
    if scenario == "fuse":
        text += (f"; worst phase {figures['worst_fuse_a']:.1f} A on the {FUSE_A:g} A fuse, above it "
                 f"{figures['above_fuse_s']:.1f} s in all (the longest {figures['longest_above_s']:.1f} s), "
                 f"{figures['above_fuse_outside_s']:.1f} s outside the {reaction_s:.1f} s reaction to a "
                 "house load step (station time)")
    return text


def _config(port: int, state_dir: str, speed: float, scenario: str) -> Any:
    solar = scenario == "solar"
    # The house's day: 7:00 to 19:00 in the solar scenario's minute; the fuse scenario is an evening.
    time_factor = (12 * 3600) / (SOLAR_WALL_S * speed) if solar else 1.0
    return parse({
        "station": {"identity": IDENTITY, "state_dir": state_dir, "free_vend": True},
        "control": {"enabled": False},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{port}"},
        # The solar scenario's station has a phase contactor: one phase from 1.4 kW, three from 4.1 kW.
        "simulation": {"speed": speed, "ev_max_current_a": 16 if solar else 32, "ev_soc": 0.1,
                       "ev_capacity_wh": 200_000, "phase_contactor": solar},
        "meter": {"poll_interval_s": 1.0, "kind": "sim-modbus"},
        "load": {"enabled": True, "main_fuse_a": FUSE_A, "margin_a": 1.0,
                 "meter": {"kind": "sim-modbus", "poll_interval_s": 1.0}},
        "solar": {"mode": "pv" if solar else "fast"},
        "house": {"pv_peak_w": 9000 if solar else 0, "cloudiness": 0.35, "seed": 4,
                  "day_start_h": 7 if solar else 18.5, "time_factor": time_factor, "base_load_w": 400},
    }, f"<demo {scenario}>")


async def run_energy_demo(scenario: str, speed: float = 20.0,
                          out: Callable[[str], None] = print) -> dict[str, float]:
    """Run one house scenario; returns figures (energy, switches, worst fuse current, time above it)."""
    csms = CentralSystem(heartbeat_interval_s=300)
    port = await csms.start("127.0.0.1", 0)
    state_dir = tempfile.TemporaryDirectory(prefix="chargepoint-demo-")
    daemon = Daemon(_config(port, state_dir.name, speed, scenario))
    world, house, energy = daemon.hardware.worlds[1], daemon.house, daemon.energy
    assert house is not None and energy is not None
    runner = asyncio.ensure_future(daemon.run())
    start = time.monotonic()
    figures = {"switches": 0.0, "energy_wh": 0.0, "solar_wh": 0.0, "worst_fuse_a": 0.0, "above_fuse_s": 0.0,
               "above_fuse_outside_s": 0.0, "longest_above_s": 0.0, "shortest_switch_gap_s": 0.0,
               "phase_switches": 0.0}
    clock = daemon.clock
    # A house load step may hold the fuse above its rating until the next grid reading and the EV's
    # answer to the lowered pilot: one meter period plus a safety-loop tick (the simulated EV follows
    # the pilot at once; IEC 61851-1 gives a real one 5 s). Outside that, never.
    reaction_s = daemon.config.load.meter.poll_interval_s + REACTION_MARGIN_S
    steps: list[float] = []
    min_switch_s = daemon.config.solar.min_switch_interval_s
    t0 = clock.monotonic()

    def say(text: str) -> None:
        out(f"{station_clock(clock.monotonic() - t0, house, scenario)}  {text}")

    try:
        say(f"simulated home station {IDENTITY} ({speed:g}x real time); grid meter: simulated SDM630 "
            f"over Modbus TCP; main fuse {FUSE_A:g} A; mode {energy.mode}")
        await asyncio.sleep(0.5)
        world.plug_in()
        say("EV plugged in (free vend)")
        script = _fuse_script(house) if scenario == "fuse" else []
        wall = SOLAR_WALL_S if scenario == "solar" else FUSE_WALL_S
        energy_start, pv_start = world.meter.energy_wh, energy.solar_wh
        closed, last_print, last_t = world.contactor.closed, 0.0, clock.monotonic()
        switched_at: list[float] = []
        km2 = world.phase_contactor
        phases, phases_at = (km2.phases if km2 is not None else None), []
        over_since: float | None = None
        while (elapsed := time.monotonic() - start) < wall:
            while script and script[0][0] <= elapsed:
                _, text, action = script.pop(0)
                action()
                steps.append(clock.monotonic())
                say(f"** {text}")
            now = clock.monotonic()
            worst = max(house.grid_currents())
            figures["worst_fuse_a"] = max(figures["worst_fuse_a"], worst)
            if worst > FUSE_A:
                over_since = now if over_since is None else over_since
                figures["longest_above_s"] = max(figures["longest_above_s"], now - over_since)
                figures["above_fuse_s"] += now - last_t
                if not any(0 <= now - t <= reaction_s for t in steps):
                    figures["above_fuse_outside_s"] += now - last_t
            else:
                over_since = None
            last_t = now
            if world.contactor.closed != closed:
                closed = world.contactor.closed
                figures["switches"] += 1
                switched_at.append(now)
                say(f"** contactor {'closed: charging' if closed else 'opened: paused'}")
            if km2 is not None and km2.phases != phases:
                phases = km2.phases
                figures["phase_switches"] += 1
                phases_at.append(now)
                say(f"** phase contactor: {phases} phase(s), switched with the EV paused and KM1 open")
            if elapsed - last_print >= 2.0:
                last_print = elapsed
                say(_line(house, world, daemon, scenario))
            await asyncio.sleep(TICK_S)
        figures["energy_wh"] = world.meter.energy_wh - energy_start
        figures["solar_wh"] = energy.solar_wh - pv_start
        # The contactor's open and close around a phase switch are one operation, not two switches.
        gaps = [b - a for a, b in zip(switched_at, switched_at[1:], strict=False)
                if not any(a <= p <= b for p in phases_at)]
        figures["shortest_switch_gap_s"] = min(gaps) if gaps else 0.0
        say(_summary(figures, reaction_s, min_switch_s, scenario))
        return figures
    finally:
        daemon.stop()
        await asyncio.gather(runner, return_exceptions=True)
        await csms.close()
        state_dir.cleanup()


def _fuse_script(house: Any) -> list[tuple[float, str, Callable[[], None]]]:
    """When (real seconds) the appliances switch, what the timeline says then, and the switch."""
    return [(12.0, "kettle on (2.3 kW on L1)", lambda: house.switch_on("kettle", 2300)),
            (22.0, "oven on (4.1 kW on three phases)", lambda: house.switch_on("oven", 4140, phases=3)),
            (34.0, "kettle off", lambda: house.switch_off("kettle")),
            (42.0, "oven off", lambda: house.switch_off("oven"))]


def _line(house: Any, world: Any, daemon: Daemon, scenario: str) -> str:
    grid = house.grid_currents()
    status = daemon.energy.status() if daemon.energy else {}
    claims = daemon.station.view(1).claims
    phases = "/".join(f"{a:+5.1f}" for a in grid)
    if scenario == "solar":
        return (f"PV {house.pv_w():5.0f} W  grid {phases} A  "
                f"EV {world.ev.current_a:4.1f} A x {world.ev.phases}  "
                f"solar claim {claims.get('solar', 0):4.1f} A  "
                f"{status['connectors'][0]['solar']}")
    return (f"grid {phases} A (fuse {FUSE_A:g} A)  EV {world.ev.current_a:4.1f} A  "
            f"load_manager claim {claims.get('load_manager', 0):4.1f} A")
