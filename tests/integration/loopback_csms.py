"""A scripted OCPP 1.6J CSMS for the tests, built directly on the ``ocpp`` library.

It is deliberately separate from the product's bench CSMS: the station is
tested against a peer whose answers each test scripts (boot Pending/Rejected,
refused cards, a socket closed mid-session) and which records every CALL the
station makes, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import ServerConnection, serve


def _now() -> str:
    return datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Received:
    action: str
    payload: dict[str, Any]
    at: float  # time.monotonic() when received
    connection: int


class _Peer(ChargePoint):
    def __init__(self, identity: str, ws: ServerConnection, csms: LoopbackCsms, number: int) -> None:
        super().__init__(identity, ws, response_timeout=10)
        self.csms = csms
        self.number = number

    def _log(self, action: str, **payload: Any) -> None:
        self.csms.received.append(Received(action, payload, time.monotonic(), self.number))

    def _tag(self, id_tag: str) -> dict[str, str]:
        status = self.csms.tag_status.get(id_tag, AuthorizationStatus.accepted)
        info = {"status": status.value}
        if id_tag in self.csms.tag_parent:
            info["parent_id_tag"] = self.csms.tag_parent[id_tag]
        return info

    @on(Action.boot_notification)
    def boot(self, **payload: Any) -> Any:
        self._log("BootNotification", **payload)
        status, interval = (self.csms.boot_script.pop(0) if self.csms.boot_script
                            else (RegistrationStatus.accepted, self.csms.heartbeat_interval))
        if payload.get("firmware_version") in self.csms.pending_versions:
            status, interval = RegistrationStatus.pending, 1
        return call_result.BootNotification(current_time=_now(), interval=interval, status=status)

    @on(Action.heartbeat)
    def heartbeat(self) -> Any:
        self._log("Heartbeat")
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def status(self, **payload: Any) -> Any:
        self._log("StatusNotification", **payload)
        return call_result.StatusNotification()

    @on(Action.authorize)
    def authorize(self, id_tag: str) -> Any:
        self._log("Authorize", id_tag=id_tag)
        return call_result.Authorize(id_tag_info=self._tag(id_tag))

    @on(Action.start_transaction)
    def start_transaction(self, **payload: Any) -> Any:
        self._log("StartTransaction", **payload)
        # As an operator's CSMS does: a StartTransaction sent again (a station that
        # crashed between this answer and recording it) gets the same transaction.
        key = (payload["connector_id"], payload["id_tag"], payload["meter_start"], payload["timestamp"])
        tx_id = self.csms.started.get(key) or next(self.csms.transaction_ids)
        self.csms.started[key] = tx_id
        id_tag = payload["id_tag"]
        status = self.csms.start_status.get(id_tag)
        info = {"status": status.value} if status else self._tag(id_tag)
        return call_result.StartTransaction(transaction_id=tx_id, id_tag_info=info)

    @on(Action.meter_values)
    def meter_values(self, **payload: Any) -> Any:
        self._log("MeterValues", **payload)
        return call_result.MeterValues()

    @on(Action.data_transfer)
    def data_transfer(self, **payload: Any) -> Any:
        self._log("DataTransfer", **payload)
        return call_result.DataTransfer(status="Accepted")

    @on(Action.stop_transaction)
    def stop_transaction(self, **payload: Any) -> Any:
        self._log("StopTransaction", **payload)
        return call_result.StopTransaction()

    @on(Action.security_event_notification)
    def security_event_notification(self, **payload: Any) -> Any:
        self._log("SecurityEventNotification", **payload)
        return call_result.SecurityEventNotification()

    @on(Action.firmware_status_notification)
    def firmware_status(self, **payload: Any) -> Any:
        self._log("FirmwareStatusNotification", **payload)
        return call_result.FirmwareStatusNotification()

    @on(Action.diagnostics_status_notification)
    def diagnostics_status(self, **payload: Any) -> Any:
        self._log("DiagnosticsStatusNotification", **payload)
        return call_result.DiagnosticsStatusNotification()


class LoopbackCsms:
    """A websockets server on 127.0.0.1 that records what stations send."""

    def __init__(self, heartbeat_interval: int = 300) -> None:
        self.heartbeat_interval = heartbeat_interval
        self.boot_script: list[tuple[RegistrationStatus, int]] = []
        #: Firmware versions whose BootNotification is answered Pending (a version that never boots).
        self.pending_versions: set[str] = set()
        self.tag_status: dict[str, AuthorizationStatus] = {}
        #: Overrides the answer to StartTransaction only (a card blocked meanwhile).
        self.start_status: dict[str, AuthorizationStatus] = {}
        #: idTag -> parentIdTag in every IdTagInfo (cards of one fleet).
        self.tag_parent: dict[str, str] = {}
        self.received: list[Received] = []
        self.transaction_ids = itertools.count(100)
        #: (connector, idTag, meterStart, timestamp) -> transactionId given.
        self.started: dict[tuple[Any, ...], int] = {}
        self.peer: _Peer | None = None
        self.sockets: list[ServerConnection] = []
        self.paths: list[str] = []
        self.subprotocols: list[str | None] = []
        self._connections = itertools.count(1)
        self._server: Any = None
        self.port = 0

    async def start(self) -> LoopbackCsms:
        return await self.start_on(0)

    async def start_on(self, port: int) -> LoopbackCsms:
        """Listen on ``port`` (0: any free port), e.g. again after ``close``."""
        self._server = await serve(self._handle, "127.0.0.1", port, subprotocols=["ocpp1.6"])  # type: ignore[list-item]
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, ws: ServerConnection) -> None:
        self.paths.append(ws.request.path if ws.request else "")
        self.subprotocols.append(ws.subprotocol)
        self.sockets.append(ws)
        peer = _Peer("station", ws, self, next(self._connections))
        self.peer = peer
        try:
            await peer.start()
        except websockets.exceptions.ConnectionClosed:
            pass

    def actions(self) -> list[str]:
        return [r.action for r in self.received]

    def of(self, action: str) -> list[Received]:
        return [r for r in self.received if r.action == action]

    async def wait_for(self, action: str, count: int = 1, timeout: float = 10.0,
                       **match: Any) -> list[Received]:
        """Wait until ``count`` CALLs of ``action`` (whose payload has ``match``) arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = [r for r in self.of(action)
                     if all(r.payload.get(k) == v for k, v in match.items())]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {count} x {action} {match}; "
                                     f"got {self.actions()}")
            await asyncio.sleep(0.01)

    async def call(self, payload: Any) -> Any:
        """Send a CALL to the connected station; the CALLRESULT, or OCPPError raised."""
        assert self.peer is not None
        return await self.peer.call(payload, suppress=False)

    async def remote_start(self, id_tag: str, connector_id: int | None = None) -> str:
        assert self.peer is not None
        result = await self.peer.call(call.RemoteStartTransaction(id_tag=id_tag, connector_id=connector_id))
        return result.status

    async def remote_stop(self, transaction_id: int) -> str:
        assert self.peer is not None
        result = await self.peer.call(call.RemoteStopTransaction(transaction_id=transaction_id))
        return result.status
