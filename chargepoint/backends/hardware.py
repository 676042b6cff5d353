"""One assembly for every backend: a connector's safety loop, meter and limits from the configuration.

A backend (the simulation, a Raspberry Pi board) provides the devices: pilot,
contactor, fault inputs, meter, plug lock. What is built on top of them is the
same everywhere, so it is written once here: the station-rating limit claim,
the safety loop with the ``[safety]`` settings, and the bundle the station core
takes over.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chargepoint.config import Config, ConnectorConfig
from chargepoint.core.connector import ConnectorHardware
from chargepoint.safety.evse import EvseConfig, EvseController
from chargepoint.safety.limits import LimitClaims
from chargepoint.supervisor.hardware import evse_config
from hal.clock import Clock
from hal.interfaces import (
    CardReader,
    ConnectorLock,
    Contactor,
    FaultInputs,
    Heartbeat,
    Meter,
    Pilot,
    ShuntTrip,
)

if TYPE_CHECKING:
    from hal.sim.world import SimWorld  # a board's hardware never loads the simulation


@dataclass
class Hardware:
    """What the hal backend provides for the station."""

    clock: Clock
    connectors: list[ConnectorHardware]
    card_reader: CardReader | None
    #: The simulated worlds per EVSE (empty on real hardware).
    worlds: dict[int, SimWorld] = field(default_factory=dict)
    #: Background jobs the hardware needs while the daemon runs (simulation only).
    jobs: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: The channel to the safety supervisor (None: the safety loops run in this process).
    supervisor: Any = None
    #: Connectors whose energy grant the supervisor still held when this daemon attached: their
    #: open transaction continues rather than being stopped for power loss.
    continuing: frozenset[int] = frozenset()

    def close(self) -> None:
        """Release what the hardware holds besides the safety loops (the reader)."""
        if self.card_reader is not None:
            self.card_reader.close()


def assemble_connector(
    config: Config,
    connector: ConnectorConfig,
    clock: Clock,
    *,
    pilot: Pilot,
    contactor: Contactor,
    faults: FaultInputs,
    meter: Meter,
    lock: ConnectorLock | None = None,
    safety: EvseConfig | None = None,
    heartbeat: Heartbeat | None = None,
    shunt_trip: ShuntTrip | None = None,
) -> ConnectorHardware:
    """The safety loop over a backend's devices, with the station's rating as a limit claim.

    Each configured connector is one EVSE with one connector (EVSE id = the
    configured id, connector 1 within it).
    """
    limits = LimitClaims()
    limits.set("station", min(config.station.max_current_a, connector.max_current_a))
    evse = EvseController(pilot, contactor, faults, clock, limits, safety or evse_config(config),
                          name=f"connector-{connector.id}", heartbeat=heartbeat, shunt_trip=shunt_trip)
    return ConnectorHardware(evse_id=connector.id, evse=evse, meter=meter, limits=limits, lock=lock,
                             connector_type=config.station.connector_type)
