"""The safety supervisor: the small real-time process that alone owns the charger's hardware.

``chargepoint supervise`` runs it (its own systemd unit and user). It runs the
IEC 61851 safety loops (``chargepoint.safety``) over the hardware of ``hal``,
and answers the daemon on one narrow channel (``wire.py``, ``server.py``); the
daemon asks, the supervisor decides. It imports nothing that speaks to the
network: no OCPP, no web server, no MQTT, no database (an import-linter
contract in pyproject.toml says so).
"""
