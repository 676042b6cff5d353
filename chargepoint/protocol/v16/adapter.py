"""OCPP 1.6J adapter for the charge point.

Translates station events into 1.6 CALLs and the CSMS's CALLs into station
commands. The ``ocpp`` library reads the next frame only after a handler
returns and allows one outstanding CALL, so handlers answer at once and any
follow-up (the restart after Reset) runs as a task; outgoing CALLs go through
``_call``, which also notices a CSMS that has stopped answering.

Where the library's answers differ from the 1.6 specification they are
corrected here: schema failures get the 1.6 error code of the rule that failed
(FormationViolation, PropertyConstraintViolation, TypeConstraintViolation,
OccurenceConstraintViolation), an action 1.6 defines but the station does not
implement is NotSupported and an unknown action NotImplemented, and frames that
are not OCPP at all are logged and dropped without closing the connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from jsonschema.exceptions import best_match
from ocpp.exceptions import (
    FormationViolationError,
    NotImplementedError,
    NotSupportedError,
    OccurenceConstraintViolationError,
    OCPPError,
    PropertyConstraintViolationError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, MessageType, get_validator
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint as LibChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    AvailabilityStatus,
    AvailabilityType,
    ChargePointErrorCode,
    ClearCacheStatus,
    ConfigurationStatus,
    DataTransferStatus,
    RegistrationStatus,
    RemoteStartStopStatus,
    ResetStatus,
    UnlockStatus,
    UpdateStatus,
    UpdateType,
)

import chargepoint
from chargepoint.config import Config
from chargepoint.core.authorization import Entry as ListEntry
from chargepoint.core.authorization import parse_expiry
from chargepoint.core.events import (
    AuthResult,
    AuthStatus,
    ConnectorStatus,
    MeterSample,
    ReadingContext,
    StatusChanged,
    TransactionEvent,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.outbox import Entry, Outbox
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.protocol.common.measurands import format_number, values_for
from hal.clock import Clock

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"

#: Station fault names to 1.6 error codes.
ERROR_CODES = {
    "rcd": ChargePointErrorCode.ground_failure,
    "emergency_stop": ChargePointErrorCode.other_error,
    "diode": ChargePointErrorCode.ev_communication_error,
    "pilot": ChargePointErrorCode.ev_communication_error,
    "short": ChargePointErrorCode.ev_communication_error,
    "ventilation": ChargePointErrorCode.other_error,
    "proximity": ChargePointErrorCode.other_error,
    "contactor_mismatch": ChargePointErrorCode.power_switch_failure,
    "welded": ChargePointErrorCode.power_switch_failure,
    "power_meter_failure": ChargePointErrorCode.power_meter_failure,
    "internal": ChargePointErrorCode.internal_error,
}

#: Wait after a BootNotification answered Pending/Rejected with interval 0.
DEFAULT_BOOT_RETRY_S = 30
#: Consecutive unanswered CALLs after which the connection counts as dead.
SILENT_CALLS_LIMIT = 2

#: jsonschema rule that failed -> the 1.6 error code for it.
SCHEMA_ERRORS: dict[str, type[OCPPError]] = {
    "type": TypeConstraintViolationError,
    "maxLength": TypeConstraintViolationError,
    "required": OccurenceConstraintViolationError,
    "minItems": OccurenceConstraintViolationError,
    "maxItems": OccurenceConstraintViolationError,
    "additionalProperties": FormationViolationError,
    "enum": PropertyConstraintViolationError,
    "minimum": PropertyConstraintViolationError,
    "maximum": PropertyConstraintViolationError,
    "pattern": PropertyConstraintViolationError,
    "format": PropertyConstraintViolationError,
    "multipleOf": PropertyConstraintViolationError,
}
#: Actions whose numbers the library validates as Decimal (precision rules).
DECIMAL_ACTIONS = ("SetChargingProfile", "RemoteStartTransaction")

DataTransferHandler = Callable[[str | None], tuple[str, str | None]]
ResetHook = Callable[[str], Awaitable[None]]


def iso_utc(timestamp: float) -> str:
    """Epoch seconds as the UTC ISO 8601 text OCPP uses."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def schema_error(action: str, payload: Any) -> OCPPError | None:
    """The 1.6 CALLERROR for a CALL payload that breaks its schema, or None."""
    decimal = action in DECIMAL_ACTIONS
    validator = get_validator(MessageType.Call, action, "1.6",
                              parse_float=Decimal if decimal else float)
    if decimal:
        payload = json.loads(json.dumps(payload), parse_float=Decimal)
    error = best_match(validator.iter_errors(payload))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path) or "payload"
    kind = SCHEMA_ERRORS.get(str(error.validator), FormationViolationError)
    return kind(description=f"{where}: {error.message}", details={})


