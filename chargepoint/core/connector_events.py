"""What the station does when a safety loop reports: plug-in, unplug, a fault during a transaction.

The safety loop (in the supervisor's process, or in this one) calls back from
its own thread; ``from_thread`` hands each status over to the event loop, and
the reactions here run there. They are the station's (``station.py``), kept in
a module of their own because they are the one place where what the hardware
says turns into sessions starting and stopping.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chargepoint.core.connector import ConnectorState, Session
from chargepoint.core.events import IdToken, StopReason
from chargepoint.core.reservations import Reservations
from chargepoint.core.settings import Settings
from chargepoint.core.transactions import TransactionRecorder, set_lock
from chargepoint.core.tx_points import TxPoints
from chargepoint.safety.iec61851 import CpState
from chargepoint.safety.status import EvseFault, EvseStatus
from hal.clock import Clock

log = logging.getLogger(__name__)


@dataclass
class StationParts:
    """What of the station the reactions use (the station builds it, and owns every part)."""

    connectors: dict[int, ConnectorState]
    clock: Clock
    settings: Settings
    reservations: Reservations
    transactions: TransactionRecorder
    free_vend_token: IdToken | None
    #: Connectors whose open transaction the recovery decides on (no new session at plug-in).
    held_for_recovery: Callable[[], set[int]]
    spawn: Callable[[Awaitable[None]], object]
    stop_transaction: Callable[[int, StopReason], Awaitable[bool]]
    update_status: Callable[[ConnectorState], None]


class ConnectorEvents:
    """The station's reactions to its connectors' safety loops."""

    def __init__(self, parts: StationParts) -> None:
        self.station = parts

    @property
    def points(self) -> TxPoints:
        return self.station.transactions.points

    def evaluate(self, c: ConnectorState) -> None:
        """Begin the transaction on ``c`` when one of its start points holds; with energy transfer
        as the start point, let the energy flow first (the transaction begins with the flow)."""
        s = self.station
        session = c.session
        if session is None or session.transaction is not None or session.starting \
                or c.id in s.held_for_recovery():
            return
        point = self.points.due(c)
        if point is not None:
            s.spawn(s.transactions.start(c, point))
        elif self.points.energy_before_start(c) and not (c.evse_status and c.evse_status.charging_allowed):
            c.evse.allow()

    def from_thread(self, evse_id: int) -> Callable[[EvseStatus], None]:
        """The ``on_status`` callback for one connector (call it on the event loop; the callback
        itself is safe to call from any thread)."""
        loop = asyncio.get_running_loop()

        def deliver(status: EvseStatus) -> None:
            try:
                loop.call_soon_threadsafe(self.status, evse_id, status)
            except RuntimeError:
                pass  # the loop has closed: the daemon is shutting down

        return deliver

    def status(self, evse_id: int, status: EvseStatus) -> None:
        s = self.station
        c = s.connectors[evse_id]
        c.evse_status = status
        if c.plugged and not c.ev_present:
            c.ev_present = True
            self.plugged_in(c)
        elif c.ev_present and status.cp_state == CpState.A:
            c.ev_present = False
            self.unplugged(c)
        else:
            self.evaluate(c)  # the energy may have begun to flow (a start point)
        if status.faults and c.transaction is not None and not c.transaction.stopping:
            log.warning("connector %d: fault %s during transaction", c.id,
                        ",".join(sorted(f.value for f in status.faults)))
            if EvseFault.EMERGENCY_STOP in status.faults:
                s.spawn(s.stop_transaction(c.id, StopReason.EMERGENCY_STOP))
            elif EvseFault.SUPERVISOR in status.faults:
                # The safety supervisor is gone: the hardware heartbeat has dropped the contactor, and
                # whoever restarts it starts safe. The session is over; its energy is on the meter.
                s.spawn(s.stop_transaction(c.id, StopReason.OTHER))
        s.update_status(c)

    def plugged_in(self, c: ConnectorState) -> None:
        s = self.station
        log.info("connector %d: EV plugged in", c.id)
        c.finishing = False
        if c.id in s.held_for_recovery():
            return  # its open transaction continues (recover), no new session
        if c.session is None and s.free_vend_token is not None and c.operative \
                and s.reservations.permits(c.id, s.free_vend_token, None):
            c.session = Session(s.free_vend_token, s.clock.monotonic())
        if c.session is None and self.points.starts_with_ev() and c.operative and not c.faulted \
                and not c.reserved and c.station_fault is None:
            # The transaction begins with the EV; an identifier presented later is its driver.
            c.session = Session(None, s.clock.monotonic())
        self.evaluate(c)

    def unplugged(self, c: ConnectorState) -> None:
        s = self.station
        log.info("connector %d: EV unplugged", c.id)
        c.finishing = False
        tx = c.transaction
        # A transaction nobody is authorized for (begun by the EV, or its authorization ended) is
        # the EV's: it ends with it.
        unauthorized = c.session is not None and not c.session.authorized
        stop_on_disconnect = self.points.ends_at_unplug() or unauthorized
        if tx is not None and not tx.stopping:
            if stop_on_disconnect:
                s.spawn(s.stop_transaction(c.id, StopReason.EV_DISCONNECTED))
            else:
                # The transaction goes on; the safety loop offers energy again
                # when an EV is plugged back in.
                log.info("connector %d: transaction %s continues without EV", c.id, tx.local_id)
        elif c.session is not None and tx is None:
            # An authorization waiting for this plug has no EV any more.
            c.session = None
        if c.lock is not None and s.settings.current.unlock_on_ev_disconnect \
                and (tx is None or stop_on_disconnect):
            s.spawn(self._release_lock(c))

    async def _release_lock(self, c: ConnectorState) -> None:
        if c.lock is not None and not await set_lock(c.lock, False):
            log.warning("connector %d: plug lock did not confirm unlocking", c.id)
