"""Reservations: a connector, or any connector, held for one identifier until a time.

An operator reserves a connector for a driver so that it is free when the
driver arrives. While a reservation holds, only its identifier, or an
identifier of the same group, may start on the connector (a card at the
reader, a remote or local start); everyone else is refused. A reservation
ends when its identifier starts a transaction there, when it expires (a timer
on the injected clock, not a poll), when it is cancelled, and when its
connector faults or goes out of service.

A reservation without a connector ("any connector", allowed by the
``reserve_any_connector`` setting) holds no particular one: the station keeps
as many connectors free as there are such reservations, so others may start
only while more remain free. When just enough remain, those connectors show
as reserved, because for everyone else they are.

A reservation may ask for a plug type: only connectors of that type can
hold it (the count of free connectors above does not look at types).

The answers (accepted, occupied, faulted, unavailable, rejected) are the ones
both OCPP versions give; a reservation whose id is already held replaces it.
Reservations are written to the state database before the answer goes out,
so they survive a restart; one that expired meanwhile is dropped then.

This module decides; the station asks it (``permits``, ``claim``, ``refresh``)
and shows what it holds as the ``reserved`` fact of each connector.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from chargepoint.core.connector import ConnectorState, Session
from chargepoint.core.events import IdToken, TokenType
from chargepoint.core.settings import Settings
from chargepoint.core.storage.store import Store, StoreError
from hal.clock import Clock

log = logging.getLogger(__name__)


class ReserveResult(StrEnum):
    """The answer to a reservation request."""

    ACCEPTED = "accepted"
    #: The connector (every suitable connector) is in use or held by another reservation.
    OCCUPIED = "occupied"
    FAULTED = "faulted"
    #: Out of service.
    UNAVAILABLE = "unavailable"
    #: Not possible at all: no such connector, "any connector" not allowed, already expired.
    REJECTED = "rejected"


class ReservationEnd(StrEnum):
    """Why a reservation ended."""

    #: Its identifier (or group) began a transaction on it.
    USED = "used"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    #: Its connector faulted or went out of service.
    REMOVED = "removed"


@dataclass(frozen=True)
class Reservation:
    """One connector (``evse_id`` None: any connector) held for ``token`` until ``expiry``."""

    id: int
    evse_id: int | None
    token: IdToken
    #: Epoch seconds.
    expiry: float
    #: The group of the reserved identifier: a card of the same group may use the reservation too.
    group_id: str | None = None
    #: Only connectors with this plug type (see ``ConnectorHardware.connector_type``); None: any.
    connector_type: str | None = None

    def admits(self, token: IdToken, group_id: str | None) -> bool:
        """Whether ``token`` (of ``group_id``) may use it: its identifier or its group matches
        the reservation's identifier or group."""
        mine = {self.token.value, self.group_id} - {None}
        return token.value in mine or (group_id is not None and group_id in mine)


def _free(c: ConnectorState) -> bool:
    """Nobody uses the connector and it could be used: operative, no fault, no EV, no session."""
    return c.operative and c.fault is None and c.session is None and not c.plugged