class _LibPeer(LibChargePoint):
    """The library's charge point with 1.6-correct errors; handlers delegate."""

    def __init__(self, identity: str, ws: Any, adapter: V16Adapter, response_timeout: float) -> None:
        super().__init__(identity, ws, response_timeout=response_timeout)
        self.adapter = adapter

    async def route_message(self, raw_msg: str | bytes) -> None:
        """Frames that are not OCPP are dropped (with an answer where possible)."""
        try:
            frame = json.loads(raw_msg)
        except (ValueError, TypeError):
            log.warning("dropped a frame that is not JSON: %.200r", raw_msg)
            return
        if not isinstance(frame, list) or not frame or frame[0] not in (2, 3, 4):
            log.warning("dropped a frame that is not an OCPP message: %.200r", raw_msg)
            return
        if len(frame) < 2 or not isinstance(frame[1], str) or len(frame[1]) > 36:
            log.warning("dropped an OCPP frame without a usable message id: %.200r", raw_msg)
            return
        well_formed = (
            (frame[0] == 2 and len(frame) == 4 and isinstance(frame[2], str) and isinstance(frame[3], dict))
            or (frame[0] == 3 and len(frame) == 3)
            or (frame[0] == 4 and len(frame) == 5)
        )
        if not well_formed:
            log.warning("malformed OCPP frame: %.200r", raw_msg)
            if frame[0] == 2:
                error = FormationViolationError(
                    description="a CALL is [2, uniqueId, action, {payload}]", details={})
                await self._send(Call(frame[1], "", {}).create_call_error(error).to_json())
            return
        if frame[0] == 3 and not self._call_lock.locked():
            log.warning("ignored a CALLRESULT nobody waits for (id %s)", frame[1])
            return
        await super().route_message(raw_msg)

    async def call_built(self, request: Any) -> Any:
        """A CALL whose nested parts are already in wire form (camelCase dicts).

        Does what the library's ``call`` does (one outstanding CALL under its
        lock, wait for the matching answer, CALLERROR raised) without its deep
        copy and recursive renaming of the payload and without schema
        validation: on a backlog of MeterValues those cost more than the round
        trip itself. Only top-level field names are converted.
        """
        payload = {_camel(name): value for name, value in vars(request).items() if value is not None}
        message = Call(str(self._unique_id_generator()), type(request).__name__, payload)
        async with self._call_lock:
            await self._send(message.to_json())
            response = await self._get_specific_response(message.unique_id, self._response_timeout)
        if response.message_type_id == MessageType.CallError:
            raise response.to_exception()
        result_type = getattr(call_result, message.action)
        known = {f.name for f in fields(result_type)}
        return result_type(**{_snake(name): value for name, value in response.payload.items()
                              if _snake(name) in known})

    async def _get_specific_response(self, unique_id: str, timeout: float) -> Any:
        """The answer to CALL ``unique_id``; answers to other ids are logged and dropped.

        Replaces the library's version, which waits with ``asyncio.wait_for``:
        on Python 3.11 that swallows a cancellation arriving in the same loop
        step as the answer, and a connection being torn down then hangs for
        ever. ``asyncio.timeout`` does not.
        """
        try:
            async with asyncio.timeout(timeout):
                while True:
                    response = await self._response_queue.get()
                    if response.unique_id == unique_id:
                        return response
                    log.warning("ignored an answer to an unknown CALL id %s", response.unique_id)
        except TimeoutError:
            raise TimeoutError(f"no answer within {timeout:g} s") from None

    async def _handle_call(self, msg: Call) -> Any:
        if msg.action not in self.route_map:
            try:
                Action(msg.action)
            except ValueError:
                raise NotImplementedError(
                    description=f"{msg.action} is not an OCPP 1.6 action", details={}) from None
            raise NotSupportedError(
                description=f"{msg.action} is not supported by this charge point", details={})
        error = schema_error(msg.action, msg.payload)
        if error is not None:
            log.warning("%s rejected: %s %s", msg.action, error.code, error.description)
            raise error
        return await super()._handle_call(msg)

    # ---- handlers: answers at once; follow-up work is scheduled ----
    @on(Action.remote_start_transaction, skip_schema_validation=True)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                        charging_profile: dict | None = None) -> Any:
        return call_result.RemoteStartTransaction(
            status=self.adapter.remote_start(id_tag, connector_id, charging_profile))

    @on(Action.remote_stop_transaction, skip_schema_validation=True)
    def on_remote_stop(self, transaction_id: int) -> Any:
        return call_result.RemoteStopTransaction(status=self.adapter.remote_stop(transaction_id))

    @on(Action.change_availability, skip_schema_validation=True)
    def on_change_availability(self, connector_id: int, type: str) -> Any:
        operative = type == AvailabilityType.operative
        result = self.adapter.station.change_availability(connector_id, operative)
        return call_result.ChangeAvailability(status=AvailabilityStatus(result))

    @on(Action.change_configuration, skip_schema_validation=True)
    def on_change_configuration(self, key: str, value: str) -> Any:
        return call_result.ChangeConfiguration(
            status=ConfigurationStatus(self.adapter.settings.set(key, value).value))

    @on(Action.get_configuration, skip_schema_validation=True)
    def on_get_configuration(self, key: list[str] | None = None) -> Any:
        return self.adapter.get_configuration(key)

    @on(Action.clear_cache, skip_schema_validation=True)
    async def on_clear_cache(self) -> Any:
        await self.adapter.station.authorization.clear_cache()
        return call_result.ClearCache(status=ClearCacheStatus.accepted)

    @on(Action.get_local_list_version, skip_schema_validation=True)
    def on_get_local_list_version(self) -> Any:
        return call_result.GetLocalListVersion(
            list_version=self.adapter.station.authorization.list_version)

    @on(Action.send_local_list, skip_schema_validation=True)
    async def on_send_local_list(self, list_version: int, update_type: str,
                                 local_authorization_list: list[dict] | None = None) -> Any:
        entries = [(item["id_tag"], _list_entry(item.get("id_tag_info")))
                   for item in local_authorization_list or []]
        status = await self.adapter.station.authorization.update_list(
            list_version, update_type == UpdateType.full, entries)
        return call_result.SendLocalList(status=UpdateStatus(status))

    @on(Action.data_transfer, skip_schema_validation=True)
    def on_data_transfer(self, vendor_id: str, message_id: str | None = None,
                         data: str | None = None) -> Any:
        status, reply = self.adapter.incoming_data_transfer(vendor_id, message_id, data)
        return call_result.DataTransfer(status=DataTransferStatus(status), data=reply)

    @on(Action.reset, skip_schema_validation=True)
    def on_reset(self, type: str) -> Any:
        return call_result.Reset(status=ResetStatus.accepted)

    @after(Action.reset)
    def after_reset(self, type: str) -> None:
        self.adapter.schedule_reset(type)

    @on(Action.unlock_connector, skip_schema_validation=True)
    async def on_unlock_connector(self, connector_id: int) -> Any:
        # Awaited: stopping a transaction first takes as long as the contactor
        # needs to open, well below the CSMS's response timeout, and sends no CALL.
        result = await self.adapter.station.unlock(connector_id)
        return call_result.UnlockConnector(status=UnlockStatus(result))


