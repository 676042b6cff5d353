"""MQTT: the station's state, meter values, sessions and faults on a broker, Home Assistant discovery,
and (when configured) start/stop/availability commands on topics.

A local surface like the control socket: it sees the station only through the
station service API (``chargepoint.control.service``) and its views, and its
commands go through the same calls as the CLI's. It runs on the event loop and
never waits on the broker where the station could notice: publishing goes
through a coalescing outlet, so a broker that is slow or gone costs the
station nothing, and the latest state is sent again after a reconnect.
"""

from chargepoint.mqtt.bridge import MqttBridge

__all__ = ["MqttBridge"]
