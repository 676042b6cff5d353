"""Read-only views of the station for the local surfaces (control socket, dashboard, metrics).

A view is a snapshot built by the station; whoever shows it cannot change the
station through it, and does not have to re-derive what the station decided.
"""

from __future__ import annotations

from dataclasses import dataclass

from chargepoint.core.events import IdToken, StatusChanged
from chargepoint.core.reservations import Reservation
from chargepoint.safety.evse import EvseStatus
from chargepoint.safety.limits import Resolved
from hal.interfaces import MeterReading


@dataclass(frozen=True)
class TransactionView:
    local_id: str
    token: IdToken
    started_at: float
    meter_start_wh: float
    stopping: bool
    #: Energy delivered so far by the last good reading (None before one).
    energy_wh: float | None


@dataclass(frozen=True)
class SessionView:
    token: IdToken
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
    #: The reservation holding this connector itself (an "any connector" one is the station's).
    reservation: Reservation | None = None
