"""The station: EVSEs and their connectors, sessions, authorization and availability.

It turns what happens at the connectors (EV plugged, card tapped, safety loop
status) and what the operator asks (remote start/stop, availability) into
sessions and transactions, and reports them as plain events. It knows neither
OCPP nor pins: the safety loop decides what the hardware may do, the adapters
decide how events are spelled on the wire, ``transactions.py`` records what a
transaction delivered.

Addresses are EVSE ids (each EVSE here has one connector, id 1 within it);
EVSE 0 is the station as a whole.

Everything here runs on the asyncio event loop. The safety loop's status
callbacks arrive from its thread and are handed over with
``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING

from chargepoint.core.authorization import LocalAuthorization
from chargepoint.core.card_flow import CardFlow
from chargepoint.core.commands import AvailabilityChange, StartResult, UnlockResult
from chargepoint.core.connector import ConnectorHardware, ConnectorState, Session, Transaction
from chargepoint.core.connector_events import ConnectorEvents, StationParts
from chargepoint.core.events import (
    AuthResult,
    AuthStatus,
    IdToken,
    MeterSample,
    StatusChanged,
    StopReason,
)
from chargepoint.core.meter_poll import poll_meter
from chargepoint.core.monitoring import VariableMonitoring
from chargepoint.core.reservations import Reservations
from chargepoint.core.settings import Settings
from chargepoint.core.storage.outbox import OpenTransaction, Outbox
from chargepoint.core.tariff_book import TariffBook
from chargepoint.core.transactions import TransactionRecorder, set_lock
from chargepoint.core.tx_points import TxPoints
from chargepoint.core.views import ConnectorView, connector_view
from hal.clock import Clock

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)
#: At close: how often the station's tasks are cancelled, and how long each time is waited for.
CLOSE_ATTEMPTS, CLOSE_WAIT_S = 10, 0.5

Authorizer = Callable[[IdToken], Awaitable[AuthResult]]


class Station:
    """All EVSEs of one charge point and the sessions on them."""

    def __init__(
        self,
        connectors: list[ConnectorHardware],
        clock: Clock,
        outbox: Outbox,
        settings: Settings,
        *,
        free_vend_token: IdToken | None = None,
        meter_poll_interval_s: float = 1.0,
        persist_availability: Callable[[dict[int, bool]], None] | None = None,
    ) -> None:
        self.connectors = {hw.evse_id: ConnectorState(hw) for hw in connectors}
        self.clock = clock
        self.outbox = outbox
        #: Operator-changeable behaviour, read when used.
        self.settings = settings
        self.free_vend_token = free_vend_token
        self.meter_poll_interval_s = meter_poll_interval_s
        #: Keeps ``{evse_id: operative}`` of one availability change (all its EVSEs in one write).
        self.persist_availability = persist_availability
        self.authorization = LocalAuthorization(settings, clock)
        self.authorizer: Authorizer | None = None
        self.status_listeners: list[Callable[[StatusChanged], None]] = []
        #: Clock-aligned readings outside transactions (best effort, not queued).
        self.aligned_listeners: list[Callable[[MeterSample], None]] = []
        #: Told once ``recover`` has taken back (or stopped) what a restart found open.
        self.recovery_listeners: list[Callable[[], None]] = []
        self.transactions = TransactionRecorder(clock, outbox, settings, self._spawn, self._update_status,
                                                self.aligned_listeners)
        self.reservations = Reservations(self.connectors, clock, settings, self._spawn, self._update_all)
        self.transactions.claim_reservation = self.reservations.claim
        self.tariffs = TariffBook(self.connectors, clock.time, settings.config.home)
        self.transactions.tariffs = self.tariffs
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._station_reported: StatusChanged | None = None
        #: Why the state database cannot be written, once it cannot (see ``storage_failed``).
        self.storage_failure: str | None = None
        #: The variable monitors (monitoring.py). The services built around the station (charging
        #: profiles, certificates, firmware, diagnostics, the display) are not held here: the daemon
        #: hands them to whoever speaks for the station (core/services.py).
        self.monitoring = VariableMonitoring(clock, settings)
        #: Connectors whose open transaction ``recover`` decides on before a plug-in starts a new one,
        #: and those of them the safety supervisor kept charging while no daemon ran.
        self.held_for_recovery: set[int] = set()
        self.continuing: frozenset[int] = frozenset()
        self.ev_left: dict[int, float] = {}
        #: Plug-in, unplug and faults as the safety loops report them (connector_events.py).
        self.events = ConnectorEvents(StationParts(
            self.connectors, clock, settings, self.reservations, self.transactions, free_vend_token,
            lambda: self.held_for_recovery, self._spawn, self.stop_transaction, self._update_status))
        #: What a presented identifier does (card_flow.py).
        self.cards = CardFlow(self)

    @property
    def tx_points(self) -> TxPoints:
        """When transactions begin and end (tx_points.py); a protocol adapter may fix them."""
        return self.transactions.points

    async def start(self) -> None:
        """Hook up the safety loops and start polling meters."""
        self._loop = asyncio.get_running_loop()
        for connector in self.connectors.values():
            connector.evse.on_status = self.events.from_thread(connector.id)
            connector.evse_status = connector.evse.status
            connector.evse.start()
            self._spawn(self._poll_meter(connector))
        self._spawn(self.transactions.clock_aligned(list(self.connectors.values())))
        self._spawn(self.monitoring.run())
        for connector in self.connectors.values():
            self._update_status(connector)

    async def close(self) -> None:
        # Cancelled again until they end: a library awaited inside a task (the Modbus client of a
        # meter read) can swallow one cancellation, and the task would then run on for ever.
        pending = set(self._tasks)
        for _ in range(CLOSE_ATTEMPTS):
            for task in pending:
                task.cancel()
            if not pending:
                break
            _, pending = await asyncio.wait(pending, timeout=CLOSE_WAIT_S)
        if pending:
            log.warning("%d station task(s) still running after %d cancellations", len(pending),
                        CLOSE_ATTEMPTS)
        for connector in self.connectors.values():
            connector.evse.close()
            await connector.meter.close()

    def _spawn(self, coro: Awaitable[None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    spawn = _spawn  # the station's parts run their work as its tasks

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("station task failed", exc_info=task.exception())

    # ------------------------------------------------------------- status
    def status_of(self, evse_id: int) -> StatusChanged:
        """The current facts of an EVSE's connector, or of the station (0)."""
        if evse_id == 0:
            operative = any(c.operative for c in self.connectors.values())
            return StatusChanged(0, self.clock.time(), operative=operative, connector_id=0)
        return self.connectors[evse_id].status(self.clock.time())

    def view(self, evse_id: int) -> ConnectorView:
        """A snapshot of one EVSE's connector for the local surfaces (KeyError if unknown)."""
        c = self.connectors[evse_id]
        return connector_view(c, self.clock.time(), self.reservations.on(c.id))

    def hardware(self, evse_id: int) -> ConnectorHardware:
        """The hardware bundle of an EVSE: its safety loop (for a technician's tests) and meter."""
        return self.connectors[evse_id].hw

    def _update_all(self) -> None:
        for c in self.connectors.values():
            self._update_status(c)

    def _update_status(self, c: ConnectorState) -> None:
        c.reported_anew.set()
        for other in self.reservations.refresh():  # a reservation's hold on the others may change too
            if other is not c:
                self._update_status(other)
        current = c.status(self.clock.time())
        previous = c.reported
        if previous is not None and previous.facts == current.facts:
            return
        c.reported = current
        ended = self.transactions.activity_changed(c, current)
        if ended is not None:  # the energy stopped flowing, and that is a stop point
            self._spawn(self.stop_transaction(c.id, ended))
        log.info("connector %d: %s%s%s%s", c.id, current.activity.value.replace("_", " "),
                 "" if current.operative else ", inoperative",
                 f", fault {current.fault}" if current.fault else "",
                 f" ({current.warning})" if current.warning else "")
        for listener in list(self.status_listeners):
            listener(current)

    report = _update_status  # the station's parts report a connector's changed facts through it

    async def _poll_meter(self, c: ConnectorState) -> None:
        await poll_meter(c, self.transactions.read_meter, self.clock, self.meter_poll_interval_s)

    # ------------------------------------------------------- authorization
    async def authorize(self, token: IdToken) -> AuthResult:
        """The CSMS, the local list and the cache decide (see authorization.py)."""
        return await self.authorization.authorize(token, self._ask_csms if self.authorizer else None)

    async def _ask_csms(self, token: IdToken) -> AuthResult:
        assert self.authorizer is not None
        try:
            return await self.authorizer(token)
        except Exception as exc:  # noqa: BLE001 - any failure to ask means "unknown"
            log.warning("authorization of %s failed: %s", token, exc)
            return AuthResult(AuthStatus.UNKNOWN)

    async def card_presented(self, token: IdToken) -> AuthStatus | None:
        """A card was tapped on the reader (see ``CardFlow.presented``)."""
        return await self.cards.presented(token)

    def free_connector(self, prefer_plugged: bool, token: IdToken | None = None,
                        group_id: str | None = None) -> ConnectorState | None:
        free = [c for c in self.connectors.values() if self.start_refusal(c.id, token, group_id) is None]
        if prefer_plugged:  # then one held for this token's reservation
            free.sort(key=lambda c: (not c.plugged, not c.reserved))
        return free[0] if free else None

    def start_refusal(self, evse_id: int | None, token: IdToken | None = None,
                      group_id: str | None = None) -> str | None:
        """Why a session (of ``token``, when given) cannot begin on ``evse_id`` (None: on any) now,
        in words; None if it can. Without a token, a connector held for a reservation is refused."""
        if self.storage_failure is not None:
            return f"the state database cannot be written ({self.storage_failure}): no session can be kept"
        if evse_id is None:
            reasons = [self.start_refusal(c, token, group_id) for c in self.connectors]
            if any(reason is None for reason in reasons):
                return None
            return "no connector is free: " + "; ".join(map(str, reasons))
        c = self.connectors.get(evse_id)
        if c is None:
            return f"there is no connector {evse_id}"
        if not c.operative:
            return f"connector {c.id} is inoperative"
        if c.id in self.held_for_recovery:
            return f"connector {c.id} is taking up its transaction from before the restart"
        if c.session is not None:
            who = c.session.token or "an EV whose driver is not known yet"
            return f"connector {c.id} already has a session for {who}"
        if c.evse_status is not None and c.evse_status.faults:
            faults = ", ".join(sorted(f.value for f in c.evse_status.faults))
            return f"connector {c.id} is faulted ({faults})"
        held = c.reserved if token is None else not self.reservations.permits(c.id, token, group_id)
        return f"connector {c.id} is reserved" if held else None

    def begin_session(self, c: ConnectorState, token: IdToken, group_id: str | None = None,
                       remote_start_id: int | None = None) -> None:
        c.finishing = False  # a new session on a connector whose EV is still plugged (Finishing)
        c.session = Session(token, self.clock.monotonic(), group_id=group_id, remote_start_id=remote_start_id)
        log.info("connector %d: session for %s", c.id, token)
        self._update_status(c)
        self.events.evaluate(c)  # a start point may hold now (the EV in, or the authorization alone)
        if not c.plugged:
            self._spawn(self._expire_unplugged_session(c, c.session))

    async def _expire_unplugged_session(self, c: ConnectorState, session: Session) -> None:
        """No EV within the connection timeout: the authorization lapses, and a transaction it
        began (an authorization as the start point) that no EV came to ends (timeout)."""
        timeout = self.settings.current.connection_timeout_s
        await self.clock.sleep(timeout)
        tx = session.transaction
        if c.session is session and tx is None:
            log.info("connector %d: no EV within %.0f s, authorization for %s lapses",
                     c.id, timeout, session.token)
            c.session = None
            self._update_status(c)
        elif c.session is session and tx is not None and not tx.ev_came and not c.plugged:
            log.info("connector %d: no EV within %.0f s, transaction %s ends", c.id, timeout, tx.local_id)
            await self.stop_transaction(c.id, StopReason.TIMEOUT)

    # --------------------------------------------------------------- remote
    def remote_start(self, token: IdToken, evse_id: int | None,
                     authorize_first: bool | None = None, remote_start_id: int | None = None) -> StartResult:
        """The operator starts a session; answers at once, works after.

        ``authorize_first``: ask the CSMS about the identifier before the start (None: as the
        ``authorize_remote_start`` setting says; the station's rule, whichever version asked).
        ``remote_start_id`` is the request's own id, when the operator's protocol gives one: the
        transaction carries it (on disk with it), whatever kind of identifier the request named.
        """
        if authorize_first is None:
            authorize_first = self.settings.current.authorize_remote_start
        known = self.authorization.known(token.value)  # its group, if the local list or cache knows it
        group_id = known.group_id if known else None
        waiting = self.cards.waiting_for_driver(evse_id)
        if waiting is not None and waiting.transaction is not None:  # the EV began one: this names its driver
            self._spawn(self.transactions.authorized(waiting, token, group_id, remote_start_id))
            return StartResult(True, waiting.id, transaction_id=waiting.transaction.local_id)
        refusal = self.start_refusal(evse_id, token, group_id)
        if refusal is not None:
            return StartResult(False, evse_id, refusal)
        c = self.connectors[evse_id] if evse_id is not None else \
            self.free_connector(prefer_plugged=True, token=token, group_id=group_id)
        assert c is not None
        if authorize_first:
            self._spawn(self._authorize_then_begin(c, token, remote_start_id))
        else:
            self.begin_session(c, token, group_id, remote_start_id)
        return StartResult(True, c.id, waiting_for_ev=not c.plugged)

    async def _authorize_then_begin(self, c: ConnectorState, token: IdToken,
                                    remote_start_id: int | None) -> None:
        result = await self.authorize(token)
        refusal = self.start_refusal(c.id, token, result.group_id)
        if result.status != AuthStatus.ACCEPTED:
            log.info("remote start for %s not accepted: %s", token, result.status.value)
        elif refusal is not None:
            log.info("remote start for %s: not begun, %s meanwhile", token, refusal)
        else:
            self.begin_session(c, token, result.group_id, remote_start_id)

    def remote_stop(self, local_id: str) -> bool:
        """The operator ends a transaction, as the driver's stop does (tx_points.py): with only the
        EV's departure as the stop point, its energy stops and it ends when the EV leaves."""
        for c in self.connectors.values():
            tx = c.transaction
            if tx is not None and tx.local_id == local_id and not tx.stopping:
                if self.tx_points.ends_at_stop_presented():
                    self._spawn(self.stop_transaction(c.id, StopReason.REMOTE))
                else:
                    self._spawn(self.transactions.deauthorized(c, None, remote=True))
                return True
        return False

    def transaction_authorized(self, local_id: str, result: AuthResult,
                               stop_if_refused: bool | None = None) -> None:
        """The CSMS's word on a running transaction's identifier (see ``CardFlow``); refused, it ends
        when ``stop_if_refused`` (None: as the ``stop_tx_on_invalid_id`` setting says)."""
        if stop_if_refused is None:
            stop_if_refused = self.settings.current.stop_tx_on_invalid_id
        self.cards.transaction_authorized(local_id, result, stop_if_refused)

    def sample_now(self, evse_id: int) -> bool:
        """Queue a reading of the transaction on ``evse_id`` now; False if none runs there."""
        c = self.connectors.get(evse_id)
        if c is None or c.transaction is None or c.transaction.stopping:
            return False
        self._spawn(self.transactions.sample_now(c))
        return True

    def storage_failed(self, reason: str) -> None:
        """The state database cannot be written: no transaction may run that cannot be recorded.

        Every connector's permission to charge is withdrawn (the safety loop opens the
        contactor) and it reports the fault with a short reason a technician can act on.
        """
        self.storage_failure = reason
        short = "state database: " + ("disk full" if "full" in reason else
                                      "read-only" if "read-only" in reason else "write failed")
        for c in self.connectors.values():
            c.evse.stop()
            c.station_fault = ("storage", short)
            self._update_status(c)

    def change_availability(self, evse_id: int, operative: bool) -> AvailabilityChange:
        """Make an EVSE (0 = all) operative or not.

        A running transaction finishes first (scheduled). The choice survives a restart.
        """
        if evse_id != 0 and evse_id not in self.connectors:
            return AvailabilityChange.REJECTED
        targets = list(self.connectors.values()) if evse_id == 0 else [self.connectors[evse_id]]
        scheduled = False
        changed: dict[int, bool] = {}
        for c in targets:
            if c.transaction is not None and not operative:
                c.scheduled_operative = operative
                scheduled = True
                log.info("connector %d: inoperative once transaction %s ends", c.id, c.transaction.local_id)
            elif self._apply_availability(c, operative):
                changed[c.id] = operative
        self._persist_availability(changed)
        self._notify_station_status()
        return AvailabilityChange.SCHEDULED if scheduled else AvailabilityChange.ACCEPTED

    def restore_availability(self, stored: dict[int, bool]) -> None:
        """Availability as it was before the restart (before ``start``)."""
        for evse_id, operative in stored.items():
            if evse_id in self.connectors:
                self.connectors[evse_id].operative = operative

    def _persist_availability(self, changed: dict[int, bool]) -> None:
        """Keep the EVSEs one change made (in)operative together: after a kill, all or none."""
        if changed and self.persist_availability is not None:
            self.persist_availability(changed)

    def _apply_availability(self, c: ConnectorState, operative: bool) -> bool:
        """Make ``c`` (in)operative now; whether that changed it (the caller keeps the change)."""
        c.scheduled_operative = None
        changed = c.operative != operative
        if changed:
            c.operative = operative
            tell = getattr(c.evse, "set_operative", None)  # the supervisor refuses energy to it too
            if tell is not None:
                tell(operative)
            log.info("connector %d: %s", c.id, "operative" if operative else "inoperative")
            if not operative and c.session is not None and c.transaction is None:
                c.session = None  # a pending authorization does not survive going out of service
        self._update_status(c)
        return changed

    def _notify_station_status(self) -> None:
        """Report the station as a whole (EVSE 0), when its facts changed."""
        status = self.status_of(0)
        if self._station_reported is not None and self._station_reported.facts == status.facts:
            return
        self._station_reported = status
        for listener in list(self.status_listeners):
            listener(status)

    async def unlock(self, evse_id: int) -> UnlockResult:
        """Release the plug; a transaction on the connector is stopped first, so the
        plug never comes out under load. The actuator runs in a worker thread."""
        c = self.connectors.get(evse_id)
        if c is None:
            return UnlockResult.UNKNOWN_CONNECTOR
        if c.transaction is not None:
            await self.stop_transaction(c.id, StopReason.UNLOCK_COMMAND)
        if c.lock is None:
            return UnlockResult.NO_LOCK
        return UnlockResult.UNLOCKED if await set_lock(c.lock, False) else UnlockResult.FAILED

    async def stop_all(self, reason: StopReason) -> None:
        """End every running transaction (reset, shutdown), and wait for a stop already under way
        (an unplug's, reading the meter): what follows, the queue's drain before the daemon ends,
        then finds every stop queued."""
        running = self.active_transactions()
        await asyncio.gather(*(self.stop_transaction(evse_id, reason) for evse_id, _ in running))
        await asyncio.gather(*(tx.ended.wait() for _, tx in running))

    def active_transactions(self) -> list[tuple[int, Transaction]]:
        return [(c.id, c.transaction) for c in self.connectors.values() if c.transaction]

    async def stop_transaction(self, evse_id: int, reason: StopReason,
                               token: IdToken | None = None) -> bool:
        """End the transaction on an EVSE: contactor open, final reading, stop queued."""
        c = self.connectors[evse_id]
        if await self.transactions.stop(c, reason, token) is None:
            return False
        if c.scheduled_operative is not None:
            operative = c.scheduled_operative
            if self._apply_availability(c, operative):
                self._persist_availability({c.id: operative})
            self._notify_station_status()
        self._update_status(c)
        return True

    def hold_for_recovery(self, cut_off: list[OpenTransaction], continuing: frozenset[int],
                          ev_left: Mapping[int, float] | None = None) -> None:
        """Before ``start``: the connectors of transactions a power cut (or crash) left open begin
        nothing of their own (an EV seen at start begins no transaction) until ``recover`` has
        decided on them; ``continuing``: those the safety supervisor kept charging; ``ev_left``:
        those whose EV left while this daemon was away, and when (the supervisor ended the grant then)."""
        self.continuing = frozenset(continuing)
        self.ev_left = dict(ev_left or {})
        self.held_for_recovery = set(continuing) | {t.evse_id for t in cut_off}

    async def recover(self, cut_off: list[OpenTransaction], resume: bool, settle_s: float = 2.0) -> None:
        """Transactions a power cut (or crash) left open: see ``TransactionRecorder.recover``.

        The connectors in ``held_for_recovery`` (set before ``start``: their energy still granted
        by the safety supervisor) continue their transaction, and until this has run start no new
        session of their own at the plug-in this daemon sees at start.
        """
        try:
            await self.transactions.recover(self.connectors, cut_off, resume, settle_s,
                                            self.continuing, self.ev_left)
        finally:
            held, self.held_for_recovery = self.held_for_recovery, set()
            for evse_id in held:
                c = self.connectors.get(evse_id)
                if c is not None and c.session is None and c.ev_present:
                    self.events.plugged_in(c)
        for listener in list(self.recovery_listeners):  # e.g. the profiles of transactions that did
            listener()                                   # not come back go (smart charging)
