"""Transactions: begin, meter samples, end, and the ones a power cut left open.

The station's half that produces billing data. Every transaction message goes
to the outbox, which has it on disk before the contactor may close (a start)
or before the station moves on (a stop). Kept apart from ``station.py``, which
decides *when* a session begins and ends; this module decides what is recorded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from chargepoint.core.connector import ConnectorState, Session, Transaction
from chargepoint.core.events import (
    Activity,
    ActivityChanged,
    IdToken,
    MeterSample,
    ReadingContext,
    StatusChanged,
    StopReason,
    TransactionAuthorized,
    TransactionStarted,
    TransactionStopped,
    TxPoint,
)
from chargepoint.core.settings import Settings
from chargepoint.core.storage.outbox import OpenTransaction, Outbox
from chargepoint.core.storage.store import StoreError
from chargepoint.core.tariffs.tariff_codec import cost_json
from chargepoint.core.tariffs.tariff_cost import SessionCost
from chargepoint.core.tx_points import TxPoints
from hal.clock import Clock
from hal.interfaces import ConnectorLock, MeterFailure, MeterReading

if TYPE_CHECKING:
    from chargepoint.core.tariff_book import TariffBook

log = logging.getLogger(__name__)

#: The activities of a transaction under way.
_RUNNING = (Activity.STARTING, Activity.CHARGING, Activity.SUSPENDED_EV, Activity.SUSPENDED_EVSE)

#: Longest a stop waits for the safety loop to report the contactor open. The loop
#: forces it open at the latest 6 s after PWM off; a little beyond that, a stuck
#: loop cannot hang a stop.
CONTACTOR_OPEN_WAIT_S = 8.0


def whole_wh(energy_wh: float) -> int:
    """A meter reading in whole Wh, for the messages that bill in whole Wh (a start's and a stop's
    meter value in OCPP 1.6): the reading with three decimals, as samples carry it, rounded up.

    One rule for both ends of every session. It never decreases as the reading grows, so a
    session's stop is at most the start of the next session made from the same or a later
    reading: consecutive sessions never bill the same Wh twice, and their sums add up to the
    meter's advance with no Wh lost. Rounded up, a stop is never below a sample the CSMS was
    sent with decimals.
    """
    return math.ceil(round(energy_wh, 3))


async def set_lock(lock: ConnectorLock, locked: bool) -> bool:
    """Drive the plug lock in a worker thread: the actuator waits for its feedback."""
    return await asyncio.to_thread(lock.set_locked, locked)


class TransactionRecorder:
    """Starts, samples, stops and recovers the transactions of a station's connectors."""

    def __init__(self, clock: Clock, outbox: Outbox, settings: Settings,
                 spawn: Callable[[Awaitable[None]], object], changed: Callable[[ConnectorState], None],
                 aligned_listeners: list[Callable[[MeterSample], None]]) -> None:
        self.clock = clock
        self.outbox = outbox
        #: Why no transaction may start any more (the daemon is stopping), or None.
        self.closing: str | None = None
        self.settings = settings
        self._spawn = spawn
        #: Called when a connector's facts may have changed (the station reports its status).
        self._changed = changed
        self._aligned_listeners = aligned_listeners
        #: The reservation a beginning transaction uses up (it ends then), or None (see reservations.py).
        self.claim_reservation: Callable[[ConnectorState, Session], int | None] = lambda c, s: None
        #: The tariffs in force: each transaction's cost starts under one (set by the station).
        self.tariffs: TariffBook | None = None
        #: When transactions begin and end (tx_points.py).
        self.points = TxPoints(settings)

    # ------------------------------------------------------------- meters
    async def read_meter(self, c: ConnectorState) -> MeterReading | None:
        """Read the meter; on failure keep the last good reading and count."""
        result = await c.meter.read()
        if isinstance(result, MeterFailure):
            c.meter_failures += 1
            c.meter_failures_total += 1
            log.warning("connector %d: meter read failed (%s %s), %d in a row", c.id,
                        result.kind.value, result.detail, c.meter_failures)
            self._changed(c)
            return None
        recovered = not c.meter_available
        c.meter_failures = 0
        c.last_reading = result
        tx = c.transaction
        if tx is not None and tx.energy_cap_wh is not None and not tx.suspended and not tx.stopping \
                and result.energy_import_wh >= tx.energy_cap_wh:
            log.info("connector %d: %.0f Wh delivered under a refused identifier: energy stopped, "
                     "transaction kept open", c.id, result.energy_import_wh - tx.meter_start_wh)
            self._suspend(c, tx)
        tx = c.transaction
        if tx is not None and tx.cost is not None:
            tx.cost.advance(result.timestamp, result.energy_import_wh, tx.charging)
        if recovered:
            log.info("connector %d: meter answers again", c.id)
            self._changed(c)
        return result

    async def fresh_reading(self, c: ConnectorState) -> MeterReading | None:
        """A reading taken now, or the last good one (said in the log)."""
        reading = await self.read_meter(c)
        if reading is None and c.last_reading is not None:
            log.warning("connector %d: using the last good meter reading from %.0f s ago",
                        c.id, self.clock.time() - c.last_reading.timestamp)
        return reading or c.last_reading

    def refused_but_kept(self, c: ConnectorState, tx: Transaction) -> None:
        """The CSMS refused the running transaction's identifier and the operator keeps such
        transactions open (``stop_tx_on_invalid_id`` false): it may deliver up to
        ``max_energy_on_invalid_id_wh`` in all, then energy stops; the transaction stays open."""
        allowed = self.settings.current.max_energy_on_invalid_id_wh
        reading = c.last_reading.energy_import_wh if c.last_reading is not None else tx.meter_start_wh
        if reading - tx.meter_start_wh < allowed:
            tx.energy_cap_wh = tx.meter_start_wh + allowed
            log.info("connector %d: id %s refused by the CSMS: charging on up to %.0f Wh in all, "
                     "transaction kept open", c.id, tx.token, allowed)
            return
        log.info("connector %d: id %s refused by the CSMS: energy stopped, transaction kept open",
                 c.id, tx.token)
        self._suspend(c, tx)

    def _suspend(self, c: ConnectorState, tx: Transaction) -> None:
        tx.suspended = True
        c.evse.stop()
        self._changed(c)

    # -------------------------------------------------------------- start
    async def start(self, c: ConnectorState, point: TxPoint | None = None) -> None:
        """Begin the transaction of the session on ``c`` at its start ``point`` (None: the EV is
        plugged in and the driver authorized, the only start before start points)."""
        session = c.session
        if session is None or session.transaction is not None or session.starting or self.closing:
            return
        session.starting = True
        try:
            tx = await self._prepare(c, session, point)
        finally:
            session.starting = False
        if tx is None:
            return
        if self.closing:  # the daemon began to stop while the start read the meter: no new transaction
            log.info("connector %d: no transaction started: %s", c.id, self.closing)
            return
        # Attached and queued in one step (no await between): a stop that follows, however fast
        # (the EV unplugged meanwhile), is queued after its start.
        session.transaction = tx
        reservation_id = self.claim_reservation(c, session)
        # On disk before the contactor may close: a charge never goes unbilled.
        try:
            await self.outbox.put(TransactionStarted(c.id, tx.local_id, session.token, tx.meter_start_wh,
                                                     tx.started_at, connector_id=c.hw.connector_id,
                                                     reservation_id=reservation_id,
                                                     remote_start_id=tx.remote_start_id, point=point,
                                                     plugged=tx.plugged))
        except StoreError as exc:
            log.error("connector %d: transaction %s not started: it cannot be recorded (%s)", c.id,
                      tx.local_id, exc)
            tx.stopping = True
            return
        log.info("connector %d: transaction %s started at %.0f Wh%s", c.id, tx.local_id, tx.meter_start_wh,
                 f" ({point.value.replace('_', ' ')})" if point else "")
        if tx.stopping:
            return  # ended (EV gone) while the start was being written
        if session.authorized:  # a transaction begun by the EV alone gets energy once someone is
            c.evse.allow()
        self._changed(c)
        self._spawn(self.sample(c, tx))

    async def _prepare(self, c: ConnectorState, session: Session,
                       point: TxPoint | None) -> Transaction | None:
        """The begin reading and the plug locked; None if the session ended (or the EV left) meanwhile.
        A transaction begun by an authorization alone (``point``) needs no EV yet."""
        without_ev = point is TxPoint.AUTHORIZED
        reading = await self.fresh_reading(c)
        if reading is None:
            log.error("connector %d: no meter reading, cannot start a transaction", c.id)
            return None
        if c.session is not session or not (c.plugged or without_ev):
            return None
        if c.lock is not None and c.plugged and not await set_lock(c.lock, True):
            log.warning("connector %d: plug lock did not confirm locking", c.id)
        if c.session is not session or not (c.plugged or without_ev):
            if c.lock is not None and not c.plugged:
                await set_lock(c.lock, False)
            return None
        local_id = uuid.uuid4().hex[:12]
        begin = MeterSample(c.id, local_id, reading, ReadingContext.TRANSACTION_BEGIN,
                            connector_id=c.hw.connector_id)
        return Transaction(local_id, session.token, reading.energy_import_wh, self.clock.time(), [begin],
                           remote_start_id=session.remote_start_id,
                           cost=self._start_cost(c.id, self.clock.time(), reading.energy_import_wh,
                                                 session.token.value if session.token else None),
                           plugged=c.plugged, ev_came=c.plugged,
                           activity=Activity.STARTING if c.plugged else Activity.SUSPENDED_EV)

    # ------------------------------------------------------ authorization
    async def authorized(self, c: ConnectorState, token: IdToken, group_id: str | None,
                         remote_start_id: int | None = None) -> None:
        """An identifier for the transaction on ``c`` that began without one (from the reader, or
        the operator's remote start ``remote_start_id``): recorded (on disk before the energy may
        flow, as a start is), then the energy is allowed."""
        tx, session = c.transaction, c.session
        if tx is None or session is None or tx.stopping or session.token is not None:
            return
        session.token, tx.token, session.group_id = token, token, group_id
        if remote_start_id is not None:
            session.remote_start_id = tx.remote_start_id = remote_start_id
        await self.outbox.put(TransactionAuthorized(c.id, tx.local_id, token, True, self.clock.time(),
                                                    c.hw.connector_id, remote_start_id,
                                                    remote=remote_start_id is not None))
        log.info("connector %d: transaction %s authorized for %s", c.id, tx.local_id, token)
        if c.transaction is tx and not tx.stopping:
            c.evse.allow()
            self._changed(c)

    async def deauthorized(self, c: ConnectorState, token: IdToken | None, remote: bool = False) -> None:
        """The holder (``token``), or the operator (``remote``), ended the authorization and the
        transaction goes on to its stop point (the EV leaving): the energy stops now."""
        tx, session = c.transaction, c.session
        if tx is None or session is None or tx.stopping or session.deauthorized:
            return
        session.deauthorized = True
        c.evse.stop()
        self._changed(c)
        await self.outbox.put(TransactionAuthorized(c.id, tx.local_id, token, False, self.clock.time(),
                                                    c.hw.connector_id, remote=remote))
        log.info("connector %d: authorization%s ended%s, transaction %s open until the EV leaves", c.id,
                 f" of {token}" if token else "", " by the operator" if remote else "", tx.local_id)

    def _start_cost(self, evse_id: int, started_at: float, meter_start_wh: float,
                    id_token: str | None = None) -> SessionCost | None:
        if self.tariffs is None:
            return None
        return self.tariffs.start_cost(evse_id, started_at, meter_start_wh, id_token)

    def activity_changed(self, c: ConnectorState, status: StatusChanged) -> StopReason | None:
        """Queue the running transaction's new activity (charging, suspended ...), when it changed
        (or the EV came or left). Returns why the transaction ends now, when the end of the energy
        flow is a stop point (the caller stops it), else None."""
        tx = c.transaction
        if tx is None or tx.stopping or status.activity not in _RUNNING:
            return None
        arrived = None if status.plugged == tx.plugged else status.plugged
        if status.activity is tx.activity and arrived is None:
            return None
        flowed, tx.activity, tx.plugged = tx.energy_flowed, status.activity, status.plugged
        tx.ev_came = tx.ev_came or status.plugged
        tx.energy_flowed = flowed or status.activity is Activity.CHARGING
        # Queued now, not in a task: it must come after its start and before its stop.
        self.outbox.put_activity(ActivityChanged(c.id, tx.local_id, status.activity, status.plugged,
                                                 status.timestamp, c.hw.connector_id, arrived))
        if flowed and status.activity is not Activity.CHARGING and self.points.ends_with_energy():
            return StopReason.STOPPED_BY_EV if status.activity is Activity.SUSPENDED_EV else StopReason.OTHER
        return None

    # ------------------------------------------------------------ samples
    async def sample(self, c: ConnectorState, tx: Transaction) -> None:
        """Periodic meter samples of one transaction, every sample interval."""
        while True:
            interval = self.settings.current.sample_interval_s
            if interval <= 0:
                await self.clock.sleep(1.0)  # sampling switched off; look again later
                if c.transaction is not tx or tx.stopping:
                    return
                continue
            await self.clock.sleep(interval)
            if c.transaction is not tx or tx.stopping:
                return
            reading = await self.fresh_reading(c)
            if reading is not None and c.transaction is tx and not tx.stopping:
                offered = c.evse_status.offered_a if c.evse_status else None
                sample = MeterSample(c.id, tx.local_id, reading, ReadingContext.PERIODIC, offered,
                                     connector_id=c.hw.connector_id)
                tx.samples.append(sample)
                # Queued with the cost so far (the reading has just priced it); the record keeps none.
                cost = cost_json(tx.cost.summary()) if tx.cost else None
                await self.outbox.put(replace(sample, cost=cost) if cost else sample)

    async def sample_now(self, c: ConnectorState) -> None:
        """A reading of the running transaction taken now (the CSMS asked for one): queued like a
        periodic sample, and kept for the transaction's own record."""
        tx = c.transaction
        if tx is None or tx.stopping:
            return
        reading = await self.fresh_reading(c)
        if reading is None or c.transaction is not tx or tx.stopping:
            return
        offered = c.evse_status.offered_a if c.evse_status else None
        sample = MeterSample(c.id, tx.local_id, reading, ReadingContext.TRIGGER, offered,
                             connector_id=c.hw.connector_id)
        tx.samples.append(sample)
        await self.outbox.put(sample)

    async def clock_aligned(self, connectors: list[ConnectorState]) -> None:
        """Meter readings at ``aligned_interval_s`` boundaries of the wall clock.

        Inside a transaction they belong to it (queued, and kept for the stop
        message); outside one they go to the aligned listeners only.
        """
        while True:
            interval = self.settings.current.aligned_interval_s
            if interval <= 0:
                await self.clock.sleep(1.0)
                continue
            now = self.clock.time()
            await self.clock.sleep(interval - (now % interval))
            for c in connectors:
                reading = await self.fresh_reading(c)
                if reading is None:
                    continue
                tx = c.transaction
                if tx is not None and not tx.stopping:
                    sample = MeterSample(c.id, tx.local_id, reading, ReadingContext.CLOCK,
                                         connector_id=c.hw.connector_id)
                    tx.samples.append(sample)
                    await self.outbox.put(sample)
                else:
                    sample = MeterSample(c.id, "", reading, ReadingContext.CLOCK,
                                         connector_id=c.hw.connector_id)
                    for listener in list(self._aligned_listeners):
                        listener(sample)

    # --------------------------------------------------------------- stop
    async def stop(self, c: ConnectorState, reason: StopReason,
                   token: IdToken | None = None) -> Transaction | None:
        """End the transaction on ``c``: contactor open, final reading, stop queued.

        Returns the transaction that ended, or None if none was running (or it
        was already stopping). The session is over when this returns.
        """
        tx = c.transaction
        if tx is None or tx.stopping:
            return None
        tx.stopping = True
        try:
            return await self._stop(c, tx, reason, token)
        finally:
            tx.ended.set()

    async def _stop(self, c: ConnectorState, tx: Transaction, reason: StopReason,
                    token: IdToken | None) -> Transaction:
        c.evse.stop()
        self._changed(c)
        await self._wait_contactor_open(c)
        reading = await self.fresh_reading(c)
        meter_stop = reading.energy_import_wh if reading else tx.meter_start_wh
        if reading is not None:
            tx.samples.append(MeterSample(c.id, tx.local_id, reading, ReadingContext.TRANSACTION_END,
                                          connector_id=c.hw.connector_id))
        try:
            await self.outbox.put(TransactionStopped(
                c.id, tx.local_id, meter_stop, self.clock.time(), reason, token,
                tuple(tx.samples), connector_id=c.hw.connector_id,
                cost=cost_json(tx.cost.summary()) if tx.cost else None))
        except StoreError as exc:
            # Not sent either (nothing goes out that is not on disk): after a restart the
            # transaction is stopped once, at its last persisted reading.
            log.error("connector %d: the stop of transaction %s cannot be recorded (%s)", c.id,
                      tx.local_id, exc)
        log.info("connector %d: transaction %s stopped (%s), %.0f Wh delivered", c.id,
                 tx.local_id, reason.value, meter_stop - tx.meter_start_wh)
        if c.lock is not None and not c.plugged:
            await set_lock(c.lock, False)
        # The session ends with no await before the caller's next step (an availability change
        # scheduled for this end): no status is reported in between.
        c.session = None
        c.finishing = c.plugged
        return tx

    async def _wait_contactor_open(self, c: ConnectorState) -> None:
        """Wait until the safety loop has opened the contactor (bounded, see CONTACTOR_OPEN_WAIT_S)."""
        deadline = self.clock.monotonic() + CONTACTOR_OPEN_WAIT_S
        while c.evse_status is not None and c.evse_status.contactor_closed:
            if self.clock.monotonic() > deadline:
                log.error("connector %d: contactor still reported closed after stop", c.id)
                return
            await self.clock.sleep(0.05)

    # ----------------------------------------------------------- recovery
    async def recover(self, connectors: dict[int, ConnectorState], cut_off: list[OpenTransaction],
                      resume: bool, settle_s: float = 2.0, continuing: frozenset[int] = frozenset(),
                      ev_left: Mapping[int, float] | None = None) -> None:
        """Deal with transactions a power cut (or crash) left open.

        Each is stopped with reason power loss at its last persisted meter
        reading, or, with ``resume`` and the EV still plugged in, carried on as
        if nothing had happened. The safety loops get ``settle_s`` to see the
        pilot first. A connector in ``continuing`` never lost power: the safety
        supervisor kept it charging while this daemon was away, and its
        transaction simply goes on (its energy meanwhile is on the meter's register). A
        connector in ``ev_left`` had it too until its EV left (the time given): the supervisor
        ended the grant then, so the meter has not moved since and the transaction ends as an unplug
        ends it, at that time with a fresh reading (with ``stop_tx_on_ev_disconnect``; else it waits
        for its EV again).
        """
        ev_left = ev_left or {}
        if not cut_off:
            return
        if resume:
            await self.clock.sleep(settle_s)
        for open_tx in cut_off:
            c = connectors.get(open_tx.evse_id)
            kept, left_at = open_tx.evse_id in continuing, ev_left.get(open_tx.evse_id)
            if left_at is not None and left_at < open_tx.started_at:
                left_at = None  # an earlier car's departure (this one has had no energy granted yet)
            left = left_at is not None
            if c is not None and left_at is not None and self.settings.current.stop_tx_on_ev_disconnect:
                await self._ended_while_away(c, open_tx, left_at)
                continue
            if c is not None and c.session is None and c.operative and (kept or left or resume and c.plugged):
                # Its cost starts again from its begin: the energy since is on the meter; the time
                # while this daemon was away counts as charging time.
                tx = Transaction(open_tx.local_id, open_tx.token, open_tx.meter_start_wh,
                                 open_tx.started_at, remote_start_id=open_tx.remote_start_id,
                                 cost=self._start_cost(c.id, open_tx.started_at, open_tx.meter_start_wh),
                                 plugged=c.plugged)
                c.session = Session(open_tx.token, self.clock.monotonic(), tx,
                                    remote_start_id=open_tx.remote_start_id)
                # Unplugged while no one looked: the session ends as any unplug ends it.
                ends = not c.plugged and self.settings.current.stop_tx_on_ev_disconnect
                log.info("connector %d: transaction %s %s", c.id, tx.local_id,
                         "continues: the supervisor kept it charging" if kept
                         else "continues: its EV left while the daemon was away (it outlives an unplug)"
                         if left else "ends: its EV is gone" if ends else "resumed after restart")
                if c.lock is not None and c.plugged and not ends and not await set_lock(c.lock, True):
                    log.warning("connector %d: plug lock did not confirm locking", c.id)
                if open_tx.token is not None and not ends:  # begun by the EV alone: energy once
                    c.evse.allow()                             # someone is authorized
                self._changed(c)
                self._spawn(self.sample(c, tx))
                if ends:
                    await self.stop(c, StopReason.EV_DISCONNECTED)
                continue
            log.warning("transaction %s on connector %d was cut off; stopped (power loss) at the "
                        "last persisted reading %.0f Wh", open_tx.local_id, open_tx.evse_id,
                        open_tx.last_meter_wh)
            # Priced up to the last persisted reading, the time since its start as charging time.
            cost = self._start_cost(open_tx.evse_id, open_tx.started_at, open_tx.meter_start_wh)
            if cost is not None:
                cost.advance(open_tx.last_meter_at, open_tx.last_meter_wh, charging=True)
            await self.outbox.put(TransactionStopped(
                open_tx.evse_id, open_tx.local_id, open_tx.last_meter_wh, open_tx.last_meter_at,
                StopReason.POWER_LOSS, cost=cost_json(cost.summary()) if cost else None))

    async def _ended_while_away(self, c: ConnectorState, open_tx: OpenTransaction, left_at: float) -> None:
        """A transaction whose EV left at ``left_at`` while no daemon was attached ends as that unplug
        ends one, at that time: the supervisor ended the grant then, so a reading taken now is the
        register at that moment, and the time this daemon was away after it is neither charging nor
        parking time. Not resumed first: a car plugged in since is another's (no energy, no lock)."""
        reading = await self.fresh_reading(c)  # (no transaction on ``c``: nothing priced up to now)
        meter_stop = reading.energy_import_wh if reading else open_tx.last_meter_wh
        samples = () if reading is None else (MeterSample(
            c.id, open_tx.local_id, replace(reading, timestamp=left_at), ReadingContext.TRANSACTION_END,
            connector_id=c.hw.connector_id),)
        cost = self._start_cost(c.id, open_tx.started_at, open_tx.meter_start_wh)
        if cost is not None:
            cost.advance(left_at, meter_stop, charging=True)
        log.info("connector %d: transaction %s ends: its EV left %.0f s ago, while the daemon was away; "
                 "%.0f Wh delivered", c.id, open_tx.local_id, max(0.0, self.clock.time() - left_at),
                 meter_stop - open_tx.meter_start_wh)
        await self.outbox.put(TransactionStopped(
            c.id, open_tx.local_id, meter_stop, left_at, StopReason.EV_DISCONNECTED, None, samples,
            connector_id=c.hw.connector_id, cost=cost_json(cost.summary()) if cost else None))
        if c.lock is not None and not c.plugged:
            await set_lock(c.lock, False)
