"""MQTT for a home station, without a broker: the energy and plan payloads, the session's solar share
and cost, Home Assistant's entities for them (``default_entity_id``, the mode select, the limit switch
and number), and the plan and limit payloads of commands. The broker's side is
``tests/integration/test_mqtt.py``.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from chargepoint.mqtt import commands, discovery, payloads
from chargepoint.mqtt.topics import Topics

TOPICS = Topics("chargepoint/CP-1")
DEVICE = discovery.Device("CP-1", "ACME", "Pi AC", "0.1.0")
ENERGY = {"mode": "pv", "surplus_w": 6100, "grid_meter": {"state": "ok"},
          "power": {"grid_w": -2100, "station_w": 4000, "surplus_w": 6100, "house_net_w": -6100,
                    "pv_w": None},
          "connectors": [{"id": 1, "plan": None}]}


def configs(commands_on: bool, **kwargs: object) -> dict[str, dict | str]:
    return {topic: json.loads(text) if text else "" for topic, text in discovery.messages(
        DEVICE, TOPICS, "homeassistant", [1], commands_on, **kwargs)}  # type: ignore[arg-type]


def entity(found: dict[str, dict | str], component: str, object_id: str) -> dict | str:
    return found[f"homeassistant/{component}/chargepoint_CP-1/{object_id}/config"]


def test_every_entity_names_its_default_entity_id_and_none_the_old_object_id():
    found = configs(True, energy=ENERGY, modes=("pv", "minpv", "fast"), currency="EUR")
    announced = [c for c in found.values() if c]
    assert announced and all("object_id" not in c for c in announced)  # type: ignore[operator]
    for topic, config in found.items():
        if config:
            component = topic.split("/")[1]
            slug = config["unique_id"].lower().replace("-", "_")  # type: ignore[index]
            assert config["default_entity_id"] == f"{component}.{slug}"  # type: ignore[index]
    grid = entity(found, "sensor", "grid_power")
    assert grid["default_entity_id"] == "sensor.chargepoint_cp_1_grid_power"  # type: ignore[index]


def test_a_grid_meter_brings_power_sensors_and_the_mode_select():
    found = configs(True, energy=ENERGY, modes=("fast", "pv", "minpv"))
    for object_id, key in (("grid_power", "grid_w"), ("surplus_power", "surplus_w"),
                           ("house_power", "house_net_w"), ("station_power", "station_w")):
        sensor = entity(found, "sensor", object_id)
        assert sensor["state_topic"] == "chargepoint/CP-1/energy" and key in sensor["value_template"]  # type: ignore[index]
        assert (sensor["device_class"], sensor["unit_of_measurement"]) == ("power", "W")  # type: ignore[index]
    assert entity(found, "sensor", "pv_power") == ""  # no PV reading: no PV sensor
    select = entity(found, "select", "mode_select")
    assert select["options"] == ["PV", "Min+PV", "Fast"]  # type: ignore[index]  # as the dashboard says them
    # Home Assistant renders these templates: the station's words in, the labels shown, the words sent back.
    assert select["value_template"] == \
        "{{ {'pv': 'PV', 'minpv': 'Min+PV', 'fast': 'Fast'}[value_json.mode] }}"  # type: ignore[index]
    assert select["command_template"] == \
        "{{ {'PV': 'pv', 'Min+PV': 'minpv', 'Fast': 'fast'}[value] }}"  # type: ignore[index]
    assert select["command_topic"] == "chargepoint/CP-1/station/cmd/mode"  # type: ignore[index]
    assert entity(found, "sensor", "mode") == ""  # the select shows the mode
    assert entity(found, "sensor", "1_session_solar_share")["unit_of_measurement"] == "%"  # type: ignore[index]
    assert entity(found, "sensor", "1_session_cost") == ""  # no tariff: no cost
    plan = entity(found, "text", "1_plan_set")
    assert plan["command_topic"] == "chargepoint/CP-1/connector/1/cmd/plan"  # type: ignore[index]
    # Commands off: the mode is a sensor, nothing takes commands.
    off = configs(False, energy=ENERGY, modes=("pv", "minpv", "fast"), currency="EUR")
    assert entity(off, "select", "mode_select") == "" and entity(off, "text", "1_plan_set") == ""
    assert entity(off, "sensor", "mode")["value_template"] == "{{ value_json.mode }}"  # type: ignore[index]
    assert entity(off, "sensor", "1_session_cost")["device_class"] == "monetary"  # type: ignore[index]
    # PV read: its sensor too.
    with_pv = configs(False, energy={**ENERGY, "power": {**ENERGY["power"], "pv_w": 7000}})
    assert entity(with_pv, "sensor", "pv_power")["value_template"].count("pv_w") == 2  # type: ignore[index,union-attr]


def test_without_a_grid_meter_the_house_entities_are_removed():
    found = configs(True)
    for component, object_id in (("sensor", "grid_power"), ("select", "mode_select"), ("sensor", "1_plan"),
                                 ("sensor", "1_session_solar_share"), ("text", "1_plan_set")):
        assert entity(found, component, object_id) == ""


def test_the_limit_is_a_switch_and_a_number_whose_no_limit_is_unknown():
    found = configs(True, ratings={1: 32.0})
    switch = entity(found, "switch", "1_limited")
    assert (switch["payload_on"], switch["payload_off"]) == ("on", "clear")  # type: ignore[index]
    number = entity(found, "number", "1_operator_limit")
    assert number["max"] == 32.0 and number["payload_reset"] == "None"  # type: ignore[index]
    # Home Assistant renders the number's template: no limit gives its reset payload, a limit its value.
    assert "value_json.operator_limit_a is not none" in number["value_template"]  # type: ignore[index]


def test_energy_plan_and_session_figures_payloads():
    assert payloads.energy(ENERGY) == {"mode": "pv", "grid_w": -2100, "station_w": 4000, "surplus_w": 6100,
                                       "house_net_w": -6100, "pv_w": None, "grid_meter": "ok"}
    assert payloads.plan(1, None)["active"] is False and payloads.plan(1, None)["text"] == ""
    deadline = datetime(2027, 3, 1, 7, 30).timestamp()
    shown = payloads.plan(1, {"energy_wh": 12000.0, "deadline": deadline, "state": "solar",
                              "charged_wh": 3100.0, "words": "12.0 kWh by 07:30: solar first"})
    assert shown["active"] is True and shown["text"] == "12 kWh by 07:30" and shown["charged_kwh"] == 3.1
    running = {"solar_wh": 750.0, "solar_share": 0.25, "cost": {"incl_tax": "0.96", "currency": "EUR"}}
    assert payloads.figures(running) == {"solar_wh": 750.0, "solar_share_pct": 25.0, "cost": 0.96,
                                         "currency": "EUR"}
    assert payloads.figures({}) == {"solar_wh": None, "solar_share_pct": None, "cost": None, "currency": None}


def test_plan_payloads():
    now = datetime(2027, 3, 1, 22, 0).timestamp()
    assert commands._plan("clear", now) == {"clear": True} and commands._plan("", now) == {"clear": True}
    args = commands._plan("12 kWh by 07:30", now)
    assert args["energy_kwh"] == 12.0 and args["deadline"] == datetime(2027, 3, 2, 7, 30).timestamp()
    assert commands._plan("7.5 by 23:15", now)["deadline"] == datetime(2027, 3, 1, 23, 15).timestamp()
    for bad in ("12", "twelve by 07:30", "12 kWh by 25:00", "12 kWh by 7.30", "-3 by 07:30"):
        with pytest.raises(commands.Refused):
            commands._plan(bad, now)


def test_the_limit_switch_on_sets_the_rating_and_off_clears():
    assert commands._amps("on", lambda: 32.0) == 32.0
    assert commands._amps("clear", lambda: 32.0) is None
    assert commands._amps("0", lambda: 32.0) == 0.0  # said on purpose: 0 A pauses
