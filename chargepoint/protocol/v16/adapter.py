"""OCPP 1.6J adapter: one connected session of the station core spoken in 1.6.

Translates station events into 1.6 CALLs and the CSMS's CALLs (``peer.py``)
into station commands; holds no station logic and no state beyond the wire:
the 1.6 status last sent, and the CSMS's integer transaction ids, which the
outbox keeps as text. The connection's life (boot, heartbeat, CALLs, the
best-effort queue) is the shared session's (``protocol.common.session``), the
transaction messages go by the shared delivery loop in 1.6's words
(``tx_messages.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ocpp.exceptions import OccurenceConstraintViolationError, OCPPError
from ocpp.v16 import call, call_result
from ocpp.v16.enums import ChargePointErrorCode, ChargePointStatus, DataTransferStatus

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
from chargepoint.core.remote_start import remote_start
from chargepoint.core.services import Services
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Outbox
from chargepoint.protocol.common.delivery import Delivery
from chargepoint.protocol.common.session import Session
from chargepoint.protocol.common.timefmt import iso_utc
from chargepoint.protocol.v16 import smart_charging, translate
from chargepoint.protocol.v16.firmware import FirmwareHandlers, FirmwareReports
from chargepoint.protocol.v16.keys import KeyCatalogue
from chargepoint.protocol.v16.peer import Peer16
from chargepoint.protocol.v16.reservations import ReservationHandlers
from chargepoint.protocol.v16.security import SecurityHandlers, SecuritySession
from chargepoint.protocol.v16.signed_firmware import SignedFirmwareHandlers
from chargepoint.protocol.v16.smart_charging import SmartChargingHandlers
from chargepoint.protocol.v16.trigger import TriggerHandlers
from chargepoint.protocol.v16.tx_messages import TransactionMessages
from hal.clock import Clock

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
VERSION = "1.6"

DataTransferHandler = Callable[[str | None], tuple[str, str | None]]
#: Called with ``hard`` (True for a hard reset) once the CSMS has its answer.
ResetHook = Callable[[bool], Awaitable[None]]


class V16Adapter:
    """One connected session of OCPP 1.6J: its words for the session, the outbox and the handlers."""

    version = VERSION
    #: 1.6 begins a transaction with an identifier and the EV in.
    fixed_tx_points = True
    #: The functional blocks beside the Core profile's handlers (``peer.Peer16``), each built over
    #: this adapter as its context.
    block_types = (SmartChargingHandlers, ReservationHandlers, TriggerHandlers, SecurityHandlers,
                   FirmwareHandlers, SignedFirmwareHandlers)

    def __init__(self, ws: Any, station: Station, outbox: Outbox, settings: Settings,
                 config: Config, clock: Clock, *, on_reset: ResetHook | None = None,
                 data_transfer: dict[str, dict[str | None, DataTransferHandler]] | None = None,
                 boot_reason: object = None,  # 1.6's BootNotification has no reason
                 registered: Registration | None = None, services: Services | None = None) -> None:
        self.ws = ws
        self.station = station
        #: What the CSMS's requests reach besides the station (core/services.py); none in a bare test.
        self.services = services or Services()
        self.outbox = outbox
        self.settings = settings
        self.keys = KeyCatalogue(settings, len(station.connectors))
        self.config = config
        self.clock = clock
        self.on_reset = on_reset
        #: vendorId -> messageId (None: any) -> handler(data) -> (status, data).
        self.data_transfer_handlers = data_transfer if data_transfer is not None else {}
        self.peer = Peer16(config.station.identity, ws, self, config.ocpp.response_timeout_s)
        #: Whether this run is registered already (shared by the run's connections).
        self.registered = registered if registered is not None else Registration()
        self.session = Session(self.peer, self, station, settings, clock, self.registered,
                               boot_on_reconnect=config.ocpp.boot_on_reconnect)
        self.call = self.session.call
        self.spawn = self.session.spawn
        self.send_triggered = self.session.send_triggered
        self.queue = self.session.queue
        self.security_session = SecuritySession(self)
        for block_type in self.block_types:
            self.peer.add_block(block_type(self))
        self.transactions = TransactionMessages(station, outbox, settings, self.spawn)
        self.reports = FirmwareReports(self)
        #: Per connector: the newest 1.6 status, waiting out MinimumStatusDuration, and the one sent.
        self._latest: dict[int, tuple[Any, ...]] = {}
        self._sent_status: dict[int, tuple[Any, ...]] = {}

    @property
    def accepted(self) -> asyncio.Event:
        """Set once the station is registered on this connection."""
        return self.session.accepted

    async def run(self) -> None:
        """Serve the connection until it closes (the exception tells why)."""
        await self.session.run()

    # ------------------------------------------------------ session words
    def attach(self) -> None:
        self.reports.attach()

    def detach(self) -> None:
        self.reports.detach()

    def status_evses(self) -> list[int]:
        return [0, *self.station.connectors]  # 1.6 reports the station itself as connector 0

    def workers(self) -> list[Coroutine[Any, Any, Any]]:
        return [Delivery(self.outbox, self.settings, self.clock, self.transactions, self.call).run(),
                self.security_session.run()]

    def heartbeat_request(self) -> Any:
        return call.Heartbeat()

    def boot_accepted(self, result: Any) -> None:
        """An Accepted answer to a BootNotification the CSMS triggered: registered, as at boot."""
        self.session.boot_accepted(result.interval)

    def boot_request(self, triggered: bool = False) -> Any:
        """The BootNotification that describes this station (also what a TriggerMessage sends;
        1.6's has no reason)."""
        cfg = self.config.station
        return call.BootNotification(
            charge_point_model=cfg.model,
            charge_point_vendor=cfg.vendor,
            charge_point_serial_number=cfg.serial_number or None,
            firmware_version=chargepoint.__version__,
        )

    # ------------------------------------------------------ authorization
    async def authorize(self, token: IdToken) -> AuthResult:
        try:
            result = await self.call(call.Authorize(id_tag=token.value))
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
        result = remote_start(self.station, self.services.smart_charging, IdToken(id_tag, TokenType.CENTRAL),
                              connector_id, profile)
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
        result = await self.call(call.DataTransfer(vendor_id=vendor_id, message_id=message_id, data=data))
        return result.status, result.data

    def schedule_reset(self, kind: str) -> None:
        if self.on_reset is not None:
            log.info("%s reset requested by the CSMS", kind)
            self.spawn(self.on_reset(kind == "Hard"))

    # ------------------------------------------------------------ status
    def status_changed(self, status: StatusChanged) -> None:
        """Queue a status once it has been stable for MinimumStatusDuration."""
        wire = (translate.connector_status(status), translate.error_code(status))
        evse_id = status.evse_id
        if self._latest.get(evse_id, (None,))[0:2] == wire:
            return  # the same in 1.6 terms: nothing new to say, and no timer to restart
        self._latest[evse_id] = (*wire, status)
        duration = self.settings.current.minimum_status_duration_s
        if duration <= 0 or wire[0] == ChargePointStatus.faulted:
            self._queue_status(status, wire)
        else:
            self.spawn(self._after_stable(status, wire, duration))

    async def _after_stable(self, status: StatusChanged, wire: tuple[Any, ...], duration: float) -> None:
        await self.clock.sleep(duration)
        if self._latest.get(status.evse_id, (None, None, None))[2] is status:
            self._queue_status(status, wire)

    def _queue_status(self, status: StatusChanged, wire: tuple[Any, ...]) -> None:
        if self._sent_status.get(status.evse_id) == wire:
            return
        self._sent_status[status.evse_id] = wire
        self.session.queue(self.status_request(status))

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

    def aligned_sample(self, sample: MeterSample) -> None:
        measurands = self.settings.current.aligned_measurands
        if measurands:
            self.session.queue(call.MeterValues(
                connector_id=sample.evse_id, meter_value=[translate.meter_value(sample, measurands)]))
