"""A connector's safety loop, meter and limits assembled in the test's own process.

The station core tests drive a real ``EvseController`` on the simulation's
devices without a supervisor: the station-rating limit claim, the loop with the
``[safety]`` settings, and the bundle the core takes over, as the supervisor
builds them (``chargepoint.supervisor.hardware``).
"""

from __future__ import annotations

from chargepoint.config import Config, ConnectorConfig
from chargepoint.core.connector import ConnectorHardware
from chargepoint.safety.evse import EvseConfig, EvseController
from chargepoint.safety.limits import LimitClaims
from chargepoint.supervisor.hardware import evse_config
from hal.clock import Clock
from hal.interfaces import ConnectorLock, Contactor, FaultInputs, Heartbeat, Meter, Pilot, ShuntTrip


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
