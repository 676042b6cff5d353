"""OCPP 2.1: the station core spoken in 2.1, built on the 2.0.1 adapter (2.1 extends 2.0.1).

Everything 2.0.1 does is done with 2.0.1's handlers and translation, sent
and checked with the ``ocpp`` library's 2.1 modules and schemas; this
package adds what 2.1 adds and the station honours: tariffs and cost
(``tariffs.py``, cost details in ``tx_events.py``) and dynamic charging
limits (``dynamic.py``). Importing this package costs nothing; the registry
loads its modules only where 2.1 is offered.
"""

VERSION = "2.1"
SUBPROTOCOL = "ocpp2.1"
