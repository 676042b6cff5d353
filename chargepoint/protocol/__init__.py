"""OCPP adapters: translate station events to OCPP messages and back.

Only this package imports the ``ocpp`` library. Adapters hold no station logic:
they decide how a fact is spelled on the wire, never what the station does.
"""
