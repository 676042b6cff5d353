"""Read-only views of the station for the local surfaces (control socket, dashboard, metrics).

A view is a snapshot built by the station; whoever shows it cannot change the
station through it, and does not have to re-derive what the station decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from chargepoint.core.events import IdToken, StatusChanged
from chargepoint.core.reservations import Reservation
from chargepoint.core.tariffs.tariff_cost import CostSummary
from chargepoint.safety.limits import Resolved
from chargepoint.safety.status import EvseStatus
from hal.interfaces import MeterReading

if TYPE_CHECKING:
    from chargepoint.core.connector import ConnectorState


@dataclass(frozen=True)
class TransactionView:
    local_id: str
    #: None: begun by the EV alone, no identifier presented yet.
    token: IdToken | None
    started_at: float
    meter_start_wh: float
    stopping: bool
    #: Energy delivered so far by the last good reading (None before one).
    energy_wh: float | None
    #: Its cost so far under the tariff in force (None: no tariff prices it).
    cost: CostSummary | None = None
    #: The CSMS's own figure for it, when it sent one (OCPP 2.1 CostUpdated).
    csms_cost: Decimal | None = None


@dataclass(frozen=True)
class SessionView:
    token: IdToken | None
    transaction: TransactionView | None


@dataclass(frozen=True)
class ConnectorView:
    evse_id: int
    connector_id: int
    status: StatusChanged
    operative: bool
    scheduled_operative: bool | None
    plugged: bool
    evse: EvseStatus | None
    limit: Resolved
    claims: dict[str, float]
    session: SessionView | None
    last_reading: MeterReading | None
    meter_available: bool
    meter_failures: int
    has_lock: bool
    #: Failed meter reads since the start (``meter_failures``: in a row).
    meter_failures_total: int = 0
    #: The reservation holding this connector itself (an "any connector" one is the station's).
    reservation: Reservation | None = None


def connector_view(c: ConnectorState, now: float, reservation: Reservation | None) -> ConnectorView:
    """A snapshot of one connector's state, taken on the event loop, for the local surfaces."""
    session = None
    if c.session is not None:
        tx = c.session.transaction
        tx_view = None
        if tx is not None:
            reading = c.last_reading
            energy = None if reading is None else reading.energy_import_wh - tx.meter_start_wh
            tx_view = TransactionView(tx.local_id, tx.token, tx.started_at, tx.meter_start_wh,
                                      tx.stopping, energy, tx.cost.summary() if tx.cost else None,
                                      tx.csms_cost)
        session = SessionView(c.session.token, tx_view)
    return ConnectorView(
        evse_id=c.id, connector_id=c.hw.connector_id, status=c.status(now),
        operative=c.operative, scheduled_operative=c.scheduled_operative, plugged=c.plugged,
        evse=c.evse_status, limit=c.limits.resolve(), claims=c.limits.snapshot(), session=session,
        last_reading=c.last_reading, meter_available=c.meter_available,
        meter_failures=c.meter_failures, has_lock=c.lock is not None,
        meter_failures_total=c.meter_failures_total, reservation=reservation)
