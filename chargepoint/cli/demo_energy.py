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
from chargepoint.protocol.v16.csms import CentralSystem

IDENTITY = "DEMO-HOME-1"
#: Seconds of real time each scenario runs.
SOLAR_WALL_S = 60.0
FUSE_WALL_S = 50.0
FUSE_A = 25.0


def _config(port: int, state_dir: str, speed: float, scenario: str) -> Any:
    solar = scenario == "solar"
    # The house's day: 7:00 to 19:00 in the solar scenario's minute; the fuse scenario is an evening.
    time_factor = (12 * 3600) / (SOLAR_WALL_S * speed) if solar else 1.0
    return parse({
        "station": {"identity": IDENTITY, "state_dir": state_dir, "free_vend": True},
        "control": {"enabled": False},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{port}"},
        "simulation": {"speed": speed, "ev_max_current_a": 16 if solar else 32, "ev_soc": 0.1,
                       "ev_capacity_wh": 200_000},
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
    figures = {"switches": 0.0, "energy_wh": 0.0, "worst_fuse_a": 0.0, "above_fuse_s": 0.0}

    def say(text: str) -> None:
        out(f"{time.monotonic() - start:6.2f}s  {text}")

    try:
        say(f"simulated home station {IDENTITY} ({speed:g}x real time); grid meter: simulated SDM630 "
            f"over Modbus TCP; main fuse {FUSE_A:g} A; mode {energy.mode}")
        await asyncio.sleep(0.5)
        world.plug_in()
        say("EV plugged in (free vend)")
        script = _fuse_script(house) if scenario == "fuse" else []
        wall = SOLAR_WALL_S if scenario == "solar" else FUSE_WALL_S
        energy_start = world.meter.energy_wh
        closed, last_print, tick = world.contactor.closed, 0.0, 0.02
        while (elapsed := time.monotonic() - start) < wall:
            while script and script[0][0] <= elapsed:
                _, text, action = script.pop(0)
                action()
                say(f"** {text}")
            worst = max(house.grid_currents())
            figures["worst_fuse_a"] = max(figures["worst_fuse_a"], worst)
            if worst > FUSE_A:
                figures["above_fuse_s"] += tick * speed  # in the station's (simulated) seconds
            if world.contactor.closed != closed:
                closed = world.contactor.closed
                figures["switches"] += 1
                say(f"** contactor {'closed: charging' if closed else 'opened: paused'}")
            if elapsed - last_print >= 2.0:
                last_print = elapsed
                say(_line(house, world, daemon, scenario))
            await asyncio.sleep(tick)
        figures["energy_wh"] = world.meter.energy_wh - energy_start
        say(f"done: {figures['energy_wh']:.0f} Wh charged, contactor switched {figures['switches']:.0f} "
            f"time(s), worst phase {figures['worst_fuse_a']:.1f} A, above the fuse for "
            f"{figures['above_fuse_s']:.1f} s of station time")
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
    hour = house.hour()
    grid = house.grid_currents()
    status = daemon.energy.status() if daemon.energy else {}
    claims = daemon.station.view(1).claims
    phases = "/".join(f"{a:+5.1f}" for a in grid)
    if scenario == "solar":
        return (f"{int(hour):02d}:{int(hour % 1 * 60):02d}  PV {house.pv_w():5.0f} W  grid {phases} A  "
                f"EV {world.ev.current_a:4.1f} A  solar claim {claims.get('solar', 0):4.1f} A  "
                f"{status['connectors'][0]['solar']}")
    return (f"grid {phases} A (fuse {FUSE_A:g} A)  EV {world.ev.current_a:4.1f} A  "
            f"load_manager claim {claims.get('load_manager', 0):4.1f} A")
