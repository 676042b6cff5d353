"""OCPP 1.6J adapter for the charge point.

Translates station events into 1.6 CALLs and the CSMS's CALLs into station
commands. The ``ocpp`` library reads the next frame only after a handler
returns and allows one outstanding CALL, so handlers answer at once and any
follow-up runs as a task; every outgoing CALL goes through ``_call``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibChargePoint
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    ChargePointErrorCode,
    RegistrationStatus,
    RemoteStartStopStatus,
)

import chargepoint
from chargepoint.config import Config
from chargepoint.events import (
    AuthResult,
    AuthStatus,
    MeterSample,
    StatusChanged,
    TransactionEvent,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.outbox import Entry, Outbox
from chargepoint.protocol.measurands import format_number, values_for
from chargepoint.settings import Settings
from chargepoint.station import Station
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
#: How often and how long apart a refused transaction message is tried again.
TRANSACTION_MESSAGE_ATTEMPTS = 3
TRANSACTION_MESSAGE_RETRY_S = 10.0


def iso_utc(timestamp: float) -> str:
    """Epoch seconds as the UTC ISO 8601 text OCPP uses."""
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _LibPeer(LibChargePoint):
    """The library's charge point, with handlers that delegate to the adapter."""

    def __init__(self, identity: str, ws: Any, adapter: V16Adapter, response_timeout: float) -> None:
        super().__init__(identity, ws, response_timeout=response_timeout)
        self.adapter = adapter

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag: str, connector_id: int | None = None,
                        charging_profile: dict | None = None) -> call_result.RemoteStartTransaction:
        accepted = self.adapter.station.remote_start(
            id_tag, connector_id,
            authorize_first=bool(self.adapter.settings.get("AuthorizeRemoteTxRequests")),
        )
        status = RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected
        return call_result.RemoteStartTransaction(status=status)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        local_id = self.adapter.outbox.local_id(transaction_id)
        accepted = local_id is not None and self.adapter.station.remote_stop(local_id)
        status = RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected
        return call_result.RemoteStopTransaction(status=status)


