"""The physical simulation as a backend: a virtual EV, contactor, meter and card reader per connector."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from chargepoint.backends.hardware import Hardware, assemble_connector
from chargepoint.backends.metering import build_meter, bus_pool
from chargepoint.config import Config
from hal.clock import Clock, RealClock
from hal.sim import SimEV, SimWorld
from hal.sim_driver import MeterRegisterFile, SimClockFile, drive_cycles


def build_sim_hardware(config: Config) -> Hardware:
    """One simulated world per configured connector, on a real or sped-up clock."""
    sim = config.simulation
    jobs: list[Callable[[], Awaitable[None]]] = []
    clock: Clock = RealClock()
    if sim.speed != 1.0:
        # Sped-up time runs ahead of the real one: resume it where the last run left off,
        # so that nothing the station stamped before a restart lies in its future.
        clock_file = SimClockFile(Path(config.station.state_dir) / "sim-clock.txt")
        clock = scaled = clock_file.clock(sim.speed, time.time())
        jobs.append(partial(clock_file.keep, scaled))
    connectors, worlds = [], {}
    buses = bus_pool(config)  # one bus per RS-485 line, shared by the connectors' meters
    for connector_config in config.connectors:
        register = MeterRegisterFile(Path(config.station.state_dir) / f"sim-meter-{connector_config.id}.txt")
        world = SimWorld(
            clock,
            meter_start_wh=register.load() if sim.persist_meter else 0.0,
            ev=SimEV(max_current_a=sim.ev_max_current_a, phases=sim.ev_phases,
                     capacity_wh=sim.ev_capacity_wh, soc=sim.ev_soc),
            voltage_v=sim.voltage_v,
            cable_ohms=sim.cable_ohms,
        )
        meter = build_meter(config, connector_config, clock, pool=buses, sim_meter=world.meter)
        connectors.append(assemble_connector(config, connector_config, clock, pilot=world.pilot,
                                             contactor=world.contactor, faults=world.faults,
                                             meter=meter, lock=world.lock))
        worlds[connector_config.id] = world
        if sim.persist_meter:
            jobs.append(partial(register.keep, world, clock, config.meter.poll_interval_s))
        if sim.driver == "cycle":
            jobs.append(partial(drive_cycles, world, clock, charge_s=sim.cycle_charge_s,
                                idle_s=sim.cycle_idle_s, card=sim.driver_card or None))
    reader = worlds[1].card_reader if worlds else None
    return Hardware(clock, connectors, reader, worlds, jobs)
