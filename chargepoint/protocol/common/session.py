"""The one connected OCPP session, whatever the version: what every version does the same way.

Each version's adapter owns a ``Session`` and gives it its words
(``SessionWords``): the BootNotification and Heartbeat it sends, the status
and readings it says, the workers of its blocks. The session does the rest,
once for every version: the reader, the boot loop (retry after Pending or
Rejected, cut short by a BootNotification the CSMS triggered), the
heartbeat (a new interval applies at once), CALLs with silent-call
detection, the best-effort queue (status and readings said while connected,
not kept across outages), the station's listeners attached for the
connection's life, and a teardown that cancels every task the connection
started.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from ocpp.exceptions import OCPPError

from chargepoint.core.boot import Registration
from chargepoint.core.events import AuthResult, IdToken, MeterSample, StatusChanged
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.protocol.common.peer import first_of
from hal.clock import Clock

log = logging.getLogger(__name__)

#: Wait after a BootNotification answered Pending/Rejected with interval 0, or not answered.
DEFAULT_BOOT_RETRY_S = 30
#: Consecutive unanswered CALLs after which the connection counts as dead.
SILENT_CALLS_LIMIT = 2
#: The registration status that registers the station, in every version's words.
ACCEPTED = "Accepted"


class SessionPeer(Protocol):
    """The connection's peer as the session uses it (``common.peer``'s subclasses)."""

    async def start(self) -> None: ...
    async def call(self, request: Any, suppress: bool = True) -> Any: ...
    async def call_built(self, request: Any, after_send: Callable[[], object] | None = None) -> Any: ...
    async def stop_handling(self) -> None: ...


class SessionWords(Protocol):
    """What a version says in the session: its adapter."""

    version: str
    #: True: the version begins a transaction with an identifier and the EV in (1.6's fixed points).
    fixed_tx_points: bool

    def boot_request(self, triggered: bool = False) -> Any: ...
    def heartbeat_request(self) -> Any: ...
    async def authorize(self, token: IdToken) -> AuthResult: ...
    def status_changed(self, status: StatusChanged) -> None: ...
    def aligned_sample(self, sample: MeterSample) -> None: ...
    def status_evses(self) -> list[int]: ...
    def attach(self) -> None: ...
    def detach(self) -> None: ...
    def workers(self) -> list[Coroutine[Any, Any, Any]]: ...


class Session:
    """One connection's life: boot, heartbeat, CALLs, best-effort sends, listeners, teardown."""

    def __init__(self, peer: SessionPeer, words: SessionWords, station: Station, settings: Settings,
                 clock: Clock, registered: Registration, *, boot_on_reconnect: bool = False) -> None:
        self.peer = peer
        self.words = words
        self.station = station
        self.settings = settings
        self.clock = clock
        #: Whether this run is registered already (shared by the run's connections) and why it started.
        self.registered = registered
        self.boot_on_reconnect = boot_on_reconnect
        #: Set once the station is registered on this connection (booted, or registered before).
        self.accepted = asyncio.Event()
        #: The CSMS's answer to the last BootNotification, in its words (None before the first).
        self.registration: str | None = None
        self._silent_calls = 0
        self._ready: asyncio.Queue[Any] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeat_changed = asyncio.Event()
        self._boot_now = asyncio.Event()

    # ------------------------------------------------------------ running
    async def run(self) -> None:
        """Serve the connection until it closes (the exception tells why)."""
        words, station = self.words, self.station
        reader = asyncio.ensure_future(self.peer.start())
        workers: list[asyncio.Future[Any]] = [reader]
        try:
            if self.registered.must_boot(words.version, boot_on_reconnect=self.boot_on_reconnect):
                boot = asyncio.ensure_future(self._boot())
                workers.append(boot)
                await first_of(boot, reader)
            else:  # a new connection, not a restart: the statuses below tell the CSMS the station is back
                log.info("connected again; registered already in this run: no BootNotification")
                self.registration = ACCEPTED
                self.accepted.set()
            station.authorizer = words.authorize
            station.tx_points.fixed = words.fixed_tx_points
            station.status_listeners.append(words.status_changed)
            station.aligned_listeners.append(words.aligned_sample)
            self.settings.listeners.append(self._setting_changed)
            words.attach()
            for evse_id in words.status_evses():
                words.status_changed(station.status_of(evse_id))
            session = [asyncio.ensure_future(work) for work in
                       (self._heartbeat(), self._send_best_effort(), *words.workers())]
            workers += session
            await first_of(reader, *session)
        finally:
            words.detach()
            _remove(station.status_listeners, words.status_changed)
            _remove(station.aligned_listeners, words.aligned_sample)
            _remove(self.settings.listeners, self._setting_changed)
            if station.authorizer == words.authorize:
                station.authorizer = None
            for worker in [*workers, *self._tasks]:
                worker.cancel()
            await asyncio.gather(*workers, *self._tasks, return_exceptions=True)
            await self.peer.stop_handling()

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` as a task of this connection: cancelled when it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def call(self, request: Any, *, built_here: bool = False,
                   after_send: Callable[[], object] | None = None) -> Any:
        """One CALL; raises OCPPError on a CALLERROR and TimeoutError when unanswered.

        Several CALLs in a row without an answer mean the connection is dead
        even though it did not close: ConnectionError makes the link replace it.

        ``built_here``: the request was made by the adapter from typed station
        events (the schema tests and the strict peer check them), so it goes
        through ``call_built``: no schema validation of it or its answer, which
        costs as much as a loopback round trip per message and would halve the
        rate at which a backlog drains; answers are checked where used.
        ``after_send`` runs once the request is on the wire (the delivery loop
        makes the next message then).
        """
        try:
            if built_here:
                result = await self.peer.call_built(request, after_send)
            else:
                result = await self.peer.call(request, suppress=False)
        except TimeoutError:
            self._silent_calls += 1
            if self._silent_calls >= SILENT_CALLS_LIMIT:
                raise ConnectionError(f"CSMS left {self._silent_calls} CALLs unanswered") from None
            raise
        self._silent_calls = 0
        return result

    def queue(self, request: Any) -> None:
        """Send ``request`` while connected, in order with status and readings; not kept across
        outages (after a reconnect the current status is said afresh)."""
        self._ready.put_nowait(request)

    def send_triggered(self, request: Any, then: Callable[[Any], None] | None = None) -> None:
        """Send a CALL a TriggerMessage asked for, in a task of this connection (the trigger's
        answer has gone by then); ``then`` gets the CSMS's answer."""
        self.spawn(self._send_triggered(request, then))

    async def _send_triggered(self, request: Any, then: Callable[[Any], None] | None) -> None:
        try:
            result = await self.call(request)
        except (TimeoutError, OCPPError) as exc:
            log.warning("triggered %s not accepted: %s", type(request).__name__, exc or "timeout")
            return
        if then is not None:
            then(result)

    async def _send_best_effort(self) -> None:
        while True:
            request = await self._ready.get()
            try:
                await self.call(request)
            except (TimeoutError, OCPPError) as exc:
                log.warning("%s not accepted: %s", type(request).__name__, exc or "timeout")

    # --------------------------------------------------------------- boot
    def boot_now(self) -> None:
        """The CSMS triggered a BootNotification while unregistered: send it now, reason Triggered."""
        self._boot_now.set()

    async def _boot(self) -> None:
        """BootNotification until Accepted; before, only what the CSMS triggers is sent.

        Each one gives its own true reason where the version has one: the run's
        start, or Triggered for the one the CSMS asked for (sent at once,
        cutting the wait short). An Accepted answer to a BootNotification the
        CSMS triggered and the adapter sent itself registers the station too."""
        triggered = False
        while True:
            self._boot_now.clear()
            request = self.words.boot_request(triggered)
            try:
                result = await self.call(request)
            except (TimeoutError, OCPPError) as exc:
                log.warning("BootNotification not answered (%s); trying again", exc or "timeout")
                triggered = await self._wait_boot_retry(DEFAULT_BOOT_RETRY_S * random.uniform(0.5, 1.0))
            else:
                status = str(getattr(result.status, "value", result.status))
                if status == ACCEPTED:
                    self.boot_accepted(result.interval, getattr(request, "reason", None))
                    return
                self.registration = status
                wait = result.interval if result.interval > 0 else DEFAULT_BOOT_RETRY_S
                log.info("BootNotification %s; trying again in %d s", status, wait)
                triggered = await self._wait_boot_retry(wait)
            if self.accepted.is_set():
                return

    async def _wait_boot_retry(self, seconds: float) -> bool:
        """The retry interval, cut short when the CSMS triggers a BootNotification (True then)
        or a triggered one was accepted meanwhile."""
        waits = [asyncio.ensure_future(self._boot_now.wait()), asyncio.ensure_future(self.accepted.wait()),
                 asyncio.ensure_future(self.clock.sleep(seconds))]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
        return self._boot_now.is_set()

    def boot_accepted(self, interval: int, reason: str | None = None) -> None:
        """An Accepted BootNotification answer, whoever asked for it: the station is registered,
        the interval given is the heartbeat's."""
        if interval > 0:
            self.settings.set("heartbeat_interval_s", str(interval))
        log.info("BootNotification accepted%s; heartbeat every %s s",
                 f" (reason {reason})" if reason else "", self.settings.current.heartbeat_interval_s)
        self.registration = ACCEPTED
        self.registered.accepted(self.words.version)
        self.accepted.set()

    # ---------------------------------------------------------- heartbeat
    def _setting_changed(self, name: str, _value: object) -> None:
        if name == "heartbeat_interval_s":
            self._heartbeat_changed.set()

    async def _heartbeat(self) -> None:
        """A Heartbeat every heartbeat interval (the setting); a new interval applies at once."""
        while True:
            self._heartbeat_changed.clear()
            interval = self.settings.current.heartbeat_interval_s
            changed = asyncio.ensure_future(self._heartbeat_changed.wait())
            elapsed = asyncio.ensure_future(self.clock.sleep(interval))
            try:
                await asyncio.wait({changed, elapsed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                elapsed.cancel()
            if self._heartbeat_changed.is_set():
                continue
            try:
                await self.call(self.words.heartbeat_request())
            except TimeoutError:
                log.warning("Heartbeat not answered")


def _remove(listeners: list[Any], listener: Any) -> None:
    if listener in listeners:
        listeners.remove(listener)
