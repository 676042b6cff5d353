"""Home Assistant MQTT discovery: the station as one device with its sensors (and, with commands on,
buttons and a switch).

Each entity is a retained config message under
``<discovery_prefix>/<component>/<node>/<object>/config`` that points at the
station's own state topics with a ``value_template``; Home Assistant shows the
entities under one device and marks them unavailable when the station's
availability topic says offline (its last will). An empty retained config
removes an entity: command entities are removed that way when commands are
off, so a switch does not linger after commands were turned off.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from chargepoint.mqtt.payloads import PHASES, dumps
from chargepoint.mqtt.topics import Topics


@dataclass(frozen=True)
class Device:
    identity: str
    manufacturer: str
    model: str
    sw_version: str
    serial_number: str = ""

    @property
    def node_id(self) -> str:
        """The identity in the characters Home Assistant allows in a discovery topic."""
        return "chargepoint_" + re.sub(r"[^a-zA-Z0-9_-]", "_", self.identity)

    def as_json(self) -> dict[str, Any]:
        device = {"identifiers": [self.node_id], "name": self.identity, "manufacturer": self.manufacturer,
                  "model": self.model, "sw_version": self.sw_version}
        if self.serial_number:
            device["serial_number"] = self.serial_number
        return device


def _value(key: str) -> str:
    return "{{ value_json." + key + " }}"


def _sensors(topics: Topics, n: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(component, object id, config) of connector ``n``'s read-only entities."""
    state, meter = topics.connector(n, "state"), topics.connector(n, "meter")
    session, fault = topics.connector(n, "session"), topics.connector(n, "fault")
    measurement = {"state_class": "measurement"}
    out: list[tuple[str, str, dict[str, Any]]] = [
        ("sensor", "power", {"name": "Power", "state_topic": meter, "value_template": _value("power_w"),
                             "device_class": "power", "unit_of_measurement": "W", **measurement}),
        ("sensor", "energy", {"name": "Energy", "state_topic": meter, "value_template": _value("energy_kwh"),
                              "device_class": "energy", "unit_of_measurement": "kWh",
                              "state_class": "total_increasing"}),
        ("sensor", "session_energy", {"name": "Session energy", "state_topic": session,
                                      "value_template": _value("energy_kwh"), "device_class": "energy",
                                      "unit_of_measurement": "kWh", "state_class": "total_increasing"}),
        ("sensor", "status", {"name": "Status", "state_topic": state, "value_template": _value("status")}),
        ("sensor", "iec_state", {"name": "IEC 61851 state", "state_topic": state,
                                 "value_template": _value("iec_state")}),
        ("sensor", "activity", {"name": "Activity", "state_topic": state,
                                "value_template": _value("activity")}),
        ("sensor", "offered_current", {"name": "Offered current", "state_topic": state,
                                       "value_template": _value("offered_a"), "device_class": "current",
                                       "unit_of_measurement": "A", **measurement}),
        ("sensor", "limit", {"name": "Current limit", "state_topic": state,
                             "value_template": _value("limit_a"),
                             "device_class": "current", "unit_of_measurement": "A", **measurement}),
        ("sensor", "limit_binding", {"name": "Binding limit", "state_topic": state,
                                     "value_template": _value("limit_binding")}),
        ("binary_sensor", "fault", {"name": "Fault", "state_topic": fault, "device_class": "problem",
                                    "value_template": "{{ 'ON' if value_json.active else 'OFF' }}"}),
    ]
    for phase in range(1, PHASES + 1):
        out.append(("sensor", f"current_l{phase}", {
            "name": f"Current L{phase}", "state_topic": meter,
            "value_template": _value(f"current_l{phase}_a"),
            "device_class": "current", "unit_of_measurement": "A", **measurement}))
    return out


def _commands(topics: Topics, n: int) -> list[tuple[str, str, dict[str, Any]]]:
    """Connector ``n``'s command entities: what the station service can do from a topic."""
    return [
        ("button", "start", {"name": "Start charging", "command_topic": topics.command(n, "start")}),
        ("button", "stop", {"name": "Stop charging", "command_topic": topics.command(n, "stop")}),
        ("switch", "operative", {"name": "Operative", "command_topic": topics.command(n, "availability"),
                                 "payload_on": "operative", "payload_off": "inoperative",
                                 "state_topic": topics.connector(n, "state"),
                                 "value_template":
                                     "{{ 'operative' if value_json.operative else 'inoperative' }}"}),
        ("number", "operator_limit", {"name": "Current limit", "command_topic": topics.command(n, "limit"),
                                      "state_topic": topics.connector(n, "state"),
                                      "value_template": "{{ value_json.operator_limit_a or 0 }}",
                                      "min": 0, "max": 80, "step": 1, "mode": "box",
                                      "device_class": "current", "unit_of_measurement": "A"}),
    ]


def messages(device: Device, topics: Topics, prefix: str, connectors: list[int],
             commands: bool) -> list[tuple[str, str]]:
    """(topic, payload) of every discovery config; an empty payload removes an entity."""
    out = []
    for n in connectors:
        suffix = f" {n}" if len(connectors) > 1 else ""
        entities = [(e, True) for e in _sensors(topics, n)] + [(e, commands) for e in _commands(topics, n)]
        for (component, object_id, config), wanted in entities:
            unique = f"{device.node_id}_{n}_{object_id}"
            topic = f"{prefix}/{component}/{device.node_id}/{n}_{object_id}/config"
            if not wanted:
                out.append((topic, ""))
                continue
            payload = {**config, "name": config["name"] + suffix, "unique_id": unique,
                       "object_id": unique, "availability_topic": topics.availability,
                       "payload_available": "online", "payload_not_available": "offline",
                       "device": device.as_json()}
            out.append((topic, dumps(payload)))
    return out
