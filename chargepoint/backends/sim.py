"""The physical simulation as a backend: a virtual EV, contactor, meter and card reader per connector."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

from chargepoint.backends.hardware import Hardware, assemble_connector
from chargepoint.backends.metering import build_meter, bus_pool
from chargepoint.config import Config
from hal.clock import Clock, RealClock, ScaledClock
from hal.sim import SimEV, SimWorld
from hal.sim_driver import MeterRegisterFile, drive_cycles


def build_sim_hardware(config: Config) -> Hardware:
    """One simulated world per configured connector, on a real or sped-up clock."""
    sim = config.simulation
    clock: Clock = RealClock() if sim.speed == 1.0 else ScaledClock(sim.speed)
    connectors, worlds = [], {}
    buses = bus_pool(config)  # one bus per RS-485 line, shared by the connectors' meters
    jobs: list[Callable[[], Awaitable[None]]] = []
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
