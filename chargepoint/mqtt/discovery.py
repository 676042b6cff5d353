"""Home Assistant MQTT discovery: the station as one device with its sensors (and, with commands on,
buttons, switches, numbers, the mode select and the plan).

Each entity is a retained config message under
``<discovery_prefix>/<component>/<node>/<object>/config`` that points at the
station's own state topics with a ``value_template``; Home Assistant shows the
entities under one device and marks them unavailable when the station's
availability topic says offline (its last will). Each names the entity id it
would like (``default_entity_id``, ``<domain>.<object id>``; Home Assistant
dropped the older ``object_id`` in 2026.4). An empty retained config removes
an entity: an entity the station cannot feed (commands off, no grid meter, no
tariff) is removed that way, so nothing lingers after the configuration
changed.

The operator's current limit is a switch and a number: the switch says
whether a limit is set (off clears it, on sets the connector's rating, which
the number then lowers), and the number shows "unknown", not 0 A, while no
limit is set (``payload_reset``), because 0 A is a limit: it pauses the car.
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


def _mapping(modes: list[str], to_station: bool) -> str:
    """A Jinja dict literal from the station's mode words to the labels (or back)."""
    pairs = [(MODE_LABELS.get(m, m), m) if to_station else (m, MODE_LABELS.get(m, m)) for m in modes]
    return "{" + ", ".join(f"'{a}': '{b}'" for a, b in pairs) + "}"


def _optional(key: str) -> str:
    """A value that may be null: Home Assistant's "None" payload makes the entity unknown."""
    return "{{ value_json." + key + " if value_json." + key + " is not none else 'None' }}"


#: What the plan's text entity accepts: empty or "clear" (no plan), or "12 kWh by 07:30".
PLAN_PATTERN = r"^$|^clear$|^[0-9]{1,3}([.][0-9]{1,3})? ?(kWh|kwh)? by [0-9]{1,2}:[0-9]{2}$"
#: The solar modes as the dashboard names them, in its order; Home Assistant's select shows these and
#: sends the station's own words (its command and value templates translate).
MODE_LABELS = {"off": "Off", "pv": "PV", "minpv": "Min+PV", "fast": "Fast"}
#: What Home Assistant allows in an entity id.
_ENTITY_ID = re.compile(r"[^a-z0-9_]")


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
        ("sensor", "limit_words", {"name": "Limit reason", "state_topic": state,
                                   "value_template": _value("limit_words")}),
        ("binary_sensor", "fault", {"name": "Fault", "state_topic": fault, "device_class": "problem",
                                    "value_template": "{{ 'ON' if value_json.active else 'OFF' }}"}),
    ]
    for phase in range(1, PHASES + 1):
        out.append(("sensor", f"current_l{phase}", {
            "name": f"Current L{phase}", "state_topic": meter,
            "value_template": _value(f"current_l{phase}_a"),
            "device_class": "current", "unit_of_measurement": "A", **measurement}))
    return out


def _commands(topics: Topics, n: int, rating_a: float) -> list[tuple[str, str, dict[str, Any]]]:
    """Connector ``n``'s command entities: what the station service can do from a topic."""
    state = topics.connector(n, "state")
    return [
        ("button", "start", {"name": "Start charging", "command_topic": topics.command(n, "start")}),
        ("button", "stop", {"name": "Stop charging", "command_topic": topics.command(n, "stop")}),
        ("switch", "operative", {"name": "Operative", "command_topic": topics.command(n, "availability"),
                                 "payload_on": "operative", "payload_off": "inoperative",
                                 "state_topic": state,
                                 "value_template":
                                     "{{ 'operative' if value_json.operative else 'inoperative' }}"}),
        ("switch", "limited", {"name": "Current limit on", "command_topic": topics.command(n, "limit"),
                               "payload_on": "on", "payload_off": "clear", "state_topic": state,
                               "value_template": "{{ 'on' if value_json.operator_limited else 'clear' }}",
                               "state_on": "on", "state_off": "clear"}),
        ("number", "operator_limit", {"name": "Current limit", "command_topic": topics.command(n, "limit"),
                                      "state_topic": state, "value_template": _optional("operator_limit_a"),
                                      "payload_reset": "None",
                                      "min": 0, "max": rating_a, "step": 1, "mode": "box",
                                      "device_class": "current", "unit_of_measurement": "A"}),
    ]


def _session_figures(topics: Topics, n: int, solar: bool,
                     currency: str | None) -> list[tuple[tuple[str, str, dict[str, Any]], bool]]:
    """The session's solar share (with a grid meter) and cost (with a tariff)."""
    session = topics.connector(n, "session")
    return [
        (("sensor", "session_solar_share", {
            "name": "Session solar share", "state_topic": session, "unit_of_measurement": "%",
            "value_template": _optional("solar_share_pct"), "state_class": "measurement",
            "icon": "mdi:solar-power"}), solar),
        (("sensor", "session_cost", {
            "name": "Session cost", "state_topic": session, "value_template": _optional("cost"),
            "device_class": "monetary", "unit_of_measurement": currency or "EUR"}), currency is not None),
    ]


