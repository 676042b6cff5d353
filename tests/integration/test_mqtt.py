"""MQTT against a real mosquitto broker: Home Assistant discovery, state while the simulated EV charges,
a broker killed and started again, broker credentials, and commands off and on.

The station is the in-process daemon on the sim hal (10x time) with a loopback
CSMS; the broker is mosquitto on a free loopback port with its own temporary
configuration (tests/mqtt_broker.py); the test reads the broker with its own
MQTT client, as Home Assistant would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from tests.integration.conftest import charging, running, station_config, until
from tests.integration.loopback_csms import LoopbackCsms
from tests.mqtt_broker import Mosquitto

PREFIX = "chargepoint/CP-TEST-1"
PASSWORD = "broker-pass-7781"


class Listener:
    """A client subscribed to ``topics``: the last payload per topic, and every message in order."""

    def __init__(self, port: int, topics: tuple[str, ...], **login: Any) -> None:
        self.port, self.topics, self.login = port, topics, login
        self.last: dict[str, str] = {}
        self.messages: list[tuple[str, str, bool]] = []
        self.ready = asyncio.Event()

    async def run(self) -> None:
        async with aiomqtt.Client("127.0.0.1", self.port, identifier="test-listener", **self.login) as client:
            for topic in self.topics:
                await client.subscribe(topic, qos=1)
            self.ready.set()
            async for m in client.messages:
                text = m.payload.decode() if isinstance(m.payload, bytes) else str(m.payload)
                self.last[str(m.topic)] = text
                self.messages.append((str(m.topic), text, m.retain))

    def json(self, topic: str) -> dict[str, Any] | None:
        text = self.last.get(topic)
        return json.loads(text) if text else None

    def events(self, name: str) -> list[dict[str, Any]]:
        events = [json.loads(p) for t, p, _ in self.messages if t.endswith("/event")]
        return [e for e in events if e["event"] == name]

    def connector(self, leaf: str) -> dict[str, Any]:
        """Connector 1's ``leaf`` topic as last published ({} before it was)."""
        return self.json(f"{PREFIX}/connector/1/{leaf}") or {}

    def results(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p, _ in self.messages if t == f"{PREFIX}/cmd/result"]

    async def until(self, condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
        return await until(condition, timeout, what)


@contextlib.asynccontextmanager
async def listening(port: int, *topics: str, **login: Any) -> AsyncIterator[Listener]:
    listener = Listener(port, topics or (f"{PREFIX}/#", "homeassistant/#"), **login)
    task = asyncio.ensure_future(listener.run())
    try:
        await asyncio.wait_for(asyncio.shield(listener.ready.wait()), 10)
        yield listener
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    server = Mosquitto(tmp_path / "broker").start()
    yield server
    server.close()


def mqtt_config(csms: LoopbackCsms, tmp_path: Path, port: int, **mqtt: Any) -> dict[str, Any]:
    settings = {"enabled": True, "host": "127.0.0.1", "port": port, "interval_s": 1.0,
                "reconnect_min_s": 0.1, "reconnect_max_s": 0.5, **mqtt}
    return station_config(csms.url, str(tmp_path / "state"), mqtt=settings)


async def test_discovery_and_state_while_the_ev_charges(csms, broker, tmp_path):
    async with listening(broker.port) as ha:
        async with running(mqtt_config(csms, tmp_path, broker.port)) as daemon:
            await ha.until(lambda: ha.last.get(f"{PREFIX}/availability") == "online", "online")
            # Discovery: valid JSON, one device, its sensors on the station's topics.
            configs = {t: json.loads(p) for t, p in ha.last.items() if t.startswith("homeassistant/") and p}
            assert len(configs) >= 13
            energy = configs["homeassistant/sensor/chargepoint_CP-TEST-1/1_energy/config"]
            assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == \
                ("energy", "total_increasing", "kWh")
            for config in configs.values():
                assert config["device"]["identifiers"] == ["chargepoint_CP-TEST-1"]
                assert {"name", "manufacturer", "model", "sw_version"} <= set(config["device"])
                assert config["availability_topic"] == f"{PREFIX}/availability"
                assert config["state_topic"].startswith(PREFIX + "/connector/1/")
            # Commands are off: the command entities are removed, the station subscribes to nothing.
            assert ha.last["homeassistant/button/chargepoint_CP-TEST-1/1_start/config"] == ""
            assert f"test-listener 1 {PREFIX}/#" in broker.log_text()  # the broker logs subscriptions
            assert "cmd" not in broker.log_text()
            idle = await ha.until(lambda: ha.json(f"{PREFIX}/connector/1/state"), "state")
            assert idle["iec_state"] == "A" and idle["session_active"] is False and idle["limit_binding"]
            station = await ha.until(lambda: ha.json(f"{PREFIX}/station"), "the station topic")
            assert station["identity"] == "CP-TEST-1" and station["connectors"] == 1

            world = await charging(csms, daemon)
            state = await ha.until(lambda: (s := ha.connector("state")).get("iec_state") == "C"
                                   and s["current_l1_a"] and s, "state C with current")
            assert state["offered_a"] > 0 and state["session_active"] is True
            assert state["activity"] == "charging"
            assert state["status"] == daemon.service.connector_status(1)["ocpp_status"]
            meter = await ha.until(lambda: (m := ha.connector("meter")).get("power_w") and m, "power")
            first_energy = meter["energy_kwh"]
            await ha.until(lambda: ha.connector("meter")["energy_kwh"] > first_energy,
                           "the energy counting up")
            (started,) = await ha.until(lambda: ha.events("session_started"), "session_started")
            session = await ha.until(lambda: (r := ha.connector("session")).get("state") == "running" and r,
                                     "the session topic showing the running session")
            assert session["local_id"] == started["local_id"]

            world.unplug()
            (stopped,) = await ha.until(lambda: ha.events("session_stopped"), "session_stopped")
            assert stopped["local_id"] == started["local_id"] and stopped["energy_wh"] > 0
            assert stopped["reason"] == "ev_disconnected"
            finished = await ha.until(lambda: (f := ha.connector("session")).get("state") == "finished" and f,
                                      "the session topic showing the finished session")
            assert finished["energy_wh"] == stopped["energy_wh"]
        # The daemon said goodbye on the way out.
        await ha.until(lambda: ha.last[f"{PREFIX}/availability"] == "offline", "offline")


async def test_broker_killed_and_restarted_the_station_charges_on_and_republishes(
        csms, broker, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="chargepoint")
    async with running(mqtt_config(csms, tmp_path, broker.port)) as daemon:
        bridge = daemon.mqtt
        await until(bridge.connected.is_set, 10, "connected")
        await charging(csms, daemon)
        broker.kill()
        await until(lambda: not bridge.connected.is_set(), 10, "the loss noticed")
        # The station charges on: energy keeps counting with the broker gone.
        energy = daemon.service.connector_status(1)["meter"]["energy_wh"]
        await until(lambda: daemon.service.connector_status(1)["meter"]["energy_wh"] > energy, 10, "energy")
        assert daemon.service.connector_status(1)["activity"] == "charging"
        broker.start()  # same port, nothing retained: whatever a client finds now was published again
        await until(lambda: bridge.connections == 2, 15, "reconnected")
        async with listening(broker.port) as ha:
            state = await ha.until(lambda: ha.json(f"{PREFIX}/connector/1/state"), "state republished")
            assert state["iec_state"] == "C" and state["session_active"] is True
            await ha.until(lambda: ha.last.get(f"{PREFIX}/availability") == "online", "online again")
            power = ha.json("homeassistant/sensor/chargepoint_CP-TEST-1/1_power/config")
            assert power is not None and power["device_class"] == "power"
            session = await ha.until(lambda: ha.json(f"{PREFIX}/connector/1/session"), "session republished")
            assert session["state"] == "running"
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("chargepoint.mqtt")]
    assert any("connection to 127.0.0.1" in line and "lost" in line for line in lines)
    assert any("connected to 127.0.0.1" in line and "again" in line for line in lines)
    assert not any(r.exc_info for r in caplog.records if r.name.startswith("chargepoint.mqtt"))


