"""The 1.6 Reservation profile: ReserveNow and CancelReservation, spoken for the core's reservations.

Translation only: connector 0 is the core's "any connector" (allowed when
ReserveConnectorZeroSupported, the ``reserve_any_connector`` setting, is
true), parentIdTag is the identifier's group, and the core's answers are the
1.6 ReservationStatus words. The core decides, keeps and ends reservations
(``chargepoint/core/reservations.py``); the Reserved status and the
reservationId in StartTransaction come from its facts.
"""

from __future__ import annotations

from typing import Any

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.routing import on
from ocpp.v16 import call_result
from ocpp.v16.enums import Action, CancelReservationStatus, ReservationStatus

from chargepoint.core.authorization import parse_expiry
from chargepoint.core.events import IdToken
from chargepoint.core.reservations import Reservation, ReserveResult
from chargepoint.protocol.common.block import Block, BlockContext

_RESERVE = {
    ReserveResult.ACCEPTED: ReservationStatus.accepted,
    ReserveResult.OCCUPIED: ReservationStatus.occupied,
    ReserveResult.FAULTED: ReservationStatus.faulted,
    ReserveResult.UNAVAILABLE: ReservationStatus.unavailable,
    ReserveResult.REJECTED: ReservationStatus.rejected,
}


class ReservationHandlers(Block[BlockContext]):
    """The Reservation profile's block, routed to the 1.6 peer by the adapter."""


    @on(Action.reserve_now, skip_schema_validation=True)
    async def on_reserve_now(self, connector_id: int, expiry_date: str, id_tag: str, reservation_id: int,
                             parent_id_tag: str | None = None) -> Any:
        # Awaited in the CALL's own task (see RobustPeer): the answer goes once the reservation
        # is in the state database.
        try:
            expiry = parse_expiry(expiry_date)
        except ValueError:
            expiry = None
        if expiry is None:
            raise PropertyConstraintViolationError(
                description=f"expiryDate {expiry_date[:40]!r} is not a date and time", details={})
        evse_id = connector_id or None  # connector 0: any connector
        reservation = Reservation(reservation_id, evse_id, IdToken(id_tag), expiry, parent_id_tag)
        result = await self.context.station.reservations.reserve(reservation)
        return call_result.ReserveNow(status=_RESERVE[result])

    @on(Action.cancel_reservation, skip_schema_validation=True)
    async def on_cancel_reservation(self, reservation_id: int) -> Any:
        cancelled = await self.context.station.reservations.cancel(reservation_id)
        return call_result.CancelReservation(
            status=CancelReservationStatus.accepted if cancelled else CancelReservationStatus.rejected)
