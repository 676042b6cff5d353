"""The bench CSMS's side of a station that speaks OCPP 2.1.

2.1 extends 2.0.1: the bench's 2.0.1 peer (``protocol.v201.csms``) with the
``ocpp`` library's 2.1 messages and schemas. It keeps the session cost a
station reports in its Ended TransactionEvent (``costs``, by transaction id:
the total with taxes and the currency) beside the ledger.
``ALL_VERSIONS`` makes a CentralSystem that speaks 2.0.1 (preferred), 1.6J
and 2.1: a station offering 2.1 only is spoken to in 2.1.
"""

from __future__ import annotations

from typing import Any

from ocpp.routing import on
from ocpp.v21 import call, call_result
from ocpp.v21.enums import Action

from chargepoint.protocol.v16 import csms as v16_csms
from chargepoint.protocol.v21 import SUBPROTOCOL, VERSION
from chargepoint.protocol.v201.csms import BOTH_VERSIONS, StationPeer201


class StationPeer21(StationPeer201):
    """The CSMS side of one connected 2.1 station."""

    _call = call
    _call_result = call_result
    _ocpp_version = VERSION

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: Transaction id -> (total with taxes, currency) the station reported when it ended.
        self.costs: dict[str, tuple[float, str]] = {}

    @on(Action.transaction_event)
    def on_transaction_event(self, event_type: str, timestamp: str, trigger_reason: str, seq_no: int,
                             transaction_info: dict, meter_value: list | None = None,
                             id_token: dict | None = None, evse: dict | None = None,
                             cost_details: dict | None = None, **kwargs: Any) -> Any:
        answer = super().on_transaction_event(event_type, timestamp, trigger_reason, seq_no, transaction_info,
                                              meter_value, id_token, evse, **kwargs)
        if cost_details:
            total = cost_details["total_cost"]
            self.costs[transaction_info["transaction_id"]] = (total["total"].get("incl_tax", 0.0),
                                                              total["currency"])
        return call_result.TransactionEvent(id_token_info=answer.id_token_info)


#: The peers of a bench CSMS that prefers 2.0.1 and speaks 1.6J and 2.1 too: ``CentralSystem(peers=...)``.
ALL_VERSIONS: dict[str, v16_csms.PeerFactory] = {**BOTH_VERSIONS, SUBPROTOCOL: StationPeer21}
