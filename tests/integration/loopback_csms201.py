"""A scripted OCPP 2.0.1 CSMS for the tests, built directly on the ``ocpp`` library.

The 2.0.1 twin of ``loopback_csms.py``: each test scripts the answers (boot
Pending/Rejected, refused tokens, TransactionEvents refused with a CALLERROR)
and the server records every CALL the station makes, in order. The ``ocpp``
library validates every CALL the station sends against the 2.0.1 schemas; with
``subprotocol="ocpp2.1"`` it is a 2.1 CSMS (2.1 extends 2.0.1) checking them as 2.1.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from datetime import UTC, datetime
from typing import Any

import websockets
from ocpp import v21
from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.server import ServerConnection, serve

from tests.integration.loopback_csms import Received


def _now() -> str:
    return datetime.now(tz=UTC).isoformat().replace("+00:00", "Z")


class _Peer(ChargePoint):
    def __init__(self, ws: ServerConnection, csms: LoopbackCsms201, number: int) -> None:
        super().__init__("station", ws, response_timeout=10)
        self.csms = csms
        self.number = number

    def _log(self, action: str, **payload: Any) -> None:
        self.csms.received.append(Received(action, payload, time.monotonic(), self.number))

    def _info(self, id_token: dict[str, Any]) -> dict[str, Any]:
        return dict(self.csms.token_info.get(id_token["id_token"], {"status": "Accepted"}))

    @on(Action.boot_notification)
    def boot(self, **payload: Any) -> Any:
        self._log("BootNotification", **payload)
        status, interval = (self.csms.boot_script.pop(0) if self.csms.boot_script
                            else ("Accepted", self.csms.heartbeat_interval))
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
    def authorize(self, id_token: dict, **payload: Any) -> Any:
        self._log("Authorize", id_token=id_token, **payload)
        return call_result.Authorize(id_token_info=self._info(id_token))

    @on(Action.transaction_event)
    def transaction_event(self, **payload: Any) -> Any:
        self._log("TransactionEvent", **payload)
        if self.csms.refuse_transaction_events > 0:
            self.csms.refuse_transaction_events -= 1
            raise InternalError(description="refused by the test", details={})
        token = payload.get("id_token")
        if token is None:
            return call_result.TransactionEvent()
        info = self.csms.transaction_token_info.get(token["id_token"]) or self._info(token)
        return call_result.TransactionEvent(id_token_info=dict(info))

    @on(Action.meter_values)
    def meter_values(self, **payload: Any) -> Any:
        self._log("MeterValues", **payload)
        return call_result.MeterValues()

    @on(Action.notify_event)
    def notify_event(self, **payload: Any) -> Any:
        self._log("NotifyEvent", **payload)
        return call_result.NotifyEvent()

    @on(Action.security_event_notification)
    def security_event(self, **payload: Any) -> Any:
        self._log("SecurityEventNotification", **payload)
        return call_result.SecurityEventNotification()

    @on(Action.sign_certificate)
    def sign_certificate(self, **payload: Any) -> Any:
        self._log("SignCertificate", **payload)
        return call_result.SignCertificate(status="Accepted")

    @on(Action.data_transfer)
    def data_transfer(self, **payload: Any) -> Any:
        self._log("DataTransfer", **payload)
        return call_result.DataTransfer(status="Accepted", data={"echo": payload.get("data")})


class _Peer21(_Peer):
    """The same CSMS in OCPP 2.1: the library's 2.1 messages and schemas."""

    _call = v21.call
    _call_result = v21.call_result
    _ocpp_version = "2.1"

    @on(Action.authorize)
    def authorize(self, id_token: dict, **payload: Any) -> Any:
        answer = super().authorize(id_token, **payload)
        return v21.call_result.Authorize(id_token_info=answer.id_token_info, tariff=self.csms.driver_tariff)

    @on(Action.transaction_event)
    def transaction_event(self, **payload: Any) -> Any:
        answer = super().transaction_event(**payload)
        return v21.call_result.TransactionEvent(id_token_info=answer.id_token_info,
                                                total_cost=self.csms.total_cost)


class LoopbackCsms201:
    """A websockets server on 127.0.0.1 speaking ``ocpp2.0.1`` that records what stations send."""

    def __init__(self, heartbeat_interval: int = 300, subprotocol: str = "ocpp2.0.1") -> None:
        self.heartbeat_interval = heartbeat_interval
        self.subprotocol = subprotocol
        #: (status, interval) answered to the next BootNotifications, in turn.
        self.boot_script: list[tuple[str, int]] = []
        #: idToken -> the IdTokenInfo answered for it (default Accepted).
        self.token_info: dict[str, dict[str, Any]] = {}
        #: Overrides the IdTokenInfo in TransactionEvent answers only (a card blocked meanwhile).
        self.transaction_token_info: dict[str, dict[str, Any]] = {}
        #: The next this many TransactionEvents are answered with a CALLERROR.
        self.refuse_transaction_events = 0
        #: 2.1: the running total given in every TransactionEvent answer (None: none), and the tariff
        #: given with every Authorize answer (a driver tariff; None: none).
        self.total_cost: float | None = None
        self.driver_tariff: dict[str, Any] | None = None
        self.received: list[Received] = []
        self.peer: _Peer | None = None
        self._connections = itertools.count(1)
        self._server: Any = None
        self.port = 0

    async def start(self, port: int = 0) -> LoopbackCsms201:
        self._server = await serve(self._handle, "127.0.0.1", port,
                                   subprotocols=[self.subprotocol])  # type: ignore[list-item]
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
        peer = (_Peer21 if self.subprotocol == "ocpp2.1" else _Peer)(ws, self, next(self._connections))
        self.peer = peer
        try:
            await peer.start()
        except websockets.exceptions.ConnectionClosed:
            pass

    def actions(self) -> list[str]:
        return [r.action for r in self.received]

    def of(self, action: str, **match: Any) -> list[Received]:
        return [r for r in self.received if r.action == action
                and all(r.payload.get(k) == v for k, v in match.items())]

    def transaction(self, tx_id: str) -> list[dict[str, Any]]:
        """The TransactionEvents of one transaction, in the order received."""
        return [r.payload for r in self.of("TransactionEvent")
                if r.payload["transaction_info"]["transaction_id"] == tx_id]

    async def wait_for(self, action: str, count: int = 1, timeout: float = 10.0,
                       **match: Any) -> list[Received]:
        """Wait until ``count`` CALLs of ``action`` (whose payload has ``match``) arrived."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.of(action, **match)
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
