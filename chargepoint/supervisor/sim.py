"""The simulation inside the supervisor: actions on the virtual EV, and its meters on the wire.

The physical simulation is the supervisor's hardware, as the board is on a
station. The daemon reaches it as it would reach real things: a technician's
``chargepoint sim plug`` travels the channel as a ``sim`` request (sim backend
only), and each connector's meter is served as a Modbus TCP device on loopback
that the daemon reads with the real driver.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from chargepoint.config import Config

if TYPE_CHECKING:  # the daemon imports this module for the sim actions; it never runs a station of loops
    from chargepoint.supervisor.station import Guarded

log = logging.getLogger(__name__)


def sim_meter_model(config: Config) -> str:
    """The register map the simulated meter speaks: the configured model for ``sim-modbus``, else SDM630."""
    return config.meter.model if config.meter.kind == "sim-modbus" else "sdm630"


def sim_action(c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
    """Apply one ``sim`` request to a connector's world; the answer says what is true now."""
    return act_on_world(c.id, c.world, f)


def act_on_world(connector_id: int, world: Any, f: dict[str, Any]) -> dict[str, Any]:
    """The one implementation of the sim actions, for the supervisor and the in-process assembly."""
    action, name = f["action"], f["input"]
    if action == "look":
        return world_state(connector_id, world)
    if action == "plug":
        world.plug_in()
    elif action == "unplug":
        world.unplug()
    elif action == "trip":
        world.faults.trip(name)
        if not f["hold"]:
            world.faults.release(name)  # the condition passes; the trip stays latched
    elif action == "release":
        world.faults.release(name)
    elif action == "weld":
        world.contactor.weld()
    elif action == "diode":
        world.ev.diode = f["value"]
    elif action == "short":
        world.ev.short_circuit = f["value"]
    what = f"{action} {name}" if action in ("trip", "release") else action
    log.info("simulation: connector %d: %s", connector_id, what)
    return world_state(connector_id, world)


def world_state(connector_id: int, world: Any) -> dict[str, Any]:
    """The simulated EV and inputs as a technician reads them."""
    return {"connector": connector_id, "ev_state": world.ev.state,
            "ev_current_a": round(world.ev.current_a, 3), "ev_phases": world.ev.phases,
            "held": sorted(world.faults.present()), "latched": sorted(world.faults.active())}


class SimMeters:
    """Each world's meter as a Modbus TCP device on 127.0.0.1 (a free port each)."""

    def __init__(self, connectors: list[Guarded], model: str) -> None:
        self._connectors = connectors
        self._model = model
        self._devices: list[Any] = []
        #: Connector id -> TCP port, for the hello answer.
        self.ports: dict[int, int] = {}

    async def start(self) -> None:
        from hal.meters.registermap import load_map
        from hal.meters.simdevice import SimModbusDevice

        register_map = load_map(self._model)
        for c in self._connectors:
            device = SimModbusDevice(register_map, source=c.world.meter.read, unit_id=1)
            self.ports[c.id] = await device.serve_tcp("127.0.0.1", 0)
            self._devices.append(device)
        log.info("simulated meters (%s) on 127.0.0.1: %s", self._model,
                 ", ".join(f"connector {i} port {p}" for i, p in self.ports.items()))

    async def close(self) -> None:
        for device in self._devices:
            await device.close()