def _plan(topics: Topics, n: int, grid: bool,
          commands: bool) -> list[tuple[tuple[str, str, dict[str, Any]], bool]]:
    """The departure plan: its state in words; with commands, set it ("12 kWh by 07:30") or clear it."""
    topic = topics.connector(n, "plan")
    return [
        (("sensor", "plan", {"name": "Departure plan", "state_topic": topic,
                             "value_template": _value("words"), "icon": "mdi:car-clock"}), grid),
        (("text", "plan_set", {"name": "Departure plan (kWh by HH:MM)",
                               "command_topic": topics.command(n, "plan"), "state_topic": topic,
                               "value_template": _value("text"), "max": 40,
                               "pattern": PLAN_PATTERN, "icon": "mdi:car-clock"}), grid and commands),
        (("button", "plan_clear", {"name": "Clear departure plan", "command_topic": topics.command(n, "plan"),
                                   "payload_press": "clear", "icon": "mdi:close"}), grid and commands),
    ]


def _station(topics: Topics, energy: dict[str, Any] | None, modes: tuple[str, ...],
             commands: bool) -> list[tuple[tuple[str, str, dict[str, Any]], bool]]:
    """The house's entities with a grid meter: the power flow and the charging mode."""
    grid = energy is not None
    shown = sorted(modes, key=lambda m: list(MODE_LABELS).index(m) if m in MODE_LABELS else len(MODE_LABELS))
    pv = grid and (energy or {}).get("power", {}).get("pv_w") is not None
    topic = topics.energy

    def power(object_id: str, name: str, key: str) -> tuple[str, str, dict[str, Any]]:
        return ("sensor", object_id, {"name": name, "state_topic": topic, "value_template": _optional(key),
                                      "device_class": "power", "unit_of_measurement": "W",
                                      "state_class": "measurement"})
    return [
        (power("grid_power", "Grid power", "grid_w"), grid),
        (power("surplus_power", "Surplus power", "surplus_w"), grid),
        (power("house_power", "House power (net of PV)", "house_net_w"), grid),
        (power("station_power", "Station power", "station_w"), grid),
        (power("pv_power", "PV power", "pv_w"), pv),
        (("sensor", "mode", {"name": "Charging mode", "state_topic": topic, "value_template": _value("mode"),
                             "icon": "mdi:solar-power-variant"}), grid and not commands),
        (("select", "mode_select", {"name": "Charging mode", "state_topic": topic,
                                    "options": [MODE_LABELS.get(m, m) for m in shown],
                                    "value_template": "{{ " + _mapping(shown, False) + "[value_json.mode] }}",
                                    "command_topic": topics.station_command("mode"),
                                    "command_template": "{{ " + _mapping(shown, True) + "[value] }}",
                                    "icon": "mdi:solar-power-variant"}), grid and commands),
    ]


def messages(device: Device, topics: Topics, prefix: str, connectors: list[int], commands: bool, *,
             energy: dict[str, Any] | None = None, modes: tuple[str, ...] = (),
             ratings: dict[int, float] | None = None, currency: str | None = None) -> list[tuple[str, str]]:
    """(topic, payload) of every discovery config; an empty payload removes an entity.

    ``energy``: the energy manager's status (None: no grid meter); ``modes``: the solar modes;
    ``ratings``: each connector's rating (A), the top of its limit number; ``currency``: the home
    tariff's (None: no tariff, no cost sensor).
    """
    out = []

    def announce(scope: str, name_suffix: str, component: str, object_id: str, config: dict[str, Any],
                 wanted: bool) -> None:
        unique = f"{device.node_id}_{scope}{object_id}"
        topic = f"{prefix}/{component}/{device.node_id}/{scope}{object_id}/config"
        if not wanted:
            out.append((topic, ""))
            return
        payload = {**config, "name": config["name"] + name_suffix, "unique_id": unique,
                   "default_entity_id": f"{component}.{_ENTITY_ID.sub('_', unique.lower())}",
                   "availability_topic": topics.availability,
                   "payload_available": "online", "payload_not_available": "offline",
                   "device": device.as_json()}
        out.append((topic, dumps(payload)))

    for (component, object_id, config), wanted in _station(topics, energy, modes, commands):
        announce("", "", component, object_id, config, wanted)
    for n in connectors:
        suffix = f" {n}" if len(connectors) > 1 else ""
        entities = [(e, True) for e in _sensors(topics, n)]
        entities += [(e, commands) for e in _commands(topics, n, (ratings or {}).get(n, 80.0))]
        entities += _session_figures(topics, n, energy is not None, currency)
        entities += _plan(topics, n, energy is not None, commands)
        for (component, object_id, config), wanted in entities:
            announce(f"{n}_", suffix, component, object_id, config, wanted)
    return out
