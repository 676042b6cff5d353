"""check-config's view of a file: every problem at once, the likely key, example values, every key shown."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from chargepoint.config import ConfigError, load
from chargepoint.config.loader import accepted_keys, check
from chargepoint.config.placeholders import placeholders

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "chargepoint.toml"
PI_EXAMPLE = ROOT / "examples" / "raspberrypi.toml"
MINIMAL = {"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://127.0.0.1:9000"}}


def example_keys(path: Path) -> set[str]:
    """Dotted keys the file sets, plus those it shows commented out (``# key = ...``: no TOML null)."""
    keys: set[str] = set()
    for section, value in tomllib.loads(path.read_text()).items():
        for table in value if isinstance(value, list) else [value]:
            keys.update(f"{section}.{k}" for k in table if not isinstance(table[k], dict))
            keys.update(f"{section}.{k}.{kk}" for k in table if isinstance(table[k], dict) for kk in table[k])
    section = ""
    for line in path.read_text().splitlines():
        if header := re.match(r"\[\[?([\w.]+)\]\]?", line):
            section = header.group(1)
        elif commented := re.match(r"#\s*(\w+)\s*=", line):
            keys.add(f"{section}.{commented.group(1)}")
    return keys


def test_the_example_lists_exactly_the_keys_the_loader_accepts():
    # [board] is the Raspberry Pi's (examples/raspberrypi.toml, hardware.md); every other section is here.
    accepted = {k for k in accepted_keys(MINIMAL) if not k.startswith("board.")}
    listed = example_keys(EXAMPLE)
    assert accepted - listed == set(), "accepted by the loader but missing from examples/chargepoint.toml"
    assert listed - accepted == set(), "in examples/chargepoint.toml but not accepted by the loader"
    assert {"ocpp.local_pre_authorize", "ocpp.local_authorize_offline",
            "ocpp.allow_offline_tx_for_unknown_id", "ocpp.authorization_cache_enabled",
            "ocpp.local_auth_list_enabled", "simulation.tethered",
            "connectors.meter_unit_id"} <= listed


def test_every_problem_is_reported_with_the_likely_key(tmp_path):
    path = tmp_path / "station.toml"
    path.write_text('[station]\nidentity = "CP 1"\nmax_curent_a = 16\nfree_vend = "yes"\n'
                    '[ocpp]\ncsms_url = "ws://127.0.0.1:9000"\nheartbeat_intervall_s = 10\n'
                    'meter_value_sample_interval_s = -3\n[meter]\nkind = "simm"\n[safty]\n')
    config, errors = check(path)
    assert config is None
    found = {e.key: e.reason for e in errors}
    assert all(e.file == str(path) for e in errors)
    assert set(found) == {"safty", "station.identity", "station.max_curent_a", "station.free_vend",
                          "ocpp.heartbeat_intervall_s", "ocpp.meter_value_sample_interval_s", "meter.kind"}
    assert found["station.max_curent_a"] == "unknown key; did you mean 'max_current_a'?"
    assert found["ocpp.heartbeat_intervall_s"] == "unknown key; did you mean 'heartbeat_interval_s'?"
    assert found["safty"].endswith("did you mean 'safety'?")
    assert "did you mean 'sim'?" in found["meter.kind"]
    assert found["station.free_vend"] == "must be true or false, not 'yes'"
    # The daemon still stops at the first one, with the same words.
    with pytest.raises(ConfigError) as first:
        load(path)
    assert (first.value.key, first.value.reason) == (errors[0].key, errors[0].reason)


def test_a_good_file_checks_without_errors_and_a_far_typo_gets_no_guess(tmp_path):
    config, errors = check(EXAMPLE)
    assert errors == [] and config is not None
    path = tmp_path / "station.toml"
    path.write_text('[station]\nidentity = "CP-1"\nzzz = 1\n[ocpp]\ncsms_url = "ws://127.0.0.1:9000"\n')
    _, errors = check(path)
    assert [(e.key, e.reason) for e in errors] == [("station.zzz", "unknown key (misspelt?)")]


def test_example_values_are_named():
    pi = load(PI_EXAMPLE)
    assert [p.key for p in placeholders(pi)] == ["station.identity", "ocpp.csms_url", "board.rfid.port"]
    assert "is the example's value" in placeholders(pi)[0].text()
    from chargepoint.config import parse

    real = parse({"station": {"identity": "WALLBOX-7"}, "ocpp": {"csms_url": "wss://ocpp.operator.net/cs"}})
    assert placeholders(real) == []
    sub = parse({"station": {"identity": "WALLBOX-7"}, "ocpp": {"csms_url": "ws://a.b.example.org/x"}})
    assert [p.key for p in placeholders(sub)] == ["ocpp.csms_url"]


def test_selftest_warns_about_example_values_without_failing():
    from chargepoint.config import parse
    from chargepoint.control.selftest import configuration_check

    pi = load(PI_EXAMPLE)
    check = configuration_check(pi)
    assert check.status == "warn"
    assert "station.identity = 'CP-0001' is the example's value" in check.detail
    assert "ocpp.csms_url = 'wss://csms.example.com/ocpp'" in check.detail
    real = parse({"station": {"identity": "WALLBOX-7"}, "ocpp": {"csms_url": "wss://ocpp.operator.net/cs"}})
    assert configuration_check(real).status == "pass"


def test_a_bad_value_does_not_hide_a_misspelt_key_nor_the_rules_across_sections(tmp_path):
    """Each section goes on after a value it refuses: the typo beside it is named in the same round,
    and so are the rules across sections (the Raspberry Pi needs one connector and a real meter)."""
    path = tmp_path / "station.toml"
    path.write_text('[station]\nidentity = "CP-1"\nsupply_phases = 2\nmax_curent_a = 16\n'
                    '[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n[meter]\nkind = "modbuss"\nparityy = "E"\n'
                    '[hal]\nbackend = "raspberrypi"\n[[connectors]]\nid = 1\n[[connectors]]\nid = 2\n')
    _, errors = check(path)
    keys = [e.key for e in errors]
    assert "station.supply_phases" in keys and "station.max_curent_a" in keys
    assert "meter.kind" in keys and "meter.parityy" in keys
    assert "board" in keys and "connectors" in keys
    typo = next(e for e in errors if e.key == "station.max_curent_a")
    assert typo.reason == "unknown key; did you mean 'max_current_a'?"
    with pytest.raises(ConfigError) as first:  # the daemon stops at the first, the same one
        load(path)
    assert (first.value.key, first.value.reason) == (errors[0].key, errors[0].reason)


def test_the_board_profile_lists_every_problem_at_once(tmp_path):
    """A wrong choice, an impossible data rate and a misspelt key of [board] in one round; the daemon
    (and the supervisor) still stop at the first of them."""
    text = PI_EXAMPLE.read_text()
    text = text.replace('model = "pi4"', 'model = "pi9"', 1)
    text = text.replace("data_rate = 3300", "data_rate = 3000", 1)
    text = text.replace("vdd_v = 3.3", "vdd_v = 3.3\nvdd_volts = 3.3", 1)
    path = tmp_path / "pi.toml"
    path.write_text(text)
    _, errors = check(path)
    keys = [e.key for e in errors]
    assert "board.model" in keys and "board.adc.data_rate" in keys and "board.adc.vdd_volts" in keys
    assert next(e for e in errors if e.key == "board.adc.vdd_volts").reason == \
        "unknown key; did you mean 'vdd_v'?"
    with pytest.raises(ConfigError) as first:
        load(path)
    assert (first.value.key, first.value.reason) == (errors[0].key, errors[0].reason)
