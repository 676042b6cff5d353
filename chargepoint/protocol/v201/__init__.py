"""OCPP 2.0.1: the station core spoken in 2.0.1 (adapter, handlers, translation, device model).

Importing this package costs nothing; its modules load the ``ocpp`` library's
2.0.1 part, which takes a noticeable fraction of a second on a Raspberry Pi,
so the registry loads them only where 2.0.1 is offered.
"""

VERSION = "2.0.1"
SUBPROTOCOL = "ocpp2.0.1"
