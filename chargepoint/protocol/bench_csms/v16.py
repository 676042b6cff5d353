"""A small OCPP central system for the bench and the demo (1.6J; 2.0.1 in ``v201.py``, 2.1 in ``v21.py``).

A technician commissioning a station without the operator's backend, or a
developer on a laptop, needs something to connect to: this accepts stations,
answers BootNotification, Authorize and the transaction messages, keeps a
ledger of every frame and of each transaction's energy, and can start and stop
sessions remotely. It is not an operator's CSMS: no users, no tariffs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint as LibPeer
from ocpp.v16 import call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    GenericStatus,
    RegistrationStatus,
    RemoteStartStopStatus,
)
from websockets.asyncio.server import Server, ServerConnection, serve

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Frame:
    """One OCPP frame as seen by the CSMS."""

    identity: str
    direction: str  # "in" (station -> CSMS) or "out"
    message_type: int
    unique_id: str
    action: str | None
    payload: Any


@dataclass
class TransactionRecord:
    #: The CSMS's number (1.6) or the station's own id (2.0.1).
    transaction_id: int | str
    identity: str
    connector_id: int
    id_tag: str
    meter_start: int
    started: str
    meter_stop: int | None = None
    stopped: str | None = None
    reason: str | None = None
    meter_values: int = 0

    @property
    def energy_wh(self) -> int | None:
        return None if self.meter_stop is None else self.meter_stop - self.meter_start


class _RecordingSocket:
    """Passes frames through and records each one before it is handled."""

    def __init__(self, ws: ServerConnection, identity: str, record: Callable[[Frame], None]) -> None:
        self.ws = ws
        self.identity = identity
        self.record = record
        self._actions: dict[str, str] = {}

    def _note(self, raw: str | bytes, direction: str) -> None:
        try:
            message = json.loads(raw)
            kind, unique_id = int(message[0]), str(message[1])
        except (ValueError, TypeError, IndexError, KeyError):
            self.record(Frame(self.identity, direction, 0, "", None, raw))
            return
        if kind == 2:
            self._actions[unique_id] = message[2]
            self.record(Frame(self.identity, direction, kind, unique_id, message[2], message[3]))
        else:
            action = self._actions.pop(unique_id, None)
            self.record(Frame(self.identity, direction, kind, unique_id, action, message[2:]))

    async def recv(self) -> str | bytes:
        raw = await self.ws.recv()
        self._note(raw, "in")
        return raw

    async def send(self, raw: str) -> None:
        self._note(raw, "out")
        await self.ws.send(raw)


class StationPeer(LibPeer):
    """The CSMS side of one connected station."""

    def __init__(self, identity: str, connection: _RecordingSocket, csms: CentralSystem) -> None:
        super().__init__(identity, connection, response_timeout=csms.response_timeout_s)
        self.csms = csms
        self.status: dict[int, tuple[str, str]] = {}

    def _id_tag_info(self, id_tag: str) -> dict[str, str]:
        accepted = self.csms.accept_tags is None or id_tag in self.csms.accept_tags
        status = AuthorizationStatus.accepted if accepted else AuthorizationStatus.invalid
        return {"status": status.value}

    @on(Action.boot_notification)
    def on_boot(self, charge_point_vendor: str, charge_point_model: str, **_: Any) -> Any:
        return call_result.BootNotification(
            current_time=_now(), interval=self.csms.heartbeat_interval_s,
            status=self.csms.boot_status,
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status(self, connector_id: int, error_code: str, status: str, **_: Any) -> Any:
        self.status[connector_id] = (status, error_code)
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag: str) -> Any:
        return call_result.Authorize(id_tag_info=self._id_tag_info(id_tag))

    @on(Action.start_transaction)
    def on_start(self, connector_id: int, id_tag: str, meter_start: int, timestamp: str,
                 **_: Any) -> Any:
        tx_id = self.csms.next_transaction_id()
        self.csms.transactions[tx_id] = TransactionRecord(
            tx_id, self.id, connector_id, id_tag, meter_start, timestamp)
        return call_result.StartTransaction(transaction_id=tx_id,
                                            id_tag_info=self._id_tag_info(id_tag))

    @on(Action.meter_values)
    def on_meter_values(self, connector_id: int, meter_value: list, transaction_id: int | None = None,
                        **_: Any) -> Any:
        record = self.csms.transactions.get(transaction_id or -1)
        if record is not None:
            record.meter_values += 1
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    def on_stop(self, meter_stop: int, timestamp: str, transaction_id: int,
                reason: str | None = None, id_tag: str | None = None, **_: Any) -> Any:
        record = self.csms.transactions.get(transaction_id)
        if record is not None:
            record.meter_stop, record.stopped = meter_stop, timestamp
            record.reason = reason or "Local"
        return call_result.StopTransaction(
            id_tag_info=self._id_tag_info(id_tag) if id_tag else None)

    # The station's reports: noted as received (a bench CSMS keeps no firmware or log of its own).
    @on(Action.security_event_notification)
    def on_security_event(self, type: str, timestamp: str, **_: Any) -> Any:
        return call_result.SecurityEventNotification()

    @on(Action.firmware_status_notification)
    def on_firmware_status(self, status: str, **_: Any) -> Any:
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    def on_diagnostics_status(self, status: str, **_: Any) -> Any:
        return call_result.DiagnosticsStatusNotification()

    @on(Action.signed_firmware_status_notification)
    def on_signed_firmware_status(self, status: str, **_: Any) -> Any:
        return call_result.SignedFirmwareStatusNotification()

    @on(Action.log_status_notification)
    def on_log_status(self, status: str, **_: Any) -> Any:
        return call_result.LogStatusNotification()

    @on(Action.sign_certificate)
    def on_sign_certificate(self, csr: str, **_: Any) -> Any:
        # The bench CSMS is no certificate authority: it says so rather than pretend to sign.
        return call_result.SignCertificate(status=GenericStatus.rejected)

    async def remote_start(self, id_tag: str, connector_id: int | None = None) -> bool:
        result = await self.call(call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector_id))
        return result is not None and result.status == RemoteStartStopStatus.accepted

    async def remote_stop(self, transaction_id: int | str) -> bool:
        result = await self.call(call.RemoteStopTransaction(transaction_id=int(transaction_id)))
        return result is not None and result.status == RemoteStartStopStatus.accepted


#: Makes the CSMS side of one station: ``peer(identity, connection, csms)``.
PeerFactory = Callable[[str, Any, "CentralSystem"], Any]


@dataclass
class CentralSystem:
    """Accepts OCPP stations on ``ws://host:port/<identity>``: 1.6J, and each version in ``peers``.

    ``peers`` maps a subprotocol to the CSMS side of a station speaking it, in the
    order this CSMS prefers them (``protocol.bench_csms.v201.BOTH_VERSIONS`` adds 2.0.1).
    """

    accept_tags: set[str] | None = None  # None accepts every card
    boot_status: RegistrationStatus = RegistrationStatus.accepted
    heartbeat_interval_s: int = 300
    response_timeout_s: float = 30.0
    on_frame: Callable[[Frame], None] | None = None
    #: The most recent frames (bounded: a bench CSMS may run for days).
    frames: deque[Frame] = field(default_factory=lambda: deque(maxlen=10_000))
    #: Whether frames are decoded and kept at all; off for a quiet, fast CSMS.
    record_frames: bool = True
    transactions: dict[int, TransactionRecord] = field(default_factory=dict)
    stations: dict[str, Any] = field(default_factory=dict)
    peers: dict[str, PeerFactory] = field(default_factory=lambda: {SUBPROTOCOL: StationPeer})
    _transaction_ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _server: Server | None = None
    _connected: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; returns the port (useful with port 0)."""
        self._server = await serve(self._handle, host, port,
                                   subprotocols=list(self.peers))  # type: ignore[arg-type]
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _record(self, frame: Frame) -> None:
        self.frames.append(frame)
        if self.on_frame is not None:
            self.on_frame(frame)

    async def _handle(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request else "/"
        identity = path.rstrip("/").rsplit("/", 1)[-1]
        if ws.subprotocol not in self.peers or not identity:
            await ws.close(1002, f"expected a subprotocol of {', '.join(self.peers)} and an identity")
            return
        connection: Any = _RecordingSocket(ws, identity, self._record) if self.record_frames else ws
        peer = self.peers[ws.subprotocol](identity, connection, self)
        self.stations[identity] = peer
        async with self._connected:
            self._connected.notify_all()
        log.info("station %s connected", identity)
        try:
            await peer.start()
        except websockets.exceptions.ConnectionClosed:
            log.info("station %s disconnected", identity)
        finally:
            if self.stations.get(identity) is peer:
                del self.stations[identity]

    async def wait_for_station(self, identity: str, timeout: float = 10.0) -> Any:
        async def connected() -> Any:
            async with self._connected:
                await self._connected.wait_for(lambda: identity in self.stations)
                return self.stations[identity]
        return await asyncio.wait_for(connected(), timeout)

    def next_transaction_id(self) -> int:
        return next(self._transaction_ids)

    async def remote_start(self, identity: str, id_tag: str, connector_id: int | None = None) -> bool:
        """Start a session on a station, in the version it speaks."""
        return bool(await self.stations[identity].remote_start(id_tag, connector_id))

    async def remote_stop(self, identity: str, transaction_id: int | str) -> bool:
        return bool(await self.stations[identity].remote_stop(transaction_id))
