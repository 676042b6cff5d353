"""The station: connectors, sessions, authorization and availability.

It turns what happens at the connectors (EV plugged, card tapped, safety loop
status) and what the operator asks (remote start/stop) into sessions and
transactions, and reports them as plain events. It knows neither OCPP nor pins:
the safety loop (``evse.py``) decides what the hardware may do, the adapters
decide how events are spelled on the wire.

Everything here runs on the asyncio event loop. The safety loop's status
callbacks arrive from its thread and are handed over with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable

from chargepoint.core.authorization import LocalAuthorization
from chargepoint.core.connector import (
    PLUGGED_STATES,
    ConnectorHardware,
    ConnectorState,
    Session,
    Transaction,
)
from chargepoint.core.events import (
    AuthResult,
    AuthStatus,
    ConnectorStatus,
    MeterSample,
    ReadingContext,
    StatusChanged,
    StopReason,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.outbox import OpenTransaction, Outbox
from chargepoint.core.settings import Settings
from chargepoint.safety.evse import EvseStatus
from chargepoint.safety.iec61851 import CpState
from hal.clock import Clock
from hal.interfaces import MeterFailure, MeterReading

log = logging.getLogger(__name__)

Authorizer = Callable[[str], Awaitable[AuthResult]]


class Station:
    """All connectors of one charge point and the sessions on them."""

    def __init__(
        self,
        connectors: list[ConnectorHardware],
        clock: Clock,
        outbox: Outbox,
        settings: Settings,
        *,
        free_vend_id_tag: str | None = None,
        meter_poll_interval_s: float = 1.0,
        persist_availability: Callable[[int, bool], None] | None = None,
    ) -> None:
        self.connectors = {hw.evse_id: ConnectorState(hw) for hw in connectors}
        self.clock = clock
        self.outbox = outbox
        #: Operator-changeable behaviour (OCPP configuration keys), read when used.
        self.settings = settings
        self.free_vend_id_tag = free_vend_id_tag
        self.meter_poll_interval_s = meter_poll_interval_s
        self.persist_availability = persist_availability
        self.authorization = LocalAuthorization(settings, clock)
        self.authorizer: Authorizer | None = None
        self.status_listeners: list[Callable[[StatusChanged], None]] = []
        #: Clock-aligned readings outside transactions (best effort, not queued).
        self.aligned_listeners: list[Callable[[MeterSample], None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    # ----------------------------------------------------------- lifecycle
    async def start(self) -> None:
        """Hook up the safety loops and start polling meters."""
        self._loop = asyncio.get_running_loop()
        for connector in self.connectors.values():
            connector.evse.on_status = self._status_from_thread(connector.id)
            connector.evse_status = connector.evse.status
            connector.evse.start()
            self._spawn(self._poll_meter(connector))
        self._spawn(self._clock_aligned_samples())
        for connector in self.connectors.values():
            self._update_status(connector)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for connector in self.connectors.values():
            connector.evse.close()
            await connector.meter.close()

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("station task failed", exc_info=task.exception())

    # ------------------------------------------------------------- status
    def status_of(self, connector_id: int) -> StatusChanged:
        """The current status of a connector, or of the station (0)."""
        if connector_id == 0:
            all_down = all(not c.operative for c in self.connectors.values())
            status = ConnectorStatus.UNAVAILABLE if all_down else ConnectorStatus.AVAILABLE
            return StatusChanged(0, status, self.clock.time())
        connector = self.connectors[connector_id]
        return self._derive_status(connector)

    def _derive_status(self, c: ConnectorState) -> StatusChanged:
        now = self.clock.time()
        evse = c.evse_status
        if evse is not None and evse.faults:
            fault = sorted(f.value for f in evse.faults)[0]
            return StatusChanged(c.id, ConnectorStatus.FAULTED, now, fault=fault)
        meter_fault = None if c.meter_available else "power_meter_failure"
        tx = c.transaction
        if tx is not None and not tx.stopping:
            if evse is not None and evse.contactor_closed:
                status = ConnectorStatus.CHARGING
            elif evse is None or not evse.charging_allowed:
                status = ConnectorStatus.PREPARING  # the safety loop has not taken it up yet
            elif not c.plugged:
                status = ConnectorStatus.SUSPENDED_EV  # EV gone, transaction kept
            elif evse.offered_a > 0:
                status = ConnectorStatus.SUSPENDED_EV
            else:
                status = ConnectorStatus.SUSPENDED_EVSE
        elif not c.operative:
            status = ConnectorStatus.UNAVAILABLE
        elif c.plugged and (c.finishing or (tx is not None and tx.stopping)):
            status = ConnectorStatus.FINISHING
        elif c.plugged or c.session is not None:
            status = ConnectorStatus.PREPARING
        else:
            status = ConnectorStatus.AVAILABLE
        return StatusChanged(c.id, status, now, fault=meter_fault)

    def _update_status(self, c: ConnectorState) -> None:
        current = self._derive_status(c)
        previous = c.reported
        if previous is not None and (previous.status, previous.fault) == (current.status, current.fault):
            return
        c.reported = current
        log.info("connector %d: %s%s", c.id, current.status.value,
                 f" ({current.fault})" if current.fault else "")
        for listener in list(self.status_listeners):
            listener(current)

    # --------------------------------------------------- safety loop events
    def _status_from_thread(self, connector_id: int) -> Callable[[EvseStatus], None]:
        loop = self._loop
        assert loop is not None

        def deliver(status: EvseStatus) -> None:
            try:
                loop.call_soon_threadsafe(self._on_evse_status, connector_id, status)
            except RuntimeError:
                pass  # the loop has closed: the daemon is shutting down

        return deliver

    def _on_evse_status(self, connector_id: int, status: EvseStatus) -> None:
        c = self.connectors[connector_id]
        previous = c.evse_status
        c.evse_status = status
        was_plugged = previous is not None and previous.cp_state in PLUGGED_STATES
        if c.plugged and not was_plugged:
            self._on_plug_in(c)
        elif not c.plugged and was_plugged and status.cp_state == CpState.A:
            self._on_unplug(c)
        if status.faults and c.transaction is not None and not c.transaction.stopping:
            log.warning("connector %d: fault %s during transaction", c.id,
                        ",".join(sorted(f.value for f in status.faults)))
        self._update_status(c)

    def _on_plug_in(self, c: ConnectorState) -> None:
        log.info("connector %d: EV plugged in", c.id)
        c.finishing = False
        if c.session is None and self.free_vend_id_tag and c.operative:
            c.session = Session(self.free_vend_id_tag, self.clock.monotonic())
        if c.session is not None and c.session.transaction is None:
            self._spawn(self._start_transaction(c))

    def _on_unplug(self, c: ConnectorState) -> None:
        log.info("connector %d: EV unplugged", c.id)
        c.finishing = False
        tx = c.transaction
        if tx is not None and not tx.stopping:
            if self.settings.get("StopTransactionOnEVSideDisconnect"):
                self._spawn(self.stop_transaction(c.id, StopReason.EV_DISCONNECTED))
            else:
                # The transaction goes on; the safety loop offers energy again
                # when an EV is plugged back in.
                log.info("connector %d: transaction %s continues without EV", c.id, tx.local_id)
        elif c.session is not None and tx is None:
            # An authorization waiting for this plug has no EV any more.
            c.session = None
        if c.lock is not None and self.settings.get("UnlockConnectorOnEVSideDisconnect") \
                and (tx is None or self.settings.get("StopTransactionOnEVSideDisconnect")):
            c.lock.set_locked(False)

    # ------------------------------------------------------------- meters
    async def _poll_meter(self, c: ConnectorState) -> None:
        while True:
            await self._read_meter(c)
            await self.clock.sleep(self.meter_poll_interval_s)

    async def _read_meter(self, c: ConnectorState) -> MeterReading | None:
        """Read the meter; on failure keep the last good reading and count."""
        result = await c.meter.read()
        if isinstance(result, MeterFailure):
            c.meter_failures += 1
            log.warning("connector %d: meter read failed (%s %s), %d in a row", c.id,
                        result.kind.value, result.detail, c.meter_failures)
            self._update_status(c)
            return None
        recovered = not c.meter_available
        c.meter_failures = 0
        c.last_reading = result
        if recovered:
            log.info("connector %d: meter answers again", c.id)
            self._update_status(c)
        return result

    async def _fresh_reading(self, c: ConnectorState) -> MeterReading | None:
        """A reading taken now, or the last good one (said in the log)."""
        reading = await self._read_meter(c)
        if reading is None and c.last_reading is not None:
            log.warning("connector %d: using the last good meter reading from %.0f s ago",
                        c.id, self.clock.time() - c.last_reading.timestamp)
        return reading or c.last_reading

    # ------------------------------------------------------- authorization
    async def authorize(self, id_tag: str) -> AuthResult:
        """The CSMS, the local list and the cache decide (see authorization.py)."""
        return await self.authorization.authorize(id_tag, self._ask_csms if self.authorizer else None)

    async def _ask_csms(self, id_tag: str) -> AuthResult:
        assert self.authorizer is not None
        try:
            return await self.authorizer(id_tag)
        except Exception as exc:  # noqa: BLE001 - any failure to ask means "unknown"
            log.warning("authorization of %s failed: %s", id_tag, exc)
            return AuthResult(AuthStatus.UNKNOWN)

    async def card_presented(self, id_tag: str) -> AuthStatus | None:
        """A card was tapped on the reader: stop its session or start one.

        Returns the authorization result for a new session, or None if the tap
        ended a running transaction or there was nothing to do.
        """
        log.info("card %s presented", id_tag)
        for c in self.connectors.values():
            if c.session is not None and c.session.id_tag == id_tag:
                if c.transaction is not None:
                    await self.stop_transaction(c.id, StopReason.LOCAL, id_tag=id_tag)
                else:
                    c.session = None  # second tap before plugging in cancels
                    self._update_status(c)
                return None
        target = self._free_connector(prefer_plugged=True)
        if target is None:
            log.info("card %s: no free connector", id_tag)
            return None
        result = await self.authorize(id_tag)
        if result.status != AuthStatus.ACCEPTED:
            log.info("card %s not accepted: %s", id_tag, result.status.value)
            return result.status
        if target.session is not None or not target.operative:
            return None  # the connector was taken while we asked
        self._begin_session(target, id_tag)
        return result.status

    def _free_connector(self, prefer_plugged: bool) -> ConnectorState | None:
        free = [c for c in self.connectors.values()
                if c.operative and c.session is None and not c.finishing
                and not (c.evse_status and c.evse_status.faults)]
        if prefer_plugged:
            free.sort(key=lambda c: not c.plugged)
        return free[0] if free else None

    def _begin_session(self, c: ConnectorState, id_tag: str) -> None:
        c.session = Session(id_tag, self.clock.monotonic())
        log.info("connector %d: session for %s", c.id, id_tag)
        self._update_status(c)
        if c.plugged:
            self._spawn(self._start_transaction(c))
        else:
            self._spawn(self._expire_unplugged_session(c, c.session))

    async def _expire_unplugged_session(self, c: ConnectorState, session: Session) -> None:
        timeout = float(self.settings.get("ConnectionTimeOut"))
        await self.clock.sleep(timeout)
        if c.session is session and session.transaction is None:
            log.info("connector %d: no EV within %.0f s, authorization for %s lapses",
                     c.id, timeout, session.id_tag)
            c.session = None
            self._update_status(c)

    # --------------------------------------------------------------- remote
    def remote_start(self, id_tag: str, connector_id: int | None,
                     authorize_first: bool = False) -> bool:
        """The operator starts a session; answers at once, works after."""
        if connector_id is not None:
            c = self.connectors.get(connector_id)
            if c is None or not c.operative or c.session is not None or c.finishing \
                    or (c.evse_status is not None and c.evse_status.faults):
                return False
        else:
            c = self._free_connector(prefer_plugged=True)
            if c is None:
                return False
        if authorize_first:
            self._spawn(self._authorize_then_begin(c, id_tag))
        else:
            self._begin_session(c, id_tag)
        return True

    async def _authorize_then_begin(self, c: ConnectorState, id_tag: str) -> None:
        result = await self.authorize(id_tag)
        if result.status != AuthStatus.ACCEPTED:
            log.info("remote start for %s not accepted: %s", id_tag, result.status.value)
        elif c.session is not None:
            log.info("remote start for %s: connector %d was taken meanwhile", id_tag, c.id)
        else:
            self._begin_session(c, id_tag)

    def remote_stop(self, local_id: str) -> bool:
        for c in self.connectors.values():
            tx = c.transaction
            if tx is not None and tx.local_id == local_id and not tx.stopping:
                self._spawn(self.stop_transaction(c.id, StopReason.REMOTE))
                return True
        return False

    def transaction_rejected(self, local_id: str, status: AuthStatus) -> None:
        """The CSMS refused the id of a running transaction: end it."""
        for c in self.connectors.values():
            tx = c.transaction
            if tx is not None and tx.local_id == local_id and not tx.stopping:
                log.info("connector %d: id %s %s by the CSMS, stopping", c.id, tx.id_tag, status.value)
                self._spawn(self.stop_transaction(c.id, StopReason.DEAUTHORIZED))

    def change_availability(self, connector_id: int, operative: bool) -> str:
        """Make connectors (0 = all) operative or not.

        Returns "Accepted", "Scheduled" (a running transaction finishes first)
        or "Rejected" (no such connector). The choice survives a restart.
        """
        if connector_id != 0 and connector_id not in self.connectors:
            return "Rejected"
        targets = list(self.connectors.values()) if connector_id == 0 else [self.connectors[connector_id]]
        scheduled = False
        for c in targets:
            if c.transaction is not None and not operative:
                c.scheduled_operative = operative
                scheduled = True
            else:
                self._apply_availability(c, operative)
        self._notify_station_status()
        return "Scheduled" if scheduled else "Accepted"

    def restore_availability(self, stored: dict[int, bool]) -> None:
        """Availability as it was before the restart (before ``start``)."""
        for connector_id, operative in stored.items():
            if connector_id in self.connectors:
                self.connectors[connector_id].operative = operative

    def _apply_availability(self, c: ConnectorState, operative: bool) -> None:
        c.scheduled_operative = None
        if c.operative != operative:
            c.operative = operative
            log.info("connector %d: %s", c.id, "operative" if operative else "inoperative")
            if self.persist_availability is not None:
                self.persist_availability(c.id, operative)
            if not operative and c.session is not None and c.transaction is None:
                c.session = None  # a pending authorization does not survive going out of service
        self._update_status(c)

    def _notify_station_status(self) -> None:
        status = self.status_of(0)
        for listener in list(self.status_listeners):
            listener(status)

    async def unlock(self, connector_id: int) -> str:
        """Release the plug: "Unlocked", "UnlockFailed" or "NotSupported".

        A transaction on the connector is stopped first (reason UnlockCommand),
        so the plug never comes out under load.
        """
        c = self.connectors.get(connector_id)
        if c is None:
            return "NotSupported"
        if c.transaction is not None:
            await self.stop_transaction(c.id, StopReason.UNLOCK_COMMAND)
        if c.lock is None:
            return "NotSupported"
        return "Unlocked" if c.lock.set_locked(False) else "UnlockFailed"

    async def stop_all(self, reason: StopReason) -> None:
        """End every running transaction (reset, shutdown)."""
        await asyncio.gather(*(self.stop_transaction(cid, reason)
                               for cid, _ in self.active_transactions()))

    # -------------------------------------------------------- transactions
    def active_transactions(self) -> list[tuple[int, Transaction]]:
        return [(c.id, c.transaction) for c in self.connectors.values() if c.transaction]

    async def _start_transaction(self, c: ConnectorState) -> None:
        session = c.session
        if session is None or session.transaction is not None:
            return
        reading = await self._fresh_reading(c)
        if reading is None:
            log.error("connector %d: no meter reading, cannot start a transaction", c.id)
            return
        if c.session is not session or not c.plugged:
            return
        local_id = uuid.uuid4().hex[:12]
        begin = MeterSample(c.id, local_id, reading, ReadingContext.TRANSACTION_BEGIN)
        tx = Transaction(local_id, session.id_tag, reading.energy_import_wh,
                         self.clock.time(), [begin])
        session.transaction = tx
        if c.lock is not None and not c.lock.set_locked(True):
            log.warning("connector %d: plug lock did not confirm locking", c.id)
        # On disk before the contactor may close: a charge never goes unbilled.
        await self.outbox.put(TransactionStarted(c.id, local_id, session.id_tag,
                                                 reading.energy_import_wh, tx.started_at))
        log.info("connector %d: transaction %s started at %.0f Wh", c.id, local_id,
                 reading.energy_import_wh)
        if tx.stopping:
            return  # ended (EV gone) while the start was being written
        c.evse.allow()
        self._update_status(c)
        self._spawn(self._sample_transaction(c, tx))

    async def _sample_transaction(self, c: ConnectorState, tx: Transaction) -> None:
        """Periodic meter samples of one transaction, every sample interval."""
        while True:
            interval = float(self.settings.get("MeterValueSampleInterval"))
            if interval <= 0:
                await self.clock.sleep(1.0)  # sampling switched off; look again later
                if c.transaction is not tx or tx.stopping:
                    return
                continue
            await self.clock.sleep(interval)
            if c.transaction is not tx or tx.stopping:
                return
            reading = await self._fresh_reading(c)
            if reading is not None and c.transaction is tx and not tx.stopping:
                offered = c.evse_status.offered_a if c.evse_status else None
                sample = MeterSample(c.id, tx.local_id, reading, ReadingContext.PERIODIC, offered)
                tx.samples.append(sample)
                await self.outbox.put(sample)

    async def recover(self, cut_off: list[OpenTransaction], resume: bool,
                      settle_s: float = 2.0) -> None:
        """Deal with transactions a power cut (or crash) left open.

        Each is stopped with reason PowerLoss at its last persisted meter
        reading, or, with ``resume`` and the EV still plugged in, carried on
        as if nothing had happened. The safety loops get ``settle_s`` to see
        the pilot first.
        """
        if not cut_off:
            return
        if resume:
            await self.clock.sleep(settle_s)
        for open_tx in cut_off:
            c = self.connectors.get(open_tx.connector_id)
            if resume and c is not None and c.plugged and c.session is None and c.operative:
                tx = Transaction(open_tx.local_id, open_tx.id_tag, open_tx.meter_start_wh,
                                 open_tx.started_at)
                c.session = Session(open_tx.id_tag, self.clock.monotonic(), tx)
                log.info("connector %d: transaction %s resumed after restart", c.id, tx.local_id)
                c.evse.allow()
                self._update_status(c)
                self._spawn(self._sample_transaction(c, tx))
                continue
            log.warning("transaction %s on connector %d was cut off; stopped with reason PowerLoss "
                        "at the last persisted reading %.0f Wh", open_tx.local_id,
                        open_tx.connector_id, open_tx.last_meter_wh)
            await self.outbox.put(TransactionStopped(
                open_tx.connector_id, open_tx.local_id, open_tx.last_meter_wh,
                open_tx.last_meter_at, StopReason.POWER_LOSS))

    async def _clock_aligned_samples(self) -> None:
        """Meter readings at ClockAlignedDataInterval boundaries of the wall clock.

        Inside a transaction they belong to it (queued, and kept for the stop
        message); outside one they go to ``aligned_listeners`` only.
        """
        while True:
            interval = float(self.settings.get("ClockAlignedDataInterval"))
            if interval <= 0:
                await self.clock.sleep(1.0)
                continue
            now = self.clock.time()
            await self.clock.sleep(interval - (now % interval))
            for c in self.connectors.values():
                reading = await self._fresh_reading(c)
                if reading is None:
                    continue
                tx = c.transaction
                if tx is not None and not tx.stopping:
                    sample = MeterSample(c.id, tx.local_id, reading, ReadingContext.CLOCK)
                    tx.samples.append(sample)
                    await self.outbox.put(sample)
                else:
                    sample = MeterSample(c.id, "", reading, ReadingContext.CLOCK)
                    for listener in list(self.aligned_listeners):
                        listener(sample)

    async def stop_transaction(self, connector_id: int, reason: StopReason,
                               id_tag: str | None = None) -> bool:
        """End the transaction on a connector: contactor open, final reading."""
        c = self.connectors[connector_id]
        tx = c.transaction
        if tx is None or tx.stopping:
            return False
        tx.stopping = True
        c.evse.stop()
        self._update_status(c)
        await self._wait_contactor_open(c)
        reading = await self._fresh_reading(c)
        meter_stop = reading.energy_import_wh if reading else tx.meter_start_wh
        if reading is not None:
            tx.samples.append(MeterSample(c.id, tx.local_id, reading, ReadingContext.TRANSACTION_END))
        await self.outbox.put(TransactionStopped(c.id, tx.local_id, meter_stop, self.clock.time(),
                                                 reason, id_tag, tuple(tx.samples)))
        log.info("connector %d: transaction %s stopped (%s), %.0f Wh delivered", c.id,
                 tx.local_id, reason.value, meter_stop - tx.meter_start_wh)
        c.session = None
        c.finishing = c.plugged
        if c.lock is not None and not c.plugged:
            c.lock.set_locked(False)
        if c.scheduled_operative is not None:
            self._apply_availability(c, c.scheduled_operative)
        self._update_status(c)
        return True

    async def _wait_contactor_open(self, c: ConnectorState) -> None:
        """Wait until the safety loop has opened the contactor.

        The safety loop forces it open at the latest 6 s after PWM off; the
        wait is bounded a little beyond that so a stuck loop cannot hang a stop.
        """
        deadline = self.clock.monotonic() + 8.0
        while c.evse_status is not None and c.evse_status.contactor_closed:
            if self.clock.monotonic() > deadline:
                log.error("connector %d: contactor still reported closed after stop", c.id)
                return
            await self.clock.sleep(0.05)
