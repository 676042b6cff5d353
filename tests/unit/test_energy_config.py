"""The [load], [load.meter], [solar] and [house] sections: defaults; errors name file, key and reason."""

from __future__ import annotations

import pytest

from chargepoint.config import ConfigError, parse
from chargepoint.config.loader import check

BASE = {"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://127.0.0.1:9000"}}


def _parse(**sections: object):
    return parse({**BASE, **sections}, "station.toml")


def _error(**sections: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        _parse(**sections)
    assert caught.value.file == "station.toml"
    return caught.value


def test_defaults_leave_load_management_off_and_the_mode_fast():
    config = _parse()
    assert not config.load.enabled and config.solar.mode == "fast"
    assert (config.load.main_fuse_a, config.load.margin_a, config.load.fallback_a) == (25.0, 1.0, 6.0)
    assert (config.solar.enable_delay_s, config.solar.disable_delay_s, config.solar.min_switch_interval_s) \
        == (60.0, 180.0, 60.0)
    grid = _parse(load={"enabled": True, "meter": {"kind": "sim-modbus", "unit_id": 9}}).load.meter
    assert grid.kind == "sim-modbus" and grid.unit_id == 9 and grid.model == "sdm630"


@pytest.mark.parametrize(("sections", "key", "words"), [
    ({"solar": {"mode": "pv"}}, "solar.mode", "needs the grid meter"),
    ({"solar": {"mode": "sun"}}, "solar.mode", "unknown mode 'sun'"),
    ({"solar": {"min_switch_interval_s": 10}}, "solar.min_switch_interval_s", "at least 60"),
    ({"load": {"enabled": True, "meter": {"poll_interval_s": 5, "kind": "sim"}, "stale_after_s": 20}},
     "load.meter.poll_interval_s", "at most 2 s"),
    ({"load": {"fallback_a": 30}}, "load.fallback_a", "must not exceed"),
    ({"load": {"main_fuse_a": 10, "margin_a": 6}}, "load.margin_a", "less than 6 A"),
    ({"load": {"meter": {"kind": "modbsu"}}}, "load.meter.kind", "did you mean 'modbus'?"),
    ({"load": {"meter": {"max_power_w": 10}}}, "load.meter.max_power_w", "unknown key"),
    ({"load": {"meter": 3}}, "load.meter", "must be a table"),
    ({"house": {"cloudiness": 2}}, "house.cloudiness", "at most 1"),
])
def test_each_mistake_names_its_key(sections, key, words):
    error = _error(**sections)
    assert error.key == key and words in error.reason, (error.key, error.reason)


def test_a_grid_meter_on_the_station_meters_line_must_be_configured_as_that_line():
    meter = {"kind": "modbus", "port": "/dev/ttyUSB0", "baudrate": 9600}
    error = _error(meter=meter, load={"enabled": True, "meter": {**meter, "baudrate": 19200, "unit_id": 5}})
    assert error.key == "load.meter.baudrate" and "shares /dev/ttyUSB0" in error.reason
    error = _error(meter=meter, load={"enabled": True, "meter": {**meter, "unit_id": 1}})
    assert error.key == "load.meter.unit_id"
    shared = _parse(meter=meter, load={"enabled": True, "meter": {**meter, "unit_id": 5}})
    assert shared.load.meter.unit_id == 5


def test_check_config_lists_every_energy_problem_at_once(tmp_path):
    path = tmp_path / "station.toml"
    path.write_text('[station]\nidentity = "CP-1"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9000"\n'
                    '[load]\nmain_fuse_a = 3\n[solar]\nmode = "pvv"\n[house]\nseeds = 1\n')
    config, errors = check(path)
    assert config is None
    found = {e.key: e.reason for e in errors}
    assert {"load.main_fuse_a", "solar.mode", "house.seeds"} <= set(found), found
    assert all(e.file == str(path) for e in errors)
