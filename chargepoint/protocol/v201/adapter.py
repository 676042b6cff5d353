"""OCPP 2.0.1 adapter: one connected session of the station core spoken in 2.0.1.

Translates station events into 2.0.1 CALLs and the CSMS's CALLs (``peer.py``)
into station commands; holds no station logic and no state beyond the wire:
the 2.0.1 status last sent per connector, the faults last reported. The
connection's life (boot, heartbeat, CALLs, the best-effort queue) is the shared
session's (``protocol.common.session``), the transaction messages go by the
shared delivery loop in 2.0.1's words (``tx_events.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v201 import call, call_result
from ocpp.v201.enums import (
    BootReasonEnumType,
    ChangeAvailabilityStatusEnumType,
    DataTransferStatusEnumType,
    MessageTriggerEnumType,
    OperationalStatusEnumType,
    RequestStartStopStatusEnumType,
    ResetEnumType,
    ResetStatusEnumType,
    TriggerMessageStatusEnumType,
    UnlockStatusEnumType,
)

import chargepoint
from chargepoint.config import Config
from chargepoint.core import idle
from chargepoint.core.boot import BootReason, Registration
from chargepoint.core.commands import AvailabilityChange, UnlockResult
from chargepoint.core.events import (
    AuthResult,
    AuthStatus,
    IdToken,
    MeterSample,
    ReadingContext,
    StatusChanged,
    StopReason,
)
from chargepoint.core.remote_start import remote_start
from chargepoint.core.services import Services
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Outbox
from chargepoint.protocol.common.delivery import Delivery
from chargepoint.protocol.common.session import ACCEPTED, Session
from chargepoint.protocol.common.timefmt import iso_utc
from chargepoint.protocol.v201 import VERSION, smart_charging, translate
from chargepoint.protocol.v201.device_model import DeviceModel
from chargepoint.protocol.v201.display import DisplayHandlers
from chargepoint.protocol.v201.events import Notifications
from chargepoint.protocol.v201.firmware import TRIGGERS, FirmwareHandlers, FirmwareReports
from chargepoint.protocol.v201.monitoring import MonitorEvents, MonitoringHandlers
from chargepoint.protocol.v201.peer import V201Peer
from chargepoint.protocol.v201.provisioning import ProvisioningHandlers
from chargepoint.protocol.v201.reservations import ReservationHandlers, ReservationUpdates
from chargepoint.protocol.v201.security import SecurityHandlers, SecuritySession
from chargepoint.protocol.v201.smart_charging import SmartChargingHandlers
from chargepoint.protocol.v201.tx_events import TransactionEvents
from hal.clock import Clock

log = logging.getLogger(__name__)

BOOT_REASONS = {
    BootReason.POWER_UP: BootReasonEnumType.power_up,
    BootReason.REMOTE_RESET: BootReasonEnumType.remote_reset,
    BootReason.APPLICATION_ERROR: BootReasonEnumType.application_reset,
    BootReason.WATCHDOG: BootReasonEnumType.watchdog,
    BootReason.TRIGGERED: BootReasonEnumType.triggered,
}
_AVAILABILITY = {AvailabilityChange.ACCEPTED: ChangeAvailabilityStatusEnumType.accepted,
                 AvailabilityChange.SCHEDULED: ChangeAvailabilityStatusEnumType.scheduled,
                 AvailabilityChange.REJECTED: ChangeAvailabilityStatusEnumType.rejected}
_UNLOCK = {UnlockResult.UNLOCKED: UnlockStatusEnumType.unlocked,
           UnlockResult.FAILED: UnlockStatusEnumType.unlock_failed,
           UnlockResult.NO_LOCK: UnlockStatusEnumType.unlock_failed,
           UnlockResult.UNKNOWN_CONNECTOR: UnlockStatusEnumType.unknown_connector}

DataTransferHandler = Callable[[Any], tuple[str, Any]]
#: Called with ``hard`` once the CSMS has its answer (the daemon ends transactions and restarts).
ResetHook = Callable[[bool], Awaitable[None]]


class V201Adapter:
    """One connected session of OCPP 2.0.1: its words for the session, the outbox and the handlers."""

    #: The version spoken, its handlers and its transaction messages: 2.1 builds on this adapter
    #: (``protocol.v21.adapter``) and names its own.
    version = VERSION
    peer_class: type[V201Peer] = V201Peer
    transactions_class: type[TransactionEvents] = TransactionEvents
    #: TxStartPoint / TxStopPoint decide when a transaction begins and ends.
    fixed_tx_points = False
    #: The functional blocks beside the Core handlers (``peer.V201Peer``), each built over this
    #: adapter as its context (``context.Context201``).
    block_types: tuple[Callable[[Any], object], ...] = (
        SecurityHandlers, ProvisioningHandlers, MonitoringHandlers, SmartChargingHandlers,
        ReservationHandlers, FirmwareHandlers, DisplayHandlers)
    device_model_class: type[DeviceModel] = DeviceModel

    def __init__(self, ws: Any, station: Station, outbox: Outbox, settings: Settings,
                 config: Config, clock: Clock, *, on_reset: ResetHook | None = None,
                 data_transfer: dict[str, dict[str | None, DataTransferHandler]] | None = None,
                 boot_reason: BootReason = BootReason.POWER_UP,
                 registered: Registration | None = None, services: Services | None = None) -> None:
        self.ws = ws
        self.station = station
        #: What the CSMS's requests reach besides the station (core/services.py); none in a bare test.
        self.services = services or Services()
        self.outbox = outbox
        self.settings = settings
        self.config = config
        self.clock = clock
        self.on_reset = on_reset
        #: Whether this run is registered already (shared by the run's connections) and why it started.
        self.registered = registered if registered is not None else Registration(boot_reason)
        #: vendorId -> messageId (None: any) -> handler(data) -> (status, data).
        self.data_transfer_handlers = data_transfer if data_transfer is not None else {}
        self.peer = self.peer_class(config.station.identity, ws, self, config.ocpp.response_timeout_s)
        self.device_model = self.device_model_class(settings, len(station.connectors), station=station,
                                                    services=self.services, clock=clock.time)
        self.session = Session(self.peer, self, station, settings, clock, self.registered)
        self.call = self.session.call
        self.spawn = self.session.spawn
        #: For the handlers' follow-up reports (NotifyDisplayMessages): sent in order while connected.
        self.queue = self.session.queue
        self.send_triggered = self.session.send_triggered
        self.transactions = self.transactions_class(station, outbox, settings, clock.time(), self.spawn)
        self.notifications = Notifications(self.queue)
        self.reservation_updates = ReservationUpdates(station.reservations, self.queue)
        self.security_session = SecuritySession(self)
        for block_type in self.block_types:
            self.peer.add_block(block_type(self))
        #: Per EVSE: the 2.0.1 connector status last queued.
        self._sent_status: dict[int, str] = {}
        self.firmware_reports = FirmwareReports(self)

    @property
    def accepted(self) -> asyncio.Event:
        """Set once the station is registered on this connection."""
        return self.session.accepted

    @property
    def registration(self) -> str | None:
        """The CSMS's answer to the last BootNotification (None before the first)."""
        return self.session.registration

    async def run(self) -> None:
        """Serve the connection until it closes (the exception tells why)."""
        await self.session.run()

    # ------------------------------------------------------ session words
    def attach(self) -> None:
        self.reservation_updates.attach()
        self.firmware_reports.attach()

    def detach(self) -> None:
        self.firmware_reports.detach()
        self.reservation_updates.detach()

    def status_evses(self) -> list[int]:
        return list(self.station.connectors)

    def workers(self) -> list[Coroutine[Any, Any, Any]]:
        return [Delivery(self.outbox, self.settings, self.clock, self.transactions, self.call).run(),
                self.security_session.run(),
                MonitorEvents(self.device_model, self.station, self.queue).run()]

    def heartbeat_request(self) -> Any:
        return call.Heartbeat()

    def boot_request(self, triggered: bool = False) -> call.BootNotification:
        """The BootNotification with its true reason: the run's start, or Triggered."""
        cfg = self.config.station
        station: dict[str, Any] = {"model": cfg.model, "vendor_name": cfg.vendor,
                                   "firmware_version": chargepoint.__version__}
        if cfg.serial_number:
            station["serial_number"] = cfg.serial_number
        reason = BOOT_REASONS[self.registered.reason(triggered)]
        return call.BootNotification(charging_station=station, reason=reason.value)

    # ------------------------------------------------------ authorization
    async def authorize(self, token: IdToken) -> AuthResult:
        try:
            result = await self.call(call.Authorize(id_token=translate.id_token(token)))
        except (TimeoutError, OCPPError) as exc:
            log.warning("Authorize for %s not answered: %s", token, exc or "timeout")
            return AuthResult(AuthStatus.UNKNOWN)
        return translate.auth_result(result.id_token_info)

    # ------------------------------------------------------------ remote
    def request_start(self, id_token: dict, remote_start_id: int, evse_id: int | None,
                      charging_profile: dict | None = None) -> Any:
        token = translate.token_of(id_token)
        profile = None
        if charging_profile is not None:  # the TxProfile of the transaction to come: taken, or no start
            profile = smart_charging.remote_start_profile(self.station, charging_profile, evse_id)
            if profile is None:
                return call_result.RequestStartTransaction(status=RequestStartStopStatusEnumType.rejected)
        result = remote_start(self.station, self.services.smart_charging, token, evse_id, profile,
                              replace_same_level=False,
                              remote_start_id=remote_start_id)
        if not result.accepted:
            log.info("RequestStartTransaction for %s rejected: %s", token, result.refusal)
            return call_result.RequestStartTransaction(status=RequestStartStopStatusEnumType.rejected)
        return call_result.RequestStartTransaction(status=RequestStartStopStatusEnumType.accepted,
                                                   transaction_id=result.transaction_id)

    def request_stop(self, transaction_id: str) -> Any:
        accepted = self.station.remote_stop(transaction_id)
        return call_result.RequestStopTransaction(
            status=RequestStartStopStatusEnumType.accepted if accepted
            else RequestStartStopStatusEnumType.rejected)

    def change_availability(self, operational_status: str, evse: dict | None) -> Any:
        evse_id = int(evse["id"]) if evse else 0
        connector = evse.get("connector_id") if evse else None
        if evse_id and (evse_id not in self.station.connectors or (
                connector is not None and connector != self.station.view(evse_id).connector_id)):
            return call_result.ChangeAvailability(status=ChangeAvailabilityStatusEnumType.rejected)
        operative = operational_status == OperationalStatusEnumType.operative
        return call_result.ChangeAvailability(
            status=_AVAILABILITY[self.station.change_availability(evse_id, operative)])

    async def unlock(self, evse_id: int, connector_id: int) -> Any:
        if evse_id not in self.station.connectors or \
                connector_id != self.station.view(evse_id).connector_id:
            return call_result.UnlockConnector(status=UnlockStatusEnumType.unknown_connector)
        view = self.station.view(evse_id)
        if view.session is not None and view.session.transaction is not None:
            # 2.0.1 unlocks no plug under an authorized transaction: the CSMS stops it first.
            return call_result.UnlockConnector(status=UnlockStatusEnumType.ongoing_authorized_transaction)
        return call_result.UnlockConnector(status=_UNLOCK[await self.station.unlock(evse_id)])

    def incoming_data_transfer(self, vendor_id: str, message_id: str | None, data: Any) -> Any:
        handlers = self.data_transfer_handlers.get(vendor_id)
        if handlers is None:
            return call_result.DataTransfer(status=DataTransferStatusEnumType.unknown_vendor_id)
        handler = handlers.get(message_id) or handlers.get(None)
        if handler is None:
            return call_result.DataTransfer(status=DataTransferStatusEnumType.unknown_message_id)
        status, reply = handler(data)
        return call_result.DataTransfer(status=DataTransferStatusEnumType(status), data=reply)

    async def data_transfer(self, vendor_id: str, message_id: str | None = None,
                            data: Any = None) -> tuple[str, Any]:
        """Send a DataTransfer to the CSMS; returns its status and data."""
        result = await self.call(call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data))
        return result.status, result.data

    # ------------------------------------------------------------- reset
    def _busy(self, evse_id: int | None) -> bool:
        return idle.busy(self.station, evse_id)

    def reset(self, kind: str, evse_id: int | None) -> Any:
        if evse_id is not None and evse_id not in self.station.connectors:
            return call_result.Reset(status=ResetStatusEnumType.rejected)
        if kind == ResetEnumType.on_idle and self._busy(evse_id):
            return call_result.Reset(status=ResetStatusEnumType.scheduled)
        return call_result.Reset(status=ResetStatusEnumType.accepted)

    def after_reset(self, kind: str, evse_id: int | None) -> None:
        if evse_id is not None:
            # An EVSE has nothing of its own to restart here: its transaction ends (Immediate) or
            # is let finish (OnIdle), and the connector is ready again as soon as it is idle.
            if kind == ResetEnumType.immediate:
                self.spawn(self.station.stop_transaction(evse_id, StopReason.HARD_RESET))
            return
        if self.on_reset is not None:
            log.info("%s reset requested by the CSMS", kind)
            self.spawn(self._reset_when_idle(kind == ResetEnumType.on_idle))

    async def _reset_when_idle(self, wait_for_idle: bool) -> None:
        """OnIdle: the station restarts once no transaction runs; Immediate: at once (the
        transactions end with reason ImmediateReset first)."""
        if wait_for_idle:
            await idle.until_idle(self.station, self.clock)
        assert self.on_reset is not None
        await self.on_reset(False)

    # ----------------------------------------------------------- trigger
    def _trigger_evses(self, evse: dict | None) -> list[int]:
        if evse is None:
            return list(self.station.connectors)
        return [int(evse["id"])] if int(evse["id"]) in self.station.connectors else []

    def trigger(self, requested: str, evse: dict | None) -> Any:
        status = TriggerMessageStatusEnumType.accepted
        if requested == MessageTriggerEnumType.boot_notification:
            if self.registration == ACCEPTED:
                status = TriggerMessageStatusEnumType.rejected
        elif requested in (MessageTriggerEnumType.status_notification, MessageTriggerEnumType.meter_values):
            if not self._trigger_evses(evse):
                status = TriggerMessageStatusEnumType.rejected
        elif requested == MessageTriggerEnumType.transaction_event:
            if not any(self._busy(e) for e in self._trigger_evses(evse)):
                status = TriggerMessageStatusEnumType.rejected
        elif requested != MessageTriggerEnumType.heartbeat and requested not in TRIGGERS:
            status = TriggerMessageStatusEnumType.not_implemented
        return call_result.TriggerMessage(status=status)

    def after_trigger(self, requested: str, evse: dict | None) -> None:
        if requested == MessageTriggerEnumType.boot_notification:
            if self.registration != ACCEPTED:
                self.session.boot_now()
        elif requested == MessageTriggerEnumType.heartbeat:
            self.queue(call.Heartbeat())
        elif requested in TRIGGERS:
            self.firmware_reports.triggered(requested)
        elif requested == MessageTriggerEnumType.status_notification:
            for evse_id in self._trigger_evses(evse):
                self._queue_status(self.station.status_of(evse_id), force=True)
        elif requested == MessageTriggerEnumType.meter_values:
            for evse_id in self._trigger_evses(evse):
                reading = self.station.view(evse_id).last_reading
                if reading is not None:
                    sample = MeterSample(evse_id, "", reading, ReadingContext.TRIGGER)
                    measurands = self.settings.current.aligned_measurands or ["Energy.Active.Import.Register"]
                    self.queue(call.MeterValues(evse_id=evse_id,
                                                meter_value=[translate.meter_value(sample, measurands)]))
        elif requested == MessageTriggerEnumType.transaction_event:
            for evse_id in self._trigger_evses(evse):
                self.station.sample_now(evse_id)

    # ------------------------------------------------------------ status
    def status_changed(self, status: StatusChanged) -> None:
        if status.evse_id == 0:
            return  # 2.0.1 reports connectors only
        self.notifications.fault_changed(status)
        self._queue_status(status)

    def _queue_status(self, status: StatusChanged, force: bool = False) -> None:
        word = translate.connector_status(status).value
        if not force and self._sent_status.get(status.evse_id) == word:
            return
        self._sent_status[status.evse_id] = word
        self.queue(call.StatusNotification(
            timestamp=iso_utc(status.timestamp), connector_status=word,
            evse_id=status.evse_id, connector_id=status.connector_id))

    def aligned_sample(self, sample: MeterSample) -> None:
        measurands = self.settings.current.aligned_measurands
        if measurands:
            self.queue(call.MeterValues(evse_id=sample.evse_id,
                                        meter_value=[translate.meter_value(sample, measurands)]))
