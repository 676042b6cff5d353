"""The 2.0.1 Reservation block (H): ReserveNow, CancelReservation, ReservationStatusUpdate.

Translation only: no evseId is the core's "any connector" (allowed when
ReservationCtrlr.NonEvseSpecific, the ``reserve_any_connector`` setting, is
true), the groupIdToken is the identifier's group, the connectorType is the
station's plug type in 2.0.1 words. The core decides, keeps and ends
reservations (``chargepoint/core/reservations.py``); the Reserved connector
status comes from its facts (``translate.connector_status``), and a
reservation that ends without being used (expired, or its connector out of
service) is reported by ``ReservationUpdates``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ocpp.exceptions import PropertyConstraintViolationError
from ocpp.routing import on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from chargepoint.core.authorization import parse_expiry
from chargepoint.core.reservations import Reservation, ReservationEnd, Reservations, ReserveResult
from chargepoint.protocol.common.block import Block, BlockContext
from chargepoint.protocol.v201.translate import token_of
from chargepoint.protocol.v201.variables import CONNECTOR_WORDS

_RESERVE = {
    ReserveResult.ACCEPTED: "Accepted",
    ReserveResult.OCCUPIED: "Occupied",
    ReserveResult.FAULTED: "Faulted",
    ReserveResult.UNAVAILABLE: "Unavailable",
    ReserveResult.REJECTED: "Rejected",
}
#: 2.0.1 connector words -> the station's plug types (a word not here matches no connector).
_PLUG_TYPES = {word: plug for plug, word in CONNECTOR_WORDS.items()}
#: How a reservation ended -> the ReservationStatusUpdate sent (a used or cancelled one: none).
_UPDATES = {ReservationEnd.EXPIRED: "Expired", ReservationEnd.REMOVED: "Removed"}


class ReservationHandlers(Block[BlockContext]):
    """The Reservation block (H), routed to the 2.0.1 peer by the adapter."""


    @on(Action.reserve_now, skip_schema_validation=True)
    async def on_reserve_now(self, id: int, expiry_date_time: str, id_token: dict[str, Any],
                             connector_type: str | None = None, evse_id: int | None = None,
                             group_id_token: dict[str, Any] | None = None, **_: Any) -> Any:
        # Awaited in the CALL's own task (see RobustPeer): the answer goes once the reservation
        # is in the state database.
        try:
            expiry = parse_expiry(expiry_date_time)
        except ValueError:
            expiry = None
        if expiry is None:
            raise PropertyConstraintViolationError(
                description=f"expiryDateTime {expiry_date_time[:40]!r} is not a date and time", details={})
        plug = None if connector_type is None else _PLUG_TYPES.get(connector_type, connector_type)
        group = None if group_id_token is None else str(group_id_token["id_token"])
        reservation = Reservation(id, evse_id or None, token_of(id_token), expiry, group, plug)
        result = await self.context.station.reservations.reserve(reservation)
        return call_result.ReserveNow(status=_RESERVE[result])

    @on(Action.cancel_reservation, skip_schema_validation=True)
    async def on_cancel_reservation(self, reservation_id: int, **_: Any) -> Any:
        cancelled = await self.context.station.reservations.cancel(reservation_id)
        return call_result.CancelReservation(status="Accepted" if cancelled else "Rejected")


class ReservationUpdates:
    """Reports reservations that end unused as ReservationStatusUpdate, while connected."""

    def __init__(self, reservations: Reservations, queue: Callable[[Any], None]) -> None:
        self.reservations = reservations
        self._queue = queue

    def attach(self) -> None:
        self.reservations.ended_listeners.append(self._ended)

    def detach(self) -> None:
        if self._ended in self.reservations.ended_listeners:
            self.reservations.ended_listeners.remove(self._ended)

    def _ended(self, reservation: Reservation, why: ReservationEnd) -> None:
        status = _UPDATES.get(why)
        if status is not None:
            self._queue(call.ReservationStatusUpdate(reservation_id=reservation.id,
                                                     reservation_update_status=status))
