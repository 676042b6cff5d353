"""The bench CSMS's side of a station that speaks OCPP 2.0.1.

``protocol.bench_csms.v16.CentralSystem`` accepts the connection and keeps the ledger;
this peer answers the 2.0.1 messages into the same ledger (a transaction's
record is keyed by the station's own transaction id) and starts and stops
sessions the 2.0.1 way. ``BOTH_VERSIONS`` makes a CentralSystem that prefers
2.0.1 and also speaks 1.6J.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v201 import ChargePoint as LibPeer
from ocpp.v201 import call, call_result
from ocpp.v201.enums import (
    Action,
    AuthorizationStatusEnumType,
    RequestStartStopStatusEnumType,
)

from chargepoint.protocol.bench_csms import v16 as v16_csms
from chargepoint.protocol.bench_csms.v16 import CentralSystem, TransactionRecord

SUBPROTOCOL = "ocpp2.0.1"
_REMOTE_START_IDS = itertools.count(1)


def _now() -> str:
    return datetime.now(tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _energy(meter_values: list[dict[str, Any]] | None) -> int | None:
    """The import register in Wh, from the last sampled value that is one (library spelling)."""
    found = None
    for meter_value in meter_values or []:
        for sampled in meter_value.get("sampled_value", []):
            if sampled.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register":
                found = round(float(sampled["value"]))
    return found


class StationPeer201(LibPeer):
    """The CSMS side of one connected 2.0.1 station."""

    def __init__(self, identity: str, connection: Any, csms: CentralSystem) -> None:
        super().__init__(identity, connection, response_timeout=csms.response_timeout_s)
        self.csms = csms
        #: EVSE id -> (connector status, "") as last notified.
        self.status: dict[int, tuple[str, str]] = {}

    def _token_info(self, id_token: dict[str, Any]) -> dict[str, str]:
        accepted = self.csms.accept_tags is None or id_token["id_token"] in self.csms.accept_tags
        status = AuthorizationStatusEnumType.accepted if accepted else AuthorizationStatusEnumType.invalid
        return {"status": status.value}

    @on(Action.boot_notification)
    def on_boot(self, charging_station: dict, reason: str, **_: Any) -> Any:
        return call_result.BootNotification(current_time=_now(), interval=self.csms.heartbeat_interval_s,
                                            status=self.csms.boot_status.value)

    @on(Action.heartbeat)
    def on_heartbeat(self) -> Any:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    def on_status(self, timestamp: str, connector_status: str, evse_id: int, connector_id: int,
                  **_: Any) -> Any:
        self.status[evse_id] = (connector_status, "")
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_token: dict, **_: Any) -> Any:
        return call_result.Authorize(id_token_info=self._token_info(id_token))

    @on(Action.transaction_event)
    def on_transaction_event(self, event_type: str, timestamp: str, trigger_reason: str, seq_no: int,
                             transaction_info: dict, meter_value: list | None = None,
                             id_token: dict | None = None, evse: dict | None = None, **_: Any) -> Any:
        tx_id = transaction_info["transaction_id"]
        record = self.csms.transactions.get(tx_id)
        if event_type == "Started" or record is None:
            record = TransactionRecord(tx_id, self.id, (evse or {}).get("id", 0),
                                       (id_token or {}).get("id_token", ""),
                                       _energy(meter_value) or 0, timestamp)
            self.csms.transactions[tx_id] = record
        elif event_type == "Updated" and meter_value:
            record.meter_values += 1
        else:
            record.meter_stop = _energy(meter_value) or record.meter_start
            record.stopped, record.reason = timestamp, transaction_info.get("stopped_reason", "Local")
        info = self._token_info(id_token) if id_token else None
        return call_result.TransactionEvent(id_token_info=info)

    @on(Action.meter_values)
    def on_meter_values(self, evse_id: int, meter_value: list, **_: Any) -> Any:
        return call_result.MeterValues()

    @on(Action.notify_event)
    def on_notify_event(self, generated_at: str, seq_no: int, event_data: list, **_: Any) -> Any:
        return call_result.NotifyEvent()

    @on(Action.security_event_notification)
    def on_security_event_notification(self, type: str, timestamp: str, **_: Any) -> Any:
        return call_result.SecurityEventNotification()

    async def remote_start(self, id_tag: str, connector_id: int | None = None) -> bool:
        result = await self.call(call.RequestStartTransaction(
            id_token={"idToken": id_tag, "type": "Central"}, remote_start_id=next(_REMOTE_START_IDS),
            evse_id=connector_id))
        return result is not None and result.status == RequestStartStopStatusEnumType.accepted

    async def remote_stop(self, transaction_id: int | str) -> bool:
        result = await self.call(call.RequestStopTransaction(transaction_id=str(transaction_id)))
        return result is not None and result.status == RequestStartStopStatusEnumType.accepted


#: The peers of a bench CSMS that prefers 2.0.1 and speaks 1.6J too: ``CentralSystem(peers=...)``.
BOTH_VERSIONS: dict[str, v16_csms.PeerFactory] = {SUBPROTOCOL: StationPeer201,
                                                   v16_csms.SUBPROTOCOL: v16_csms.StationPeer}
