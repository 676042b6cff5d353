"""The station core's connectors as the energy manager sees them (``energy.manager.Connectors``).

Beside the station, not in ``energy/``: it reads the station's views and hardware, and the
energy package knows the station only through that protocol.
"""

from __future__ import annotations

from chargepoint.core.energy.load_manager import ConnectorLoad, own_currents
from chargepoint.core.energy.phase_policy import PhaseSwitching
from chargepoint.core.energy.session_energy import RunningSession
from chargepoint.core.station import Station
from chargepoint.core.tariffs.tariff_codec import cost_json
from chargepoint.safety.limits import LimitClaims


class StationConnectors:
    """The station core's connectors as :class:`Connectors`: plug, contactor, offer, meter reading."""

    def __init__(self, station: Station) -> None:
        self.station = station

    def ids(self) -> list[int]:
        return list(self.station.connectors)

    def loads(self) -> list[ConnectorLoad]:
        loads = []
        for evse_id in self.station.connectors:
            view = self.station.view(evse_id)
            evse, reading = view.evse, view.last_reading
            closed = evse is not None and evse.contactor_closed
            currents = own_currents(closed, evse.offered_a if evse else 0.0,
                                    reading.currents_a if reading is not None else None)
            loads.append(ConnectorLoad(evse_id, view.plugged, currents,
                                       phase_count=evse.phases if evse is not None else None))
        return loads

    def phase_switch(self, evse_id: int) -> PhaseSwitching | None:
        switch = getattr(self.station.hardware(evse_id).evse, "phases", None)
        return switch if switch is not None and switch.configured else None

    def limits(self, evse_id: int) -> LimitClaims:
        return self.station.hardware(evse_id).limits

    def meter_wh(self, evse_id: int) -> float | None:
        reading = self.station.view(evse_id).last_reading
        return None if reading is None else reading.energy_import_wh

    def session(self, evse_id: int) -> RunningSession | None:
        session = self.station.view(evse_id).session
        tx = session.transaction if session is not None else None
        if tx is None:
            return None
        return RunningSession(tx.local_id, cost_json(tx.cost) if tx.cost is not None else None)

    async def refresh(self) -> None:
        """Read the meter of every connector whose contactor is closed, right after the grid meter.

        The station meters are polled on their own beat; a reading from before an EV
        started drawing would count its current as the house's and pause it (and resume
        it, and pause it: chatter at plug-in). Read together, the two agree.
        """
        for evse_id, c in self.station.connectors.items():
            evse = self.station.view(evse_id).evse
            # A failing meter is left to its own poll (which counts and logs its failures once).
            if evse is not None and evse.contactor_closed and c.meter_failures == 0:
                await self.station.transactions.read_meter(c)
