"""The bench CSMS's side of a station that speaks OCPP 2.1.

2.1 extends 2.0.1: the bench's 2.0.1 peer (``protocol.bench_csms.v201``) with the
``ocpp`` library's 2.1 messages and schemas (the session's cost a station
reports in its Ended TransactionEvent shows in the frames printed).
``ALL_VERSIONS`` makes a CentralSystem that speaks 2.0.1 (preferred), 1.6J
and 2.1: a station offering 2.1 only is spoken to in 2.1.
"""

from __future__ import annotations

from ocpp.v21 import call, call_result

from chargepoint.protocol.bench_csms import v16 as v16_csms
from chargepoint.protocol.bench_csms.v201 import BOTH_VERSIONS, StationPeer201
from chargepoint.protocol.v21 import SUBPROTOCOL, VERSION


class StationPeer21(StationPeer201):
    """The CSMS side of one connected 2.1 station."""

    _call = call
    _call_result = call_result
    _ocpp_version = VERSION


#: The peers of a bench CSMS that prefers 2.0.1 and speaks 1.6J and 2.1 too: ``CentralSystem(peers=...)``.
ALL_VERSIONS: dict[str, v16_csms.PeerFactory] = {**BOTH_VERSIONS, SUBPROTOCOL: StationPeer21}
