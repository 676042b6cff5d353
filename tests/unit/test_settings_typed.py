"""Settings are read as typed attributes (``settings.current.sample_interval_s``): an integer as an
int, a flag as a bool, a list as its items; a misspelt setting fails where it is written, and the
attributes and ``DEFINITIONS`` cannot drift apart (a misread setting is a bug the tests find, not
one found on site)."""

from __future__ import annotations

import pytest

from chargepoint.config import parse
from chargepoint.core.setting_values import Items, SettingValues, attributes
from chargepoint.core.settings import DEFINITIONS, Settings

CONFIG = parse({"station": {"identity": "CP-1"},
                "ocpp": {"csms_url": "ws://127.0.0.1:9000", "meter_value_sample_interval_s": 30}})


def test_each_kind_reads_as_its_type_and_follows_a_change():
    settings = Settings(CONFIG)
    assert settings.current.sample_interval_s == 30
    settings.set("sample_interval_s", "15")
    assert settings.current.sample_interval_s == 15
    settings.set("stop_tx_on_invalid_id", "false")
    assert settings.current.stop_tx_on_invalid_id is False
    settings.set("organization_name", "Grid Co")
    assert settings.current.organization_name == "Grid Co"
    settings.set("sampled_measurands", "Energy.Active.Import.Register, Power.Active.Import")
    assert settings.current.sampled_measurands == ["Energy.Active.Import.Register", "Power.Active.Import"]


def test_a_reset_and_a_restored_value_are_read_too():
    settings = Settings(CONFIG)
    settings.restore({"heartbeat_interval_s": "120", "network_priority": "1,0"})
    assert settings.current.heartbeat_interval_s == 120
    assert settings.current.network_priority == ["1", "0"]
    settings.reset("heartbeat_interval_s")
    assert settings.current.heartbeat_interval_s == CONFIG.ocpp.heartbeat_interval_s


def test_every_definition_has_one_attribute_of_its_kind():
    typed = attributes()
    assert sorted(typed) == sorted(d.name for d in DEFINITIONS)
    for definition in DEFINITIONS:
        assert typed[definition.name].kind is definition.kind, definition.name


def test_a_list_attribute_is_a_text_setting_whose_value_is_a_list():
    """Items only for what the station reads as items: lists with allowed members or a list check."""
    for name, attribute in attributes().items():
        if isinstance(attribute, Items):
            definition = next(d for d in DEFINITIONS if d.name == name)
            assert definition.allowed is not None or definition.check is not None, name


def test_each_attribute_reads_the_value_the_settings_hold():
    settings = Settings(CONFIG)
    for name in attributes():
        value = getattr(settings.current, name)
        held = settings.get(name)
        assert value == (settings.current.live[name] if not isinstance(value, list) else
                         [i.strip() for i in str(held).split(",") if i.strip()])
        assert isinstance(value, list if isinstance(attributes()[name], Items) else type(held)), name


def test_a_misspelt_setting_is_an_attribute_error():
    with pytest.raises(AttributeError):
        Settings(CONFIG).current.sample_intervl_s  # noqa: B018


def test_the_values_cannot_be_written_through_the_attributes():
    """Writes go through ``Settings.set``, which checks them; the view only reads."""
    values = SettingValues({"sample_interval_s": 30})
    with pytest.raises(AttributeError):
        values.sample_interval_s = 5  # type: ignore[misc]
