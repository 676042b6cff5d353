"""The physical simulation as a backend: a virtual EV, contactor, meter and card reader per connector.

This is the in-process assembly (tests, the energy demos): the supervisor's own
simulation (``chargepoint.supervisor.hardware.build_simulation``) with the
meters and the card reader beside it in the same process. ``chargepoint run``
instead reaches the simulation through the supervisor (``backends/remote.py``).
"""

from __future__ import annotations

from functools import partial

from chargepoint.backends.hardware import Hardware
from chargepoint.backends.metering import build_meter, bus_pool
from chargepoint.config import Config
from chargepoint.core.connector import ConnectorHardware
from chargepoint.supervisor.hardware import build_simulation
from hal.sim.driver import drive_cycles


def build_sim_hardware(config: Config) -> Hardware:
    """One simulated world per configured connector, on a real or sped-up clock."""
    sim = config.simulation
    safety = build_simulation(config)
    clock = safety.clock
    jobs = list(safety.jobs)
    connectors, worlds = [], {}
    buses = bus_pool(config)  # one bus per RS-485 line, shared by the connectors' meters
    by_id = {c.id: c for c in config.connectors}
    for guarded in safety.connectors:
        world = guarded.world
        meter = build_meter(config, by_id[guarded.id], clock, pool=buses, sim_meter=world.meter)
        connectors.append(ConnectorHardware(evse_id=guarded.id, evse=guarded.evse, meter=meter,
                                            limits=guarded.limits, lock=guarded.lock,
                                            connector_type=config.station.connector_type))
        worlds[guarded.id] = world
        if sim.driver == "cycle" and sim.driver_card:  # without a card, the simulation's own job drives
            jobs.append(partial(drive_cycles, world, clock, charge_s=sim.cycle_charge_s,
                                idle_s=sim.cycle_idle_s, card=sim.driver_card or None))
    reader = worlds[1].card_reader if worlds else None
    return Hardware(clock, connectors, reader, worlds, jobs)
