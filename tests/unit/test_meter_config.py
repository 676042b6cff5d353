"""The [meter] section, per-connector unit ids, and building meters from it."""

from __future__ import annotations

import pytest

from chargepoint.backends.metering import build_meter, bus_pool, bus_settings, max_power_w, unit_id
from chargepoint.config import ConfigError, load, parse
from hal.clock import ManualClock
from hal.sim.world import SimWorld

BASE = {"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://127.0.0.1:9000"}}


def config(meter: dict | None = None, **sections: object):
    data = dict(BASE, **sections)
    if meter is not None:
        data["meter"] = meter
    return parse(data, "<test>")


def test_defaults_keep_the_simulated_meter() -> None:
    cfg = config()
    assert cfg.meter.kind == "sim" and cfg.meter.model == "sdm630"
    assert (cfg.meter.transport, cfg.meter.port, cfg.meter.baudrate) == ("rtu", "/dev/ttyUSB0", 9600)
    world = SimWorld(ManualClock())
    assert build_meter(cfg, cfg.connectors[0], ManualClock(), sim_meter=world.meter) is world.meter
    assert bus_pool(cfg) is None


@pytest.mark.parametrize(("meter", "key", "reason"), [
    ({"kind": "magic"}, "meter.kind", "unknown meter kind"),
    ({"model": "sdm999"}, "meter.model", "unknown meter model 'sdm999'"),
    ({"transport": "udp"}, "meter.transport", "'rtu' or 'tcp'"),
    ({"baudrate": 9601}, "meter.baudrate", "must be one of"),
    ({"parity": "X"}, "meter.parity", "'N', 'E' or 'O'"),
    ({"unit_id": 0}, "meter.unit_id", "at least 1"),
    ({"stopbits": 3}, "meter.stopbits", "at most 2"),
    ({"kind": "modbus", "transport": "tcp"}, "meter.host", "is required"),
    ({"kind": "modbus", "port": ""}, "meter.port", "is required"),
    ({"map_file": "missing.toml"}, "meter.map_file", "cannot be read"),
    ({"colour": "red"}, "meter.colour", "unknown key"),
])
def test_bad_meter_settings_name_the_key(meter: dict, key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config(meter)
    assert caught.value.key == key
    assert reason in caught.value.reason


def test_a_user_map_relative_to_the_configuration_file(tmp_path) -> None:
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "mine.toml").write_text(
        'model = "mine"\n[registers]\nenergy_import = { address = 0, function = 3, unit = "Wh", '
        'type = "uint32" }\n')
    path = tmp_path / "station.toml"
    path.write_text('[station]\nidentity = "CP-1"\n[ocpp]\ncsms_url = "ws://h"\n'
                    '[meter]\nkind = "modbus"\nmap_file = "maps/mine.toml"\n')
    assert load(path).meter.map_file == str(tmp_path / "maps" / "mine.toml")
    (tmp_path / "maps" / "mine.toml").write_text('model = "mine"\n[registers]\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert caught.value.key == "meter.map_file" and "registers: is required" in caught.value.reason


def test_unit_ids_and_rated_power_per_connector() -> None:
    cfg = config({"kind": "modbus", "unit_id": 5},
                 connectors=[{"id": 1}, {"id": 2, "max_current_a": 16}, {"id": 3, "meter_unit_id": 9}])
    assert [unit_id(cfg.meter, c) for c in cfg.connectors] == [5, 6, 9]
    assert max_power_w(cfg.meter, cfg.connectors[1]) == pytest.approx(3 * 253 * 16)
    assert max_power_w(config({"max_power_w": 7400}).meter, cfg.connectors[0]) == 7400


async def test_modbus_meters_of_one_line_share_one_bus() -> None:
    cfg = config({"kind": "modbus", "transport": "tcp", "host": "127.0.0.1", "tcp_port": 1502,
                  "timeout_s": 0.2}, connectors=[{"id": 1}, {"id": 2}])
    pool = bus_pool(cfg)
    meters = [build_meter(cfg, c, ManualClock(), pool=pool) for c in cfg.connectors]
    assert meters[0].bus is meters[1].bus and meters[0].bus.users == 2
    assert [m.unit_id for m in meters] == [1, 2]
    assert bus_settings(cfg.meter).describe() == "127.0.0.1:1502"
    for meter in meters:
        await meter.close()
    assert meters[0].bus.users == 0


def test_sim_kinds_need_the_simulation() -> None:
    cfg = config({"kind": "sim-modbus"})
    with pytest.raises(ValueError, match="simulated hardware"):
        build_meter(cfg, cfg.connectors[0], ManualClock())
