"""The 2.1 handlers: every 2.0.1 handler, checked and answered in 2.1's schemas, and 2.1's own blocks.

``V21Peer`` is the 2.0.1 peer (``protocol.v201.peer.V201Peer``, its Core
handlers and its error mapping) with the ``ocpp`` library's 2.1 modules: CALLs
from the CSMS are checked against the 2.1 schemas and actions, answers and the
station's own CALLs are validated as 2.1 by the library. The 2.1 adapter adds
its blocks to 2.0.1's: the tariff block (``tariffs.TariffHandlers``), smart
charging with dynamic limits (``dynamic.DynamicHandlers``, in place of
2.0.1's) and GetTransactionStatus (``transaction_status``). An action 2.1 defines that no handler takes is
answered NotSupported, as in 2.0.1; README.md says which and why (bidirectional
power and DER control, battery swap, priority charging, periodic event
streams, settlement and web payment, allowed energy transfer).
"""

from __future__ import annotations

from ocpp.v21 import call, call_result
from ocpp.v21.enums import Action

from chargepoint.protocol.v21 import VERSION
from chargepoint.protocol.v201.peer import V201Peer


class V21Peer(V201Peer):
    """The station's 2.1 peer (see the module doc)."""

    # The library's 2.1 messages and schemas (its ChargePoint for 2.1 sets the same three).
    _call = call
    _call_result = call_result
    _ocpp_version = VERSION
    # The robust peer's: results of the station's own CALLs, the schemas and actions CALLs are checked by.
    call_results = call_result
    ocpp_version = VERSION
    actions = Action