class V16Adapter:
    """One connected session of OCPP 1.6J: boot, heartbeat, status, outbox."""

    def __init__(self, ws: Any, station: Station, outbox: Outbox, settings: Settings,
                 config: Config, clock: Clock) -> None:
        self.ws = ws
        self.station = station
        self.outbox = outbox
        self.settings = settings
        self.config = config
        self.clock = clock
        self.peer = _LibPeer(config.station.identity, ws, self, config.ocpp.response_timeout_s)
        self.accepted = asyncio.Event()
        self._statuses: asyncio.Queue[StatusChanged] = asyncio.Queue()

    async def run(self) -> None:
        """Serve the connection until it closes (the exception tells why)."""
        reader = asyncio.ensure_future(self.peer.start())
        workers: list[asyncio.Future[Any]] = [reader]
        try:
            boot = asyncio.ensure_future(self._boot())
            workers.append(boot)
            await _first_of(boot, reader)
            self.station.authorizer = self.authorize
            self.station.status_listeners.append(self._statuses.put_nowait)
            for connector_id in [0, *self.station.connectors]:
                self._statuses.put_nowait(self.station.status_of(connector_id))
            session = [
                asyncio.ensure_future(self._heartbeat()),
                asyncio.ensure_future(self._drain_outbox()),
                asyncio.ensure_future(self._send_statuses()),
            ]
            workers += session
            await _first_of(reader, *session)
        finally:
            if self._statuses.put_nowait in self.station.status_listeners:
                self.station.status_listeners.remove(self._statuses.put_nowait)
            if self.station.authorizer == self.authorize:
                self.station.authorizer = None
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

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
                result = await self.peer.call(request, suppress=False)
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

    async def _heartbeat(self) -> None:
        while True:
            await self.clock.sleep(float(self.settings.get("HeartbeatInterval")))
            await self.peer.call(call.Heartbeat())

    # ------------------------------------------------------ authorization
    async def authorize(self, id_tag: str) -> AuthResult:
        result = await self.peer.call(call.Authorize(id_tag=id_tag))
        if result is None:
            return AuthResult(AuthStatus.UNKNOWN)
        return _auth_result(result.id_tag_info)

    # ------------------------------------------------------------ status
    async def _send_statuses(self) -> None:
        while True:
            status = await self._statuses.get()
            error = ERROR_CODES.get(status.fault or "", ChargePointErrorCode.no_error)
            if status.fault and status.fault not in ERROR_CODES:
                error = ChargePointErrorCode.other_error
            await self.peer.call(call.StatusNotification(
                connector_id=status.connector_id,
                error_code=error,
                status=status.status.value,
                timestamp=iso_utc(status.timestamp),
                info=status.fault if error == ChargePointErrorCode.other_error else status.info,
            ))

    # ------------------------------------------------------------ outbox
    async def _drain_outbox(self) -> None:
        """Send queued transaction messages in order; each leaves after its answer."""
        attempts = 0
        while True:
            entry = await self.outbox.wait_head()
            request = self._translate(entry)
            if request is None:
                self.outbox.ack(entry)
                continue
            try:
                result = await self.peer.call(request, suppress=False)
            except OCPPError as exc:
                attempts += 1
                if attempts < TRANSACTION_MESSAGE_ATTEMPTS:
                    log.warning("%s refused (%s); attempt %d of %d", type(request).__name__,
                                exc, attempts, TRANSACTION_MESSAGE_ATTEMPTS)
                    await self.clock.sleep(TRANSACTION_MESSAGE_RETRY_S * attempts)
                    continue
                log.error("%s refused %d times; dropped: %s", type(request).__name__, attempts, exc)
                self.outbox.ack(entry)
                attempts = 0
                continue
            # A timeout propagates: the connection is presumed dead and is replaced.
            attempts = 0
            self._on_result(entry, result)
            self.outbox.ack(entry)

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
            return call.MeterValues(
                connector_id=event.connector_id,
                transaction_id=transaction_id,
                meter_value=[self._meter_value(event)],
            )
        assert isinstance(event, TransactionStopped)
        return call.StopTransaction(
            meter_stop=round(event.meter_stop_wh),
            timestamp=iso_utc(event.timestamp),
            transaction_id=transaction_id,
            reason=event.reason.value,
            id_tag=event.id_tag,
            transaction_data=[self._meter_value(s, ["Energy.Active.Import.Register"])
                              for s in event.samples] or None,
        )

    def _meter_value(self, sample: MeterSample, measurands: list[str] | None = None) -> dict[str, Any]:
        selected = measurands or self.settings.csl("MeterValuesSampledData")
        sampled = []
        for value in values_for(sample.reading, selected, sample.offered_a):
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

    def _on_result(self, entry: Entry, result: Any) -> None:
        event = entry.event
        if isinstance(event, TransactionStarted):
            self.outbox.set_remote_id(event.local_id, int(result.transaction_id))
            info = _auth_result(result.id_tag_info)
            log.info("transaction %s is %d at the CSMS", event.local_id, result.transaction_id)
            if info.status != AuthStatus.ACCEPTED:
                self.station.transaction_rejected(event.local_id, info.status)
        elif isinstance(event, TransactionStopped):
            self.outbox.forget(event.local_id)


def _auth_result(info: dict[str, Any]) -> AuthResult:
    status = AuthStatus(AuthorizationStatus(info["status"]).value)
    return AuthResult(status, parent_id_tag=info.get("parent_id_tag"))


async def _first_of(*futures: asyncio.Future[Any]) -> None:
    """Wait until one of ``futures`` finishes; re-raise its exception."""
    done, _ = await asyncio.wait(futures, return_when=asyncio.FIRST_COMPLETED)
    for future in done:
        future.result()


AdapterFactory = Callable[[Any], V16Adapter]
