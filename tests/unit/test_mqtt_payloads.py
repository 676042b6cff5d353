"""MQTT payloads, Home Assistant discovery, command parsing and the outlet, without a broker.

The connector dicts come from the control API's own ``connector_json`` over a
real ``ConnectorView``, so a change of that shape shows here.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from chargepoint.config import ConfigError, parse
from chargepoint.control.shapes import connector_json
from chargepoint.core.events import Activity, IdToken, StatusChanged, TokenType
from chargepoint.core.views import ConnectorView, SessionView, TransactionView
from chargepoint.mqtt import commands, discovery, payloads
from chargepoint.mqtt.outlet import Outlet
from chargepoint.mqtt.topics import Topics
from chargepoint.safety.evse import EvseStatus
from chargepoint.safety.iec61851 import CpState
from chargepoint.safety.limits import Resolved
from chargepoint.safety.status import EvseFault
from hal.interfaces import MeterReading

NOW = 1_750_000_000.0
TOPICS = Topics("chargepoint/CP-1")
DEVICE = discovery.Device("CP-1", "ACME", "Pi AC", "0.1.0", "SN-7")


def view(*, charging: bool = True, faults: frozenset[EvseFault] = frozenset(),
         phases: int = 3) -> ConnectorView:
    evse = EvseStatus(cp_state=CpState.C if charging else CpState.A, pwm_duty=26.7 if charging else 100.0,
                      offered_a=16.0 if charging else 0.0, contactor_closed=charging,
                      contactor_feedback=charging,
                      faults=faults, cable_max_a=32.0, binding_limit="operator", charging_allowed=charging,
                      timestamp=5.0)
    currents = (15.9, 15.8, 16.0)[:phases] + (None,) * (3 - phases)
    reading = MeterReading(timestamp=NOW - 1, energy_import_wh=12_345.6, power_w=11_000.0,
                           currents_a=currents, voltages_v=(230.0, 231.0, 229.0), frequency_hz=50.0)
    session = None
    if charging:
        tx = TransactionView("L-9", IdToken("CAFE", TokenType.ISO14443), NOW - 600, 10_000.0, False, 2_345.6)
        session = SessionView(tx.token, tx)
    status = StatusChanged(1, NOW, activity=Activity.CHARGING if charging else Activity.IDLE,
                           plugged=charging,
                           fault=next(iter(faults)).value if faults else None)
    return ConnectorView(1, 1, status, True, None, charging, evse, Resolved(16.0, "operator"),
                         {"operator": 16.0, "station": 32.0}, session, reading, True, 0, True)


def connector(**kwargs: object) -> dict:
    return connector_json(view(**kwargs), "Charging", lambda local_id: "42", NOW, False)  # type: ignore[arg-type]


def test_state_has_iec_state_currents_and_the_binding_limit():
    state = payloads.state(connector())
    assert state == {"connector": 1, "status": "Charging", "iec_state": "C", "activity": "charging",
                     "operative": True, "error": None, "pwm_duty": 26.7, "contactor_closed": True,
                     "offered_a": 16.0, "current_l1_a": 15.9, "current_l2_a": 15.8, "current_l3_a": 16.0,
                     "limit_a": 16.0, "limit_binding": "operator", "operator_limit_a": 16.0,
                     "operator_limited": True, "limit_words": None,
                     "cable_max_a": 32.0, "session_active": True}


def test_meter_in_w_wh_and_kwh_with_null_for_a_phase_not_measured():
    meter = payloads.meter(connector(phases=1))
    assert meter["power_w"] == 11_000.0 and meter["energy_wh"] == 12_345.6 and meter["energy_kwh"] == 12.3456
    assert (meter["current_l1_a"], meter["current_l2_a"], meter["current_l3_a"]) == (15.9, None, None)
    assert meter["voltage_l2_v"] == 231.0 and meter["frequency_hz"] == 50.0
    assert json.loads(payloads.dumps(meter))["current_l2_a"] is None


def test_session_running_and_finished():
    running = payloads.running_session(connector(), NOW)
    assert running is not None
    assert running["state"] == "running" and running["local_id"] == "L-9"
    assert running["energy_kwh"] == 2.3456 and running["duration_s"] == 600.0
    assert running["started_at"] == payloads.iso(NOW - 600) and running["started_at"].endswith("Z")
    assert payloads.running_session(connector(charging=False), NOW) is None
    row = {"local_id": "L-9", "started_at": NOW - 600, "stopped_at": NOW, "meter_start_wh": 10_000.0,
           "duration_s": 600.0, "energy_wh": 2_500.0, "reason": "local"}
    finished = payloads.finished_session(1, row)
    assert finished["state"] == "finished" and finished["energy_kwh"] == 2.5 and finished["reason"] == "local"
    assert set(finished) == set(running) == set(payloads.no_session(1))


def test_fault_payload():
    assert payloads.fault(connector())["active"] is False
    faulted = payloads.fault(connector(charging=False, faults=frozenset({EvseFault.RCD})))
    assert faulted["active"] is True and faulted["faults"] == ["rcd"]


def test_equal_states_give_equal_text():
    assert payloads.dumps({"b": 1, "a": 2}) == payloads.dumps({"a": 2, "b": 1}) == '{"a":2,"b":1}'


def _configs(commands_on: bool, connectors: list[int] | None = None) -> dict[str, dict | str]:
    out: dict[str, dict | str] = {}
    for topic, text in discovery.messages(DEVICE, TOPICS, "homeassistant", connectors or [1], commands_on):
        out[topic] = json.loads(text) if text else ""
    return out


def test_discovery_one_device_with_its_sensors():
    configs = _configs(False)
    energy = configs["homeassistant/sensor/chargepoint_CP-1/1_energy/config"]
    assert isinstance(energy, dict)
    assert energy["device_class"] == "energy" and energy["state_class"] == "total_increasing"
    assert energy["unit_of_measurement"] == "kWh"
    assert energy["state_topic"] == "chargepoint/CP-1/connector/1/meter"
    power = configs["homeassistant/sensor/chargepoint_CP-1/1_power/config"]
    assert isinstance(power, dict) and power["unit_of_measurement"] == "W"
    assert power["device_class"] == "power"
    entities = [c for c in configs.values() if c]
    assert {e["device"]["identifiers"][0] for e in entities} == {"chargepoint_CP-1"}  # type: ignore[index]
    assert entities[0]["device"] == {"identifiers": ["chargepoint_CP-1"], "name": "CP-1",  # type: ignore[index]
                                     "manufacturer": "ACME", "model": "Pi AC", "sw_version": "0.1.0",
                                     "serial_number": "SN-7"}
    assert len({e["unique_id"] for e in entities}) == len(entities)  # type: ignore[index]
    for e in entities:
        assert e["availability_topic"] == "chargepoint/CP-1/availability"  # type: ignore[index]
    names = {e["name"] for e in entities}  # type: ignore[index]
    assert {"Current L1", "Current L2", "Current L3", "Status", "IEC 61851 state", "Binding limit"} <= names


def test_discovery_command_entities_only_when_commands_are_on():
    off, on = _configs(False), _configs(True)
    assert off.keys() == on.keys()
    button = "homeassistant/button/chargepoint_CP-1/1_start/config"
    switch = "homeassistant/switch/chargepoint_CP-1/1_operative/config"
    assert off[button] == "" and off[switch] == ""  # removed, should they exist from before
    assert on[button]["command_topic"] == "chargepoint/CP-1/connector/1/cmd/start"  # type: ignore[index]
    assert on[switch]["payload_on"] == "operative"  # type: ignore[index]
    number = "homeassistant/number/chargepoint_CP-1/1_operator_limit/config"
    assert off[number] == ""
    assert on[number]["command_topic"] == "chargepoint/CP-1/connector/1/cmd/limit"  # type: ignore[index]
    # No limit is "unknown" in Home Assistant (its payload_reset), never 0 A: 0 A is a limit that pauses.
    template = on[number]["value_template"]  # type: ignore[index]
    assert on[number]["payload_reset"] == "None"  # type: ignore[index]
    assert "'None'" in template and "or 0" not in template


def test_discovery_names_connectors_when_there_are_several():
    configs = _configs(False, [1, 2])
    assert configs["homeassistant/sensor/chargepoint_CP-1/2_power/config"]["name"] == "Power 2"  # type: ignore[index]


def test_device_node_id_keeps_to_the_allowed_characters():
    assert discovery.Device("CP.1:x", "v", "m", "1").node_id == "chargepoint_CP_1_x"


def test_command_topics():
    assert TOPICS.parse_command("chargepoint/CP-1/connector/1/cmd/start") == ("1", "start")
    assert TOPICS.parse_command("chargepoint/CP-1/connector/1/state") is None
    assert TOPICS.parse_command("other/connector/1/cmd/start") is None


@pytest.mark.parametrize("payload", [b"", b"PRESS", b"{}", b' {"id_tag": "CAFE"} '])
def test_start_payloads_accepted(payload):
    assert commands._start_args(commands._text(payload)) in (None, "CAFE")


@pytest.mark.parametrize(("payload", "reason"), [
    (b"{", "JSON object"), (b"[1]", "JSON object"), (b'{"id_tag": 5}', "string"),
    (b'{"limit": 5}', "unknown field"), (b"\xff\xfe", "UTF-8"), (b"x" * 2000, "at most"),
])
def test_bad_start_payloads_refused(payload, reason):
    with pytest.raises(commands.Refused, match=reason):
        commands._start_args(commands._text(payload))


def test_availability_payloads():
    assert commands._operative("operative") is True and commands._operative("INOPERATIVE") is False
    with pytest.raises(commands.Refused):
        commands._operative("on")


async def test_outlet_coalesces_state_and_bounds_events():
    outlet = Outlet(events_max=2)
    assert outlet.retain("s", "1") and outlet.retain("s", "2") and not outlet.retain("s", "2")
    for n in range(3):
        outlet.send("e", str(n))
    assert outlet.dropped_events == 1 and outlet.pending() == 3
    sent = [outlet.take() for _ in range(3)]
    assert [(m.topic, m.payload, m.retain) for m in sent if m] == [("e", "1", False), ("e", "2", False),
                                                                  ("s", "2", True)]
    assert outlet.take() is None and not outlet.wake.is_set()
    outlet.put_back(sent[2])  # type: ignore[arg-type]
    assert outlet.take() == sent[2]
    outlet.resend_all()
    assert outlet.wake.is_set() and outlet.take() == sent[2]
    await asyncio.sleep(0)


MINIMAL = {"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://127.0.0.1:9000"}}


def test_mqtt_config_defaults_and_password_hidden():
    cfg = parse(MINIMAL).mqtt
    assert not cfg.enabled and not cfg.commands and cfg.discovery and cfg.discovery_prefix == "homeassistant"
    assert cfg.port == 1883 and cfg.topic_prefix == ""
    secret = parse({**MINIMAL, "mqtt": {"username": "u", "password": "hunter2"}}).mqtt
    assert secret.password == "hunter2" and "hunter2" not in repr(secret)


@pytest.mark.parametrize(("mqtt", "key", "reason"), [
    ({"topic_prefix": "a/+/b"}, "mqtt.topic_prefix", "wildcards"),
    ({"topic_prefix": "/a"}, "mqtt.topic_prefix", "begin or end"),
    ({"password": "x"}, "mqtt.username", "required"),
    ({"tls": True, "ca_file": "/nonexistent/ca.pem"}, "mqtt.ca_file", "file not found"),
    ({"port": 0}, "mqtt.port", "at least"),
    ({"enabled": "yes"}, "mqtt.enabled", "true or false"),
    ({"qos": 1}, "mqtt.qos", "unknown key"),
])
def test_mqtt_config_errors_name_the_key(mqtt, key, reason):
    with pytest.raises(ConfigError) as caught:
        parse({**MINIMAL, "mqtt": mqtt}, "station.toml")
    assert caught.value.key == key and reason in caught.value.reason


def test_identity_with_a_wildcard_needs_a_prefix():
    with pytest.raises(ConfigError, match="topic_prefix"):
        parse({**MINIMAL, "station": {"identity": "CP+1"}})
    assert parse({**MINIMAL, "station": {"identity": "CP+1"}, "mqtt": {"topic_prefix": "ev/cp1"}}).mqtt


def test_shipped_example_shows_the_mqtt_defaults():
    from pathlib import Path

    from chargepoint.config import load

    example = load(Path(__file__).parents[2] / "examples" / "chargepoint.toml")
    assert example.mqtt == parse(MINIMAL).mqtt
