"""Settings are read typed: an integer as an int, a flag as a bool, a text as a str; asking for the
wrong kind fails at once (a misread setting is a bug found by the tests, not on site)."""

from __future__ import annotations

import pytest

from chargepoint.config import parse
from chargepoint.core.settings import Settings

CONFIG = parse({"station": {"identity": "CP-1"},
                "ocpp": {"csms_url": "ws://127.0.0.1:9000", "meter_value_sample_interval_s": 30}})


def test_each_kind_reads_as_its_type_and_follows_a_change():
    settings = Settings(CONFIG)
    assert settings.integer("sample_interval_s") == 30
    settings.set("sample_interval_s", "15")
    assert settings.integer("sample_interval_s") == 15
    settings.set("stop_tx_on_invalid_id", "false")
    assert settings.flag("stop_tx_on_invalid_id") is False
    settings.set("organization_name", "Grid Co")
    assert settings.text("organization_name") == "Grid Co"


@pytest.mark.parametrize(("read", "name"), [("integer", "stop_tx_on_invalid_id"),
                                            ("flag", "sample_interval_s"),
                                            ("text", "heartbeat_interval_s")])
def test_the_wrong_kind_is_a_type_error_naming_the_setting(read: str, name: str):
    with pytest.raises(TypeError, match=name):
        getattr(Settings(CONFIG), read)(name)


def test_an_unknown_name_is_a_key_error():
    with pytest.raises(KeyError):
        Settings(CONFIG).integer("sample_intervl_s")