class Reservations:
    """The reservations of one station's connectors."""

    def __init__(self, connectors: dict[int, ConnectorState], clock: Clock, settings: Settings,
                 spawn: Callable[[Awaitable[None]], asyncio.Task[None]],
                 changed: Callable[[], None]) -> None:
        self._connectors = connectors
        self.clock = clock
        self.settings = settings
        self._spawn = spawn
        #: Called after a reservation began or ended: the station reports what changed.
        self._changed = changed
        self.store: Store | None = None
        self._held: dict[int, Reservation] = {}
        self._timers: dict[int, asyncio.Task[None]] = {}
        #: Called as ``listener(reservation, why)`` when one ends (what 2.0.1 reports as a status update).
        self.ended_listeners: list[Callable[[Reservation, ReservationEnd], None]] = []

    async def attach(self, store: Store) -> None:
        """Take over the reservations in the database (before the station starts); persist from now on."""
        self.store = store
        now = self.clock.time()
        for r in await store.call(_load, store):
            if r.expiry <= now or (r.evse_id is not None and r.evse_id not in self._connectors):
                log.info("reservation %d for %s ended while the station was stopped", r.id, r.token)
                store.submit(_delete, store, r.id)
            else:
                self._hold(r)

    # ------------------------------------------------------------ reading
    def all(self) -> list[Reservation]:
        return sorted(self._held.values(), key=lambda r: r.id)

    def on(self, evse_id: int) -> Reservation | None:
        """The reservation of this connector itself (not an "any connector" one), or None."""
        return next((r for r in self._held.values() if r.evse_id == evse_id), None)

    def _anywhere(self) -> list[Reservation]:
        return [r for r in self._held.values() if r.evse_id is None]

    def _free_unreserved(self, excluding: int | None = None) -> list[ConnectorState]:
        """Free connectors no connector reservation holds (other than ``excluding``'s)."""
        reserved = {r.evse_id for r in self._held.values() if r.id != excluding}
        return [c for c in self._connectors.values() if _free(c) and c.id not in reserved]

    # ------------------------------------------------------------ deciding
    def permits(self, evse_id: int, token: IdToken, group_id: str | None) -> bool:
        """May ``token`` (of ``group_id``) begin a session on ``evse_id`` as far as reservations go?"""
        own = self.on(evse_id)
        if own is not None:
            return own.admits(token, group_id)
        anywhere = self._anywhere()
        if not anywhere:
            return True
        # Its own "any connector" reservation is used up by the start; the others need a free connector each.
        others = len(anywhere) - any(r.admits(token, group_id) for r in anywhere)
        return len([c for c in self._free_unreserved() if c.id != evse_id]) >= others

    def claim(self, c: ConnectorState, session: Session) -> int | None:
        """A transaction of ``session`` begins on ``c``: the reservation it uses ends; its id, or None.
        One the EV began before anyone was authorized uses none (no identifier to match)."""
        if session.token is None:
            return None
        own = self.on(c.id)
        if own is not None and own.admits(session.token, session.group_id):
            used: Reservation | None = own
        else:
            used = next((r for r in self._anywhere() if r.admits(session.token, session.group_id)
                         and r.connector_type in (None, c.hw.connector_type)), None)
        if used is None:
            return None
        # Its row goes with the start's own write (``outbox_db.record``), in one SQLite transaction:
        # a kill between the two would otherwise leave neither the reservation nor the transaction.
        self._end(used, ReservationEnd.USED, f"by {session.token} on connector {c.id}", persist=False)
        return used.id

    async def reserve(self, r: Reservation) -> ReserveResult:
        """Hold a connector for ``r`` (replacing a reservation with the same id), or say why not."""
        result = self._refusal(r)
        if result is not ReserveResult.ACCEPTED:
            log.info("reservation %d for %s on %s: %s", r.id, r.token, _where(r), result.value)
            return result
        previous = self._held.get(r.id)
        self._hold(r)
        try:
            await self._write(_save, r)
        except StoreError as exc:
            log.error("reservation %d not kept: it cannot be recorded (%s)", r.id, exc)
            self._release(r)
            if previous is not None:
                self._hold(previous)
            return ReserveResult.REJECTED
        log.info("reservation %d%s: %s for %s%s until %s", r.id, " (replaced)" if previous else "",
                 _where(r), r.token, f" (group {r.group_id})" if r.group_id else "", _clock(r.expiry))
        self._changed()
        return ReserveResult.ACCEPTED

    async def cancel(self, reservation_id: int) -> bool:
        """End a reservation on the operator's word; False if there is none with this id."""
        r = self._held.get(reservation_id)
        if r is None:
            return False
        self._release(r)
        await self._write(_delete, r.id)
        self._ended(r, ReservationEnd.CANCELLED, "")
        self._changed()
        return True

    def refresh(self) -> list[ConnectorState]:
        """End reservations whose connectors faulted or went out of service, and set each
        connector's ``reserved`` fact; the connectors whose fact changed."""
        for r in list(self._held.values()):
            if r.evse_id is not None:
                c = self._connectors[r.evse_id]
                if c.fault is not None or not c.operative:
                    why = "faulted" if c.fault else "out of service"
                    self._end(r, ReservationEnd.REMOVED, f"connector {c.id} {why}", notify=False)
            elif all(c.fault is not None or not c.operative for c in self._connectors.values()):
                self._end(r, ReservationEnd.REMOVED, "no connector is in service", notify=False)
        reserved = {r.evse_id for r in self._held.values()}
        free = self._free_unreserved()
        anywhere = len(self._anywhere())
        shared = {c.id for c in free} if anywhere and len(free) <= anywhere else set()
        changed = []
        for c in self._connectors.values():
            now_reserved = c.id in reserved or c.id in shared
            if now_reserved != c.reserved:
                c.reserved = now_reserved
                changed.append(c)
        return changed

    def _refusal(self, r: Reservation) -> ReserveResult:
        if r.expiry <= self.clock.time():
            return ReserveResult.REJECTED
        if r.evse_id is None:
            if not self.settings.current.reserve_any_connector:
                return ReserveResult.REJECTED
            candidates = list(self._connectors.values())
        elif r.evse_id in self._connectors:
            candidates = [self._connectors[r.evse_id]]
        else:
            return ReserveResult.REJECTED
        if r.connector_type is not None:
            candidates = [c for c in candidates if c.hw.connector_type == r.connector_type]
            if not candidates:
                return ReserveResult.REJECTED
        if all(c.fault is not None for c in candidates):
            return ReserveResult.FAULTED
        if all(c.fault is not None or not c.operative for c in candidates):
            return ReserveResult.UNAVAILABLE
        others = [o for o in self._anywhere() if o.id != r.id]
        free = self._free_unreserved(excluding=r.id)
        usable = {c.id for c in candidates} & {c.id for c in free}
        if r.evse_id is not None:
            # This connector is taken out of the pool the "any connector" reservations rely on.
            enough = len(free) - 1 >= len(others)
        else:
            enough = len(free) > len(others)
        return ReserveResult.ACCEPTED if usable and enough else ReserveResult.OCCUPIED

    # ------------------------------------------------------------ holding
    def _hold(self, r: Reservation) -> None:
        previous = self._held.get(r.id)
        if previous is not None:
            self._release(previous)
        self._held[r.id] = r
        self._timers[r.id] = self._spawn(self._expire(r))

    def _release(self, r: Reservation) -> None:
        """Forget ``r`` and stop its timer (unless that timer is the caller)."""
        if self._held.get(r.id) is r:
            del self._held[r.id]
            timer = self._timers.pop(r.id, None)
            if timer is not None and timer is not asyncio.current_task():
                timer.cancel()

    def _end(self, r: Reservation, end: ReservationEnd, detail: str, notify: bool = True,
             persist: bool = True) -> None:
        self._release(r)
        if persist and self.store is not None:
            self.store.submit(_delete, self.store, r.id)
        self._ended(r, end, detail)
        if notify:
            self._changed()

    def _ended(self, r: Reservation, end: ReservationEnd, detail: str) -> None:
        log.info("reservation %d for %s %s%s", r.id, r.token, end.value, f" ({detail})" if detail else "")
        for listener in list(self.ended_listeners):
            listener(r, end)

    async def _expire(self, r: Reservation) -> None:
        # Re-read the clock after each wake: the wall clock may have been set meanwhile.
        while (left := r.expiry - self.clock.time()) > 0:
            await self.clock.sleep(left)
        if self._held.get(r.id) is r:
            self._end(r, ReservationEnd.EXPIRED, "")

    async def _write(self, fn: Callable[..., None], *args: object) -> None:
        if self.store is not None:
            await self.store.call(fn, self.store, *args)


def _where(r: Reservation) -> str:
    return "any connector" if r.evse_id is None else f"connector {r.evse_id}"


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -------------------------------------------- database work (store thread)
def _load(store: Store) -> list[Reservation]:
    rows = store.db.execute("SELECT id, evse_id, id_tag, token_type, expiry, group_id, connector_type "
                            "FROM reservations ORDER BY id").fetchall()
    return [Reservation(rid, evse_id, IdToken(tag, TokenType.parse(kind)), expiry, group, ctype)
            for rid, evse_id, tag, kind, expiry, group, ctype in rows]


def _save(store: Store, r: Reservation) -> None:
    store.db.execute("INSERT OR REPLACE INTO reservations (id, evse_id, id_tag, token_type, expiry, "
                     "group_id, connector_type) VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (r.id, r.evse_id, r.token.value, r.token.type.value, r.expiry, r.group_id,
                      r.connector_type))


def _delete(store: Store, reservation_id: int) -> None:
    store.db.execute("DELETE FROM reservations WHERE id = ?", (reservation_id,))
