"""A value the CSMS or the CLI set wins over the file, says so, and can be dropped again."""

from __future__ import annotations

from chargepoint.config import parse
from chargepoint.config.keys import file_values, origin
from chargepoint.core.settings import FILE_KEYS, SetResult, Settings, initial_values

CONFIG = parse({"station": {"identity": "CP-1"},
                "ocpp": {"csms_url": "ws://127.0.0.1:9000", "meter_value_sample_interval_s": 30}})


def test_a_stored_value_wins_and_is_named_against_the_file():
    settings = Settings(CONFIG)
    settings.restore({"sample_interval_s": "20", "authorization_key": "00" * 16, "gone_setting": "1"})
    assert settings.get("sample_interval_s") == 20
    assert settings.file_values["sample_interval_s"] == 30
    assert settings.overridden == {"sample_interval_s", "authorization_key"}
    line = settings.overrides_text()
    assert line == ("authorization_key (hidden; default of ocpp.authorization_key overridden); "
                    "sample_interval_s = 20 (file ocpp.meter_value_sample_interval_s: 30)")
    assert "00000000" not in line


def test_nothing_overridden_says_nothing():
    settings = Settings(CONFIG)
    assert settings.overridden == set() and settings.overrides_text() is None
    settings.set("heartbeat_interval_s", "120")
    assert settings.overridden == {"heartbeat_interval_s"}


def test_reset_brings_the_file_value_back_and_tells_the_listeners():
    settings = Settings(CONFIG)
    heard = []
    settings.listeners.append(lambda name, value: heard.append((name, value, name in settings.overridden)))
    assert settings.set("sample_interval_s", "20") is SetResult.ACCEPTED
    assert settings.reset("sample_interval_s") is SetResult.ACCEPTED
    assert settings.get("sample_interval_s") == 30 and settings.overridden == set()
    assert heard == [("sample_interval_s", 20, True), ("sample_interval_s", 30, False)]


def test_a_guard_refuses_a_reset_it_would_refuse_as_a_change():
    settings = Settings(CONFIG)
    settings.guards["security_profile"] = lambda v: "downgrading is not allowed" if v < 1 else None
    settings.restore({"security_profile": "1"})
    assert settings.reset_refusal("security_profile") == "downgrading is not allowed"
    assert settings.reset("security_profile") is SetResult.REJECTED
    assert settings.get("security_profile") == 1 and "security_profile" in settings.overridden


def test_every_file_key_named_for_a_setting_exists_and_gives_its_initial_value():
    values = file_values(CONFIG)
    initial = initial_values(CONFIG)
    for setting, key in FILE_KEYS.items():
        assert key in values, key
        shown = values[key]
        assert Settings.text_of(initial[setting]) == (",".join(shown) if isinstance(shown, list)
                                                      else Settings.text_of(type(initial[setting])(shown)))


def test_file_keys_tell_the_file_from_the_default():
    assert origin(CONFIG, "ocpp.meter_value_sample_interval_s") == "file"
    assert origin(CONFIG, "ocpp.heartbeat_interval_s") == "default"
    values = file_values(CONFIG)
    assert values["simulation.tethered"] is False and values["hal.backend"] == "sim"
    tethered = parse({"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://a"},
                      "simulation": {"tethered": True}})
    assert file_values(tethered)["simulation.tethered"] is True
    assert origin(tethered, "simulation.tethered") == "file"