async def test_credentials_and_commands(csms, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    broker = Mosquitto(tmp_path / "broker", users={"station": PASSWORD, "ha": "ha-pass"}).start()
    try:
        wrong = mqtt_config(csms, tmp_path, broker.port, username="station", password="wrong-one")
        async with running(wrong) as daemon:
            await until(lambda: any("cannot connect" in r.getMessage() for r in caplog.records), 10,
                        "the broker's refusal")
            assert not daemon.mqtt.connected.is_set()
        # A command left retained on the broker would run at every reconnect: it is refused.
        async with aiomqtt.Client("127.0.0.1", broker.port, username="ha", password="ha-pass") as client:
            await client.publish(f"{PREFIX}/connector/1/cmd/availability", "inoperative", qos=1, retain=True)
        config = mqtt_config(csms, tmp_path, broker.port, username="station", password=PASSWORD,
                             commands=True)
        ha_login = {"username": "ha", "password": "ha-pass"}
        async with listening(broker.port, f"{PREFIX}/#", "homeassistant/#", **ha_login) as ha, \
                running(config) as daemon:
            await until(daemon.mqtt.connected.is_set, 10, "connected with the right password")
            await ha.until(ha.results, "the retained command's refusal")
            button = await ha.until(
                lambda: ha.json("homeassistant/button/chargepoint_CP-TEST-1/1_start/config"), "start button")
            assert button["command_topic"] == f"{PREFIX}/connector/1/cmd/start"
            await csms.wait_for("StatusNotification", connector_id=1)
            async with aiomqtt.Client("127.0.0.1", broker.port, username="ha", password="ha-pass") as client:
                async def command(name: str, payload: str) -> dict[str, Any]:
                    count = len(ha.results())
                    await client.publish(f"{PREFIX}/connector/1/cmd/{name}", payload, qos=1)
                    found = await ha.until(lambda: [r for r in ha.results()[count:] if r["command"] == name],
                                           f"the result of {name}")
                    return found[0]

                bad = await command("start", "{not json")
                assert bad["ok"] is False and "JSON object" in bad["error"]
                assert (await command("limt", "10"))["ok"] is False  # no such command
                assert "current in amperes" in (await command("limit", "ten"))["error"]
                assert (await command("limit", "99"))["ok"] is False  # above what the pilot can offer
                limited = await command("limit", "10")
                claims = daemon.service.connector_status(1)["limit"]["claims"]
                assert limited["ok"] is True and claims["operator"] == 10
                await ha.until(lambda: ha.connector("state").get("operator_limit_a") == 10, "limit in state")
                assert (await command("limit", "clear"))["ok"] is True
                assert "operator" not in daemon.service.connector_status(1)["limit"]["claims"]
                assert ha.results()[0]["ok"] is False and "retained" in ha.results()[0]["error"]
                # An empty retained message clears the retained one.
                await client.publish(f"{PREFIX}/connector/1/cmd/availability", "", qos=1, retain=True)
                assert daemon.service.connector_status(1)["operative"] is True

                started = await command("start", '{"id_tag": "MQTT0001"}')
                assert started["ok"] is True and started["result"]["status"] == "Accepted"
                daemon.hardware.worlds[1].plug_in()
                await csms.wait_for("StatusNotification", connector_id=1, status="Charging")
                assert (await ha.until(lambda: ha.events("session_started"), "started"))[0]["local_id"]
                stopped = await command("stop", "PRESS")
                assert stopped["ok"] is True and stopped["result"]["stopped"] == "transaction"
                await ha.until(lambda: ha.events("session_stopped"), "session_stopped")
                off = await command("availability", "inoperative")
                assert off["ok"] is True
                await ha.until(lambda: ha.connector("state").get("operative") is False, "inoperative")
                refused_start = await command("start", "")
                assert refused_start["ok"] is False and "inoperative" in refused_start["error"]
        text = "\n".join(r.getMessage() for r in caplog.records) + broker.log_text()
        assert PASSWORD not in text and "wrong-one" not in text
        assert "commands" not in daemon.service.file_settings()["mqtt.password"]
        assert daemon.service.file_settings()["mqtt.password"] == "(set)"
        refusals = [r for r in caplog.records if "MQTT command on" in r.getMessage()]
        assert refusals and all(r.levelno == logging.WARNING and not r.exc_info for r in refusals)
    finally:
        broker.close()


HOUSE = {"load": {"enabled": True, "main_fuse_a": 25, "meter": {"kind": "sim", "poll_interval_s": 0.5}},
         "house": {"pv_peak_w": 9000, "cloudiness": 0, "day_start_h": 11},
         "home": {"price_per_kwh": 0.30, "currency": "EUR"}}


async def test_home_station_entities_mode_limit_switch_and_plan(csms, broker, tmp_path):
    """A station with a grid meter and a tariff, commands on: what Home Assistant finds and can do."""
    config = mqtt_config(csms, tmp_path, broker.port, commands=True)
    for name, section in HOUSE.items():
        config[name] = section
    async with listening(broker.port) as ha, running(config) as daemon:
        await until(daemon.mqtt.connected.is_set, 10, "connected")
        node = "homeassistant/{}/chargepoint_CP-TEST-1/{}/config"
        select = await ha.until(lambda: ha.json(node.format("select", "mode_select")), "the mode select")
        assert select["default_entity_id"] == "select.chargepoint_cp_test_1_mode_select"
        assert select["options"] == ["Off", "PV", "Min+PV", "Fast"]
        configs = [json.loads(p) for t, p in ha.last.items() if t.startswith("homeassistant/") and p]
        assert configs and not [c for c in configs if "object_id" in c]
        grid = ha.json(node.format("sensor", "grid_power"))
        assert grid is not None and grid["state_topic"] == f"{PREFIX}/energy"
        cost = ha.json(node.format("sensor", "1_session_cost"))
        assert cost is not None and cost["unit_of_measurement"] == "EUR"
        energy = await ha.until(lambda: (e := ha.json(f"{PREFIX}/energy")) and e["grid_w"] is not None and e,
                                "the power at the connection")
        assert energy["mode"] == "fast" and isinstance(energy["surplus_w"], int | float)

        async with aiomqtt.Client("127.0.0.1", broker.port) as client:
            async def command(topic: str, payload: str) -> dict[str, Any]:
                count = len(ha.results())
                await client.publish(topic, payload, qos=1)
                return (await ha.until(lambda: ha.results()[count:], f"the result on {topic}"))[0]

            mode = f"{PREFIX}/station/cmd/mode"
            assert (await command(mode, "sunny"))["ok"] is False
            done = await command(mode, "pv")
            assert done["ok"] is True and done["result"] == {"mode": "pv"}
            await ha.until(lambda: ha.json(f"{PREFIX}/energy")["mode"] == "pv", "pv on the energy topic")

            limit = f"{PREFIX}/connector/1/cmd/limit"
            assert (await command(limit, "on"))["ok"] is True  # the switch: the rating becomes the limit
            await ha.until(lambda: ha.connector("state").get("operator_limited") is True, "limited")
            assert ha.connector("state")["operator_limit_a"] == 32.0
            assert (await command(limit, "12"))["ok"] is True  # the number lowers it
            await ha.until(lambda: ha.connector("state").get("operator_limit_a") == 12.0, "12 A")
            assert (await command(limit, "clear"))["ok"] is True  # the switch off: no limit, not 0 A
            state = await ha.until(
                lambda: (s := ha.connector("state")).get("operator_limited") is False and s, "no limit")
            assert state["operator_limit_a"] is None
            assert "operator" not in daemon.service.connector_status(1)["limit"]["claims"]

            plan = f"{PREFIX}/connector/1/cmd/plan"
            assert "12 kWh by 07:30" in (await command(plan, "twelve"))["error"]
            set_plan = await command(plan, "12 kWh by 07:30")
            assert set_plan["ok"] is True, set_plan
            shown = await ha.until(lambda: (p := ha.connector("plan")).get("energy_kwh") == 12.0 and p,
                                   "the plan")
            assert shown["text"] == "12 kWh by 07:30" and shown["words"]
            assert (await command(plan, "clear"))["ok"] is True
            await ha.until(lambda: ha.connector("plan").get("state") is None, "the plan cleared")
