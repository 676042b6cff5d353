"""OCPP 1.6J adapter: one connected session of the station core spoken in 1.6.

Translates station events into 1.6 CALLs and the CSMS's CALLs (``peer.py``)
into station commands; holds no station logic and no state beyond the wire:
the 1.6 status last sent, and the CSMS's integer transaction ids, which the
outbox keeps as text. Outgoing CALLs go through ``_call``, which also notices a
CSMS that has stopped answering. The outbox's transaction messages are made and
sent by ``tx_messages.py``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp.exceptions import OccurenceConstraintViolationError, OCPPError
from ocpp.v16 import call, call_result
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, DataTransferStatus, RegistrationStatus

import chargepoint
from chargepoint.config import Config
from chargepoint.core.boot import Registration
from chargepoint.core.events import (
    AuthResult,
    AuthStatus,
    IdToken,
    MeterSample,
    StatusChanged,
    TokenType,
)
from chargepoint.core.outbox import Outbox
from chargepoint.core.remote_start import remote_start
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.protocol.common.peer import first_of
from chargepoint.protocol.common.timefmt import iso_utc
from chargepoint.protocol.v16 import smart_charging, translate
from chargepoint.protocol.v16.firmware import FirmwareReports
from chargepoint.protocol.v16.keys import KeyCatalogue
from chargepoint.protocol.v16.peer import Peer16
from chargepoint.protocol.v16.security import SecuritySession
from chargepoint.protocol.v16.tx_messages import TransactionMessages
from hal.clock import Clock

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
VERSION = "1.6"

#: Wait after a BootNotification answered Pending/Rejected with interval 0.
DEFAULT_BOOT_RETRY_S = 30
#: Consecutive unanswered CALLs after which the connection counts as dead.
SILENT_CALLS_LIMIT = 2

DataTransferHandler = Callable[[str | None], tuple[str, str | None]]
#: Called with ``hard`` (True for a hard reset) once the CSMS has its answer.
ResetHook = Callable[[bool], Awaitable[None]]


class V16Adapter:
    """One connected session of OCPP 1.6J: boot, heartbeat, status, outbox, handlers."""

    def __init__(self, ws: Any, station: Station, outbox: Outbox, settings: Settings,
                 config: Config, clock: Clock, *, on_reset: ResetHook | None = None,
                 data_transfer: dict[str, dict[str | None, DataTransferHandler]] | None = None,
                 boot_reason: object = None,  # 1.6's BootNotification has no reason
                 registered: Registration | None = None) -> None:
        self.ws = ws
        self.station = station
        self.outbox = outbox
        self.settings = settings
        self.keys = KeyCatalogue(settings, len(station.connectors))
        self.config = config
        self.clock = clock
        self.on_reset = on_reset
        #: vendorId -> messageId (None: any) -> handler(data) -> (status, data).
        self.data_transfer_handlers = data_transfer if data_transfer is not None else {}
        self.peer = Peer16(config.station.identity, ws, self, config.ocpp.response_timeout_s)
        self.security_session = SecuritySession(self)
        self.transactions = TransactionMessages(station, outbox, settings, clock, self._call, self._spawn)
        self.accepted = asyncio.Event()
        #: Whether this run is registered already (shared by the run's connections).
        self.registered = registered if registered is not None else Registration()
        #: Set when an Accepted answer came to a BootNotification the CSMS triggered.
        self._registered_now = asyncio.Event()
        self._silent_calls = 0
        self._ready: asyncio.Queue[Any] = asyncio.Queue()
        #: Per connector: the newest 1.6 status, waiting out MinimumStatusDuration, and the one sent.
        self._latest: dict[int, tuple[Any, ...]] = {}
        self._sent_status: dict[int, tuple[Any, ...]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeat_changed = asyncio.Event()

    # ------------------------------------------------------------ running
    async def run(self) -> None:
        """Serve the connection until it closes (the exception tells why)."""
        reader = asyncio.ensure_future(self.peer.start())
        workers: list[asyncio.Future[Any]] = [reader]
        reports = FirmwareReports(self)
        try:
            if self.registered.must_boot(VERSION, boot_on_reconnect=self.config.ocpp.boot_on_reconnect):
                boot = asyncio.ensure_future(self._boot())
                workers.append(boot)
                await first_of(boot, reader)
            else:  # a new connection, not a restart: the statuses below tell the CSMS the station is back
                log.info("connected again; registered already in this run: no BootNotification")
                self.accepted.set()
            self.station.authorizer = self.authorize
            self.station.tx_points.fixed = True  # 1.6 begins a transaction with an identifier, EV in
            self.station.status_listeners.append(self._status_changed)
            self.station.aligned_listeners.append(self._aligned_sample)
            self.settings.listeners.append(self._setting_changed)
            reports.attach()
            for evse_id in [0, *self.station.connectors]:
                self._status_changed(self.station.status_of(evse_id))
            session = [
                asyncio.ensure_future(self._heartbeat()),
                asyncio.ensure_future(self.transactions.drain()),
                asyncio.ensure_future(self._send_best_effort()),
                asyncio.ensure_future(self.security_session.run()),
            ]
            workers += session
            await first_of(reader, *session)
        finally:
            reports.detach()
            _remove(self.station.status_listeners, self._status_changed)
            _remove(self.station.aligned_listeners, self._aligned_sample)
            _remove(self.settings.listeners, self._setting_changed)
            if self.station.authorizer == self.authorize:
                self.station.authorizer = None
            for worker in [*workers, *self._tasks]:
                worker.cancel()
            await asyncio.gather(*workers, *self._tasks, return_exceptions=True)
            await self.peer.stop_handling()

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, request: Any, *, built_here: bool = False,
                    after_send: Callable[[], object] | None = None) -> Any:
        """One CALL; raises OCPPError on a CALLERROR and TimeoutError when unanswered.

        Several CALLs in a row without an answer mean the connection is dead
        even though it did not close: ConnectionError makes the link replace it.

        ``built_here``: the request was made by this adapter from typed station
        events (the schema tests and the strict peer check them), so it goes
        through ``call_built``: no schema validation of it or its answer, which
        costs as much as a loopback round trip per MeterValues and would halve
        the rate at which a backlog drains; answers are checked where used.
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

    # --------------------------------------------------------------- boot
    async def _boot(self) -> None:
        """BootNotification until Accepted; nothing else is sent before. An Accepted answer to
        a BootNotification the CSMS triggered meanwhile registers the station as well."""
        request = self.boot_request()
        while True:
            try:
                result = await self._call(request)
            except (TimeoutError, OCPPError) as exc:
                log.warning("BootNotification not answered (%s); trying again", exc or "timeout")
                if await self._wait_boot_retry(DEFAULT_BOOT_RETRY_S * random.uniform(0.5, 1.0)):
                    return
                continue
            status = RegistrationStatus(result.status)
            if status == RegistrationStatus.accepted:
                self.boot_accepted(result)
                return
            wait = result.interval if result.interval > 0 else DEFAULT_BOOT_RETRY_S
            log.info("BootNotification %s; trying again in %d s", status.value, wait)
            if await self._wait_boot_retry(wait):
                return

    async def _wait_boot_retry(self, seconds: float) -> bool:
        """The retry interval; True when a triggered BootNotification was accepted meanwhile."""
        registered = asyncio.ensure_future(self._registered_now.wait())
        elapsed = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({registered, elapsed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            registered.cancel()
            elapsed.cancel()
        return self._registered_now.is_set()

    def boot_accepted(self, result: Any) -> None:
        """An Accepted BootNotification answer, whoever asked for the BootNotification: the
        station is registered, the interval given is the heartbeat's."""
        if result.interval > 0:
            self.settings.set("heartbeat_interval_s", str(result.interval))
        log.info("BootNotification accepted; heartbeat every %s s", self.settings.get("heartbeat_interval_s"))
        self.registered.accepted(VERSION)
        self._registered_now.set()
        self.accepted.set()

    def boot_request(self) -> Any:
        """The BootNotification that describes this station (also what a TriggerMessage sends)."""
        cfg = self.config.station
        return call.BootNotification(
            charge_point_model=cfg.model,
            charge_point_vendor=cfg.vendor,
            charge_point_serial_number=cfg.serial_number or None,
            firmware_version=chargepoint.__version__,
        )

    def _setting_changed(self, name: str, _value: object) -> None:
        if name == "heartbeat_interval_s":
            self._heartbeat_changed.set()

    async def _heartbeat(self) -> None:
        """Heartbeat every HeartbeatInterval; a new interval applies at once."""
        while True:
            self._heartbeat_changed.clear()
            interval = self.settings.integer("heartbeat_interval_s")
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
                await self._call(call.Heartbeat())
            except TimeoutError:
                log.warning("Heartbeat not answered")

    # ------------------------------------------------------ authorization
    async def authorize(self, token: IdToken) -> AuthResult:
        try:
            result = await self._call(call.Authorize(id_tag=token.value))
        except (TimeoutError, OCPPError) as exc:
            log.warning("Authorize for %s not answered: %s", token, exc or "timeout")
            return AuthResult(AuthStatus.UNKNOWN)
        return translate.auth_result(result.id_tag_info)

    # ------------------------------------------------------------ remote
    def remote_start(self, id_tag: str, connector_id: int | None, charging_profile: dict | None) -> str:
        if connector_id == 0:
            return "Rejected"
        profile = None
        if charging_profile is not None:  # the TxProfile of the transaction to come: taken, or no start
            profile = smart_charging.remote_start_profile(self.station, charging_profile, connector_id,
                                                          self.outbox.local_id)
            if profile is None:
                return "Rejected"
        result = remote_start(self.station, IdToken(id_tag, TokenType.CENTRAL), connector_id, profile)
        if not result.accepted:
            log.info("RemoteStartTransaction for %s rejected: %s", id_tag, result.refusal)
        return "Accepted" if result.accepted else "Rejected"

    def remote_stop(self, transaction_id: int) -> str:
        local_id = self.outbox.local_id(str(transaction_id))
        accepted = local_id is not None and self.station.remote_stop(local_id)
        return "Accepted" if accepted else "Rejected"

    def get_configuration(self, keys: list[str] | None) -> Any:
        limit = int(self.keys.typed_value("GetConfigurationMaxKeys") or 0)
        if keys is not None and len(keys) > limit:
            raise OccurenceConstraintViolationError(
                description=f"at most {limit} keys per GetConfiguration", details={})
        wanted = self.keys.readable() if not keys else keys
        known, unknown = [], []
        for name in wanted:
            if not self.keys.knows(name):
                unknown.append(name)
                continue
            info = self.keys.info(name)
            entry: dict[str, Any] = {"key": name, "readonly": info.readonly}
            if info.value is not None:
                entry["value"] = info.value
            known.append(entry)
        return call_result.GetConfiguration(configuration_key=known or None, unknown_key=unknown or None)

    def incoming_data_transfer(self, vendor_id: str, message_id: str | None,
                               data: str | None) -> tuple[str, str | None]:
        handlers = self.data_transfer_handlers.get(vendor_id)
        if handlers is None:
            return DataTransferStatus.unknown_vendor_id.value, None
        handler = handlers.get(message_id) or handlers.get(None)
        if handler is None:
            return DataTransferStatus.unknown_message_id.value, None
        return handler(data)

    async def data_transfer(self, vendor_id: str, message_id: str | None = None,
                            data: str | None = None) -> tuple[str, str | None]:
        """Send a DataTransfer to the CSMS; returns its status and data."""
        result = await self._call(call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data))
        return result.status, result.data

    def schedule_reset(self, kind: str) -> None:
        if self.on_reset is not None:
            log.info("%s reset requested by the CSMS", kind)
            self._spawn(self.on_reset(kind == "Hard"))

    # ------------------------------------------------------------ status
    def _status_changed(self, status: StatusChanged) -> None:
        """Queue a status once it has been stable for MinimumStatusDuration."""
        wire = (translate.connector_status(status), translate.error_code(status))
        evse_id = status.evse_id
        if self._latest.get(evse_id, (None,))[0:2] == wire:
            return  # the same in 1.6 terms: nothing new to say, and no timer to restart
        self._latest[evse_id] = (*wire, status)
        duration = self.settings.integer("minimum_status_duration_s")
        if duration <= 0 or wire[0] == ChargePointStatus.faulted:
            self._queue_status(status, wire)
        else:
            self._spawn(self._after_stable(status, wire, duration))

    async def _after_stable(self, status: StatusChanged, wire: tuple[Any, ...], duration: float) -> None:
        await self.clock.sleep(duration)
        if self._latest.get(status.evse_id, (None, None, None))[2] is status:
            self._queue_status(status, wire)

    def _queue_status(self, status: StatusChanged, wire: tuple[Any, ...]) -> None:
        if self._sent_status.get(status.evse_id) == wire:
            return
        self._sent_status[status.evse_id] = wire
        self._ready.put_nowait(self.status_request(status))

    def status_request(self, status: StatusChanged) -> Any:
        """The StatusNotification that says ``status`` (also what a TriggerMessage sends)."""
        state, error = translate.connector_status(status), translate.error_code(status)
        return call.StatusNotification(
            connector_id=status.evse_id,
            error_code=error,
            status=state,
            timestamp=iso_utc(status.timestamp),
            info=(status.fault or status.warning) if error == ChargePointErrorCode.other_error
            else status.info,
        )

    def send_triggered(self, request: Any, then: Callable[[Any], None] | None = None) -> None:
        """Send a CALL a TriggerMessage asked for, in a task of this session (the trigger's
        answer has gone by then); ``then`` gets the CSMS's answer."""
        self._spawn(self._send_triggered(request, then))

    async def _send_triggered(self, request: Any, then: Callable[[Any], None] | None) -> None:
        try:
            result = await self._call(request)
        except (TimeoutError, OCPPError) as exc:
            log.warning("triggered %s not accepted: %s", type(request).__name__, exc or "timeout")
            return
        if then is not None:
            then(result)

    def _aligned_sample(self, sample: MeterSample) -> None:
        measurands = self.settings.csl("aligned_measurands")
        if measurands:
            self._ready.put_nowait(call.MeterValues(
                connector_id=sample.evse_id, meter_value=[translate.meter_value(sample, measurands)]))

    async def _send_best_effort(self) -> None:
        """Status and clock-aligned values: sent while connected, not queued across outages
        (after a reconnect the current status is sent afresh)."""
        while True:
            request = await self._ready.get()
            try:
                await self._call(request)
            except (TimeoutError, OCPPError) as exc:
                log.warning("%s not accepted: %s", type(request).__name__, exc or "timeout")


def _remove(listeners: list[Any], listener: Any) -> None:
    if listener in listeners:
        listeners.remove(listener)