class V16Adapter:
    """One connected session of OCPP 1.6J: boot, heartbeat, status, outbox, handlers."""

    def __init__(self, ws: Any, station: Station, outbox: Outbox, settings: Settings,
                 config: Config, clock: Clock, *, on_reset: ResetHook | None = None,
                 data_transfer: dict[str, dict[str | None, DataTransferHandler]] | None = None) -> None:
        self.ws = ws
        self.station = station
        self.outbox = outbox
        self.settings = settings
        self.config = config
        self.clock = clock
        self.on_reset = on_reset
        #: vendorId -> messageId (None: any) -> handler(data) -> (status, data).
        self.data_transfer_handlers = data_transfer or {}
        self.peer = _LibPeer(config.station.identity, ws, self, config.ocpp.response_timeout_s)
        self.accepted = asyncio.Event()
        self._silent_calls = 0
        self._statuses: asyncio.Queue[StatusChanged] = asyncio.Queue()
        self._ready: asyncio.Queue[Any] = asyncio.Queue()
        self._latest_status: dict[int, StatusChanged] = {}
        self._sent_status: dict[int, tuple[str, str | None]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._heartbeat_changed = asyncio.Event()

    # ------------------------------------------------------------ running
    async def run(self) -> None:
        """Serve the connection until it closes (the exception tells why)."""
        reader = asyncio.ensure_future(self.peer.start())
        workers: list[asyncio.Future[Any]] = [reader]
        try:
            boot = asyncio.ensure_future(self._boot())
            workers.append(boot)
            await _first_of(boot, reader)
            self.station.authorizer = self.authorize
            self.station.status_listeners.append(self._status_changed)
            self.station.aligned_listeners.append(self._aligned_sample)
            self.settings.listeners.append(self._setting_changed)
            for connector_id in [0, *self.station.connectors]:
                self._status_changed(self.station.status_of(connector_id))
            session = [
                asyncio.ensure_future(self._heartbeat()),
                asyncio.ensure_future(self._drain_outbox()),
                asyncio.ensure_future(self._send_best_effort()),
            ]
            workers += session
            await _first_of(reader, *session)
        finally:
            _remove(self.station.status_listeners, self._status_changed)
            _remove(self.station.aligned_listeners, self._aligned_sample)
            _remove(self.settings.listeners, self._setting_changed)
            if self.station.authorizer == self.authorize:
                self.station.authorizer = None
            for worker in [*workers, *self._tasks]:
                worker.cancel()
            await asyncio.gather(*workers, *self._tasks, return_exceptions=True)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _call(self, request: Any, *, built_here: bool = False) -> Any:
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
                result = await self.peer.call_built(request)
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
        """BootNotification until Accepted; nothing else is sent before."""
        cfg = self.config.station
        request = call.BootNotification(
            charge_point_model=cfg.model,
            charge_point_vendor=cfg.vendor,
            charge_point_serial_number=cfg.serial_number or None,
            firmware_version=chargepoint.__version__,
        )
        while True:
            try:
                result = await self._call(request)
            except (TimeoutError, OCPPError) as exc:
                log.warning("BootNotification not answered (%s); trying again", exc or "timeout")
                await self.clock.sleep(DEFAULT_BOOT_RETRY_S * random.uniform(0.5, 1.0))
                continue
            status = RegistrationStatus(result.status)
            if status == RegistrationStatus.accepted:
                if result.interval > 0:
                    self.settings.set("HeartbeatInterval", str(result.interval))
                log.info("BootNotification accepted; heartbeat every %s s",
                         self.settings.get("HeartbeatInterval"))
                self.accepted.set()
                return
            wait = result.interval if result.interval > 0 else DEFAULT_BOOT_RETRY_S
            log.info("BootNotification %s; trying again in %d s", status.value, wait)
            await self.clock.sleep(wait)

    def _setting_changed(self, name: str, _value: object) -> None:
        if name == "HeartbeatInterval":
            self._heartbeat_changed.set()

    async def _heartbeat(self) -> None:
        """Heartbeat every HeartbeatInterval; a new interval applies at once."""
        while True:
            self._heartbeat_changed.clear()
            interval = float(self.settings.get("HeartbeatInterval"))
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
    async def authorize(self, id_tag: str) -> AuthResult:
        try:
            result = await self._call(call.Authorize(id_tag=id_tag))
        except (TimeoutError, OCPPError) as exc:
            log.warning("Authorize for %s not answered: %s", id_tag, exc or "timeout")
            return AuthResult(AuthStatus.UNKNOWN)
        return _auth_result(result.id_tag_info)

    # ------------------------------------------------------------ remote
    def remote_start(self, id_tag: str, connector_id: int | None,
                     charging_profile: dict | None) -> RemoteStartStopStatus:
        if connector_id == 0:
            return RemoteStartStopStatus.rejected
        if charging_profile is not None:
            log.warning("RemoteStartTransaction: charging profile ignored (Smart Charging "
                        "is not among the supported feature profiles)")
        accepted = self.station.remote_start(
            id_tag, connector_id,
            authorize_first=bool(self.settings.get("AuthorizeRemoteTxRequests")),
        )
        return RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected

    def remote_stop(self, transaction_id: int) -> RemoteStartStopStatus:
        local_id = self.outbox.local_id(transaction_id)
        accepted = local_id is not None and self.station.remote_stop(local_id)
        return RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected

    def get_configuration(self, keys: list[str] | None) -> Any:
        limit = int(self.settings.get("GetConfigurationMaxKeys"))
        if keys is not None and len(keys) > limit:
            raise OccurenceConstraintViolationError(
                description=f"at most {limit} keys per GetConfiguration", details={})
        wanted = self.settings.readable() if not keys else keys
        known, unknown = [], []
        for name in wanted:
            definition = self.settings.definitions.get(name)
            if definition is None:
                unknown.append(name)
                continue
            entry: dict[str, Any] = {"key": name, "readonly": definition.readonly}
            if not definition.secret:
                entry["value"] = self.settings.as_text(name)
            known.append(entry)
        return call_result.GetConfiguration(configuration_key=known or None,
                                            unknown_key=unknown or None)

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
            self._spawn(self.on_reset(kind))

    # ------------------------------------------------------------ status
    def _status_changed(self, status: StatusChanged) -> None:
        """Queue a status once it has been stable for MinimumStatusDuration."""
        self._latest_status[status.connector_id] = status
        duration = float(self.settings.get("MinimumStatusDuration"))
        if duration <= 0 or status.status == ConnectorStatus.FAULTED:
            self._queue_status(status)
        else:
            self._spawn(self._after_stable(status, duration))

    async def _after_stable(self, status: StatusChanged, duration: float) -> None:
        await self.clock.sleep(duration)
        if self._latest_status.get(status.connector_id) is status:
            self._queue_status(status)

    def _queue_status(self, status: StatusChanged) -> None:
        key = (status.status.value, status.fault)
        if self._sent_status.get(status.connector_id) == key:
            return
        self._sent_status[status.connector_id] = key
        error = ERROR_CODES.get(status.fault or "", ChargePointErrorCode.no_error)
        self._ready.put_nowait(call.StatusNotification(
            connector_id=status.connector_id,
            error_code=error,
            status=status.status.value,
            timestamp=iso_utc(status.timestamp),
            info=status.fault if error == ChargePointErrorCode.other_error else status.info,
        ))

    def _aligned_sample(self, sample: MeterSample) -> None:
        measurands = self.settings.csl("MeterValuesAlignedData")
        if measurands:
            self._ready.put_nowait(call.MeterValues(
                connector_id=sample.connector_id, meter_value=[self._meter_value(sample, measurands)]))

    async def _send_best_effort(self) -> None:
        """Status and clock-aligned values: sent while connected, not queued across outages
        (after a reconnect the current status is sent afresh)."""
        while True:
            request = await self._ready.get()
            try:
                await self._call(request)
            except (TimeoutError, OCPPError) as exc:
                log.warning("%s not accepted: %s", type(request).__name__, exc or "timeout")

    # ------------------------------------------------------------ outbox
    async def _drain_outbox(self) -> None:
        """Send queued transaction messages in order; each leaves after its answer."""
        attempts = 0
        while True:
            entry = await self.outbox.wait_head()
            request = self._translate(entry)
            if request is None:
                await self.outbox.ack(entry)
                continue
            try:
                result = await self._call(request, built_here=True)
                remote_id = self._on_result(entry, result)
            except TimeoutError:
                # Unknown whether the CSMS processed it: keep it and try again.
                await self.clock.sleep(float(self.settings.get("TransactionMessageRetryInterval")))
                continue
            except (OCPPError, TypeError, KeyError, ValueError) as exc:
                # A CALLERROR, or a CALLRESULT that does not say what it must.
                attempts += 1
                limit = int(self.settings.get("TransactionMessageAttempts"))
                if attempts < limit:
                    log.warning("%s refused (%s); attempt %d of %d", type(request).__name__,
                                exc, attempts, limit)
                    retry = float(self.settings.get("TransactionMessageRetryInterval"))
                    await self.clock.sleep(retry * attempts)
                    continue
                log.error("%s refused %d times; dropped: %s", type(request).__name__, attempts, exc)
                await self.outbox.ack(entry)
                attempts = 0
                continue
            attempts = 0
            await self.outbox.ack(entry, remote_id=remote_id)

    def _translate(self, entry: Entry) -> Any | None:
        event: TransactionEvent = entry.event
        if isinstance(event, TransactionStarted):
            return call.StartTransaction(
                connector_id=event.connector_id,
                id_tag=event.id_tag,
                meter_start=round(event.meter_start_wh),
                timestamp=iso_utc(event.timestamp),
            )
        transaction_id = self.outbox.remote_id(event.local_id)
        if transaction_id is None:
            log.error("no CSMS transaction id for %s; dropping %s", event.local_id,
                      type(event).__name__)
            return None
        if isinstance(event, MeterSample):
            setting = "MeterValuesAlignedData" if event.context == ReadingContext.CLOCK \
                else "MeterValuesSampledData"
            return call.MeterValues(
                connector_id=event.connector_id,
                transaction_id=transaction_id,
                meter_value=[self._meter_value(event, self.settings.csl(setting))],
            )
        assert isinstance(event, TransactionStopped)
        return call.StopTransaction(
            meter_stop=round(event.meter_stop_wh),
            timestamp=iso_utc(event.timestamp),
            transaction_id=transaction_id,
            reason=event.reason.value,
            id_tag=event.id_tag,
            transaction_data=self._transaction_data(event.samples) or None,
        )

    def _transaction_data(self, samples: tuple[MeterSample, ...]) -> list[dict[str, Any]]:
        """StopTxnSampledData for sampled readings, StopTxnAlignedData for clock-aligned ones."""
        sampled = self.settings.csl("StopTxnSampledData")
        aligned = self.settings.csl("StopTxnAlignedData")
        data = []
        for sample in samples:
            measurands = aligned if sample.context == ReadingContext.CLOCK else sampled
            value = self._meter_value(sample, measurands)
            if value["sampledValue"]:
                data.append(value)
        return data

    @staticmethod
    def _meter_value(sample: MeterSample, measurands: list[str]) -> dict[str, Any]:
        sampled = []
        for value in values_for(sample.reading, measurands, sample.offered_a):
            item: dict[str, Any] = {
                "value": format_number(value.value),
                "context": sample.context.value,
                "measurand": value.measurand,
                "location": "Outlet",
            }
            if value.unit:
                item["unit"] = value.unit
            if value.phase:
                item["phase"] = value.phase
            sampled.append(item)
        return {"timestamp": iso_utc(sample.reading.timestamp), "sampledValue": sampled}

    def _on_result(self, entry: Entry, result: Any) -> int | None:
        """Act on the CSMS's answer; returns the transaction id a start was given."""
        event = entry.event
        if isinstance(event, TransactionStarted):
            transaction_id, info = _integer(result.transaction_id), _auth_result(result.id_tag_info)
            self._spawn(self.station.authorization.remember(event.id_tag, info))
            log.info("transaction %s is %d at the CSMS", event.local_id, transaction_id)
            if info.status != AuthStatus.ACCEPTED and self.settings.get("StopTransactionOnInvalidId"):
                self.station.transaction_rejected(event.local_id, info.status)
            return transaction_id
        if isinstance(event, TransactionStopped):
            self.outbox.forget(event.local_id)
            if event.id_tag and isinstance(result.id_tag_info, dict):
                self._spawn(self.station.authorization.remember(
                    event.id_tag, _auth_result(result.id_tag_info)))
        return None


def _auth_result(info: dict[str, Any]) -> AuthResult:
    """An IdTagInfo as the station's AuthResult (keys in wire or library spelling)."""
    info = {_snake(name): value for name, value in info.items()}
    status = AuthStatus(AuthorizationStatus(info["status"]).value)
    return AuthResult(status, parent_id_tag=info.get("parent_id_tag"),
                      expiry=parse_expiry(info.get("expiry_date")))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _list_entry(info: dict[str, Any] | None) -> ListEntry | None:
    """A local list entry from an IdTagInfo; None (no info) removes the id."""
    if info is None:
        return None
    result = _auth_result(info)
    return ListEntry(result.status, result.expiry, result.parent_id_tag)


def _remove(listeners: list[Any], listener: Any) -> None:
    if listener in listeners:
        listeners.remove(listener)


async def _first_of(*futures: asyncio.Future[Any]) -> None:
    """Wait until one of ``futures`` finishes; re-raise its exception."""
    done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    for future in done:
        future.result()

