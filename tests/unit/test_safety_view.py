"""The safety supervisor's view of the file, the new [safety] keys, and the step budget in every reader.

The supervisor reads only its own keys, strictly; the daemon's loader and
check-config read everything. Both refuse a safety step too long for the
heartbeat with the same file, key and reason.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargepoint.cli.main import main
from chargepoint.config import (
    ConfigError,
    OcppConfig,
    SafetyConfig,
    channel_path,
    load,
    load_board_view,
    load_safety_view,
    parse,
)
from chargepoint.config.loader import check
from chargepoint.config.model import MqttConfig
from chargepoint.config.safety_view import parse_safety_view

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "chargepoint.toml"
PI_EXAMPLE = ROOT / "examples" / "raspberrypi.toml"
MINIMAL = '[station]\nidentity = "CP-1"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9000"\n'


def write(tmp_path: Path, text: str, name: str = "station.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def newer_firmware(text: str) -> str:
    """``text`` as a newer firmware might leave it: keys and sections this release does not know,
    and values its daemon would refuse, all outside what the supervisor reads."""
    text = text.replace("[ocpp]\n", "[ocpp]\nfuture_key = 1\n", 1)
    text = text.replace("[station]\n", '[station]\nfleet_group = "north"\n', 1)
    text = text.replace("[meter]\n", "[meter]\nfuture_register = 7\n", 1)
    text = text.replace("[hal]\n", '[hal]\nwatchdog = "external"\n', 1)
    return text + '\n[newsection]\nsetting = true\n'


# ------------------------------------------------------------------ the new keys in the full loader


def test_new_safety_keys_default_and_are_read():
    config = parse(tomllib.loads(MINIMAL))
    assert (config.safety.orphan_grace_s, config.safety.orphan_limit_a, config.safety.channel) == \
        (120.0, 16.0, "")
    config = parse(tomllib.loads(MINIMAL + '[safety]\norphan_grace_s = 0\norphan_limit_a = 32\n'
                                           'channel = "/run/x/safety.sock"\n'))
    assert config.safety == SafetyConfig(orphan_grace_s=0.0, orphan_limit_a=32.0,
                                         channel="/run/x/safety.sock")


@pytest.mark.parametrize(("line", "key", "reason"), [
    ("orphan_grace_s = -1", "safety.orphan_grace_s", "must be at least 0, not -1"),
    ("orphan_grace_s = 'long'", "safety.orphan_grace_s", "must be a number, not 'long'"),
    ("orphan_limit_a = 5", "safety.orphan_limit_a", "must be at least 6, not 5"),
    ("orphan_limit_a = 81", "safety.orphan_limit_a", "must be at most 80, not 81"),
    ("channel = 'run/safety.sock'", "safety.channel", "must be an absolute path (or \"\" for the default), "
                                                      "not 'run/safety.sock'"),
    (f"channel = '/{'a' * 107}'", "safety.channel", "must be at most 107 bytes long (a Unix socket path)"),
    ("channel = 1", "safety.channel", "must be a string, not int"),
    ("orphan_grace = 5", "safety.orphan_grace", "unknown key; did you mean 'orphan_grace_s'?"),
])
def test_bad_safety_values_name_file_key_and_reason_in_every_reader(tmp_path, line, key, reason):
    path = write(tmp_path, MINIMAL + f"[safety]\n{line}\n")
    for reader in (load, load_safety_view):
        with pytest.raises(ConfigError) as raised:
            reader(path)
        assert (raised.value.file, raised.value.key, raised.value.reason) == (str(path), key, reason)
    _, errors = check(path)
    assert [(e.file, e.key, e.reason) for e in errors] == [(str(path), key, reason)]


# ------------------------------------------------------------------ the step budget in every reader


def test_the_examples_fit_the_step_budget():
    for example in (EXAMPLE, PI_EXAMPLE):
        assert check(example)[1] == []
        load_safety_view(example)


def test_a_step_too_long_is_refused_by_the_loader_check_config_and_the_supervisor(tmp_path):
    text = PI_EXAMPLE.read_text().replace("data_rate = 3300", "data_rate = 128")
    path = write(tmp_path, text.replace('identity = "CP-0001"', 'identity = "CP 1"'))
    expected = (str(path), "board.adc.data_rate")
    with pytest.raises(ConfigError) as raised:
        load(path)  # the daemon stops at the first problem: the identity
    assert raised.value.key == "station.identity"
    _, errors = check(path)  # check-config: all of them
    assert [e.key for e in errors] == ["station.identity", "board.adc.data_rate"]
    budget = errors[1]
    assert (budget.file, budget.key) == expected
    assert "may take 30.9 ms (tick_s 5 ms + 3 ADS1015 conversions at 128 SPS, 8.64 ms each)" in budget.reason
    assert budget.reason.endswith("set board.adc.data_rate to 490 SPS or faster")
    with pytest.raises(ConfigError) as raised:
        load_safety_view(path)  # the supervisor does not read the identity, but the budget is its own
    assert (raised.value.file, raised.value.key, raised.value.reason) == (*expected, budget.reason)
    result = CliRunner().invoke(main, ["check-config", str(path)])
    assert result.exit_code == 1
    assert f"{path}: board.adc.data_rate: the safety step may take 30.9 ms" in result.output


def test_the_loader_refuses_a_tick_too_long_for_the_heartbeat(tmp_path):
    path = write(tmp_path, PI_EXAMPLE.read_text().replace("tick_s = 0.005 ", "tick_s = 0.0145"))
    with pytest.raises(ConfigError) as raised:
        load(path)
    assert raised.value.key == "safety.tick_s"
    assert raised.value.reason.startswith("the safety step may take 15.7 ms (tick_s 14.5 ms + ")
    assert "set safety.tick_s to at most 0.0138" in raised.value.reason
    without_heartbeat = tomllib.loads(path.read_text())
    del without_heartbeat["board"]["heartbeat"]
    assert parse(without_heartbeat).safety.tick_s == 0.0145  # no charge pump to feed: no budget


# ------------------------------------------------------------------ the supervisor's view


def test_the_view_ignores_what_is_not_its_own():
    text = newer_firmware(PI_EXAMPLE.read_text()).replace('identity = "CP-0001"', 'identity = "not valid"')
    data = tomllib.loads(text)
    with pytest.raises(ConfigError):
        parse(data, "x.toml")
    full = load(PI_EXAMPLE)
    view = parse_safety_view(data, "x.toml")
    assert view.board == full.board and view.safety == full.safety and view.simulation == full.simulation
    assert view.connectors == full.connectors and view.hal_backend == "raspberrypi"
    for key in ("max_current_a", "state_dir", "connector_type"):
        assert getattr(view.station, key) == getattr(full.station, key)
    assert (view.meter.kind, view.meter.model) == ("modbus", "sdm630")
    # What it does not read is the default, not the file's.
    assert view.ocpp == OcppConfig() and view.mqtt == MqttConfig() and view.meter.port == "/dev/ttyUSB0"
    assert view.station.identity == "-" and view.source == "x.toml"
    assert "safety.tick_s" in view.file_keys and "ocpp.csms_url" not in view.file_keys


def test_the_view_of_a_file_with_unknown_sections_and_keys_loads(tmp_path):
    path = write(tmp_path, newer_firmware(EXAMPLE.read_text()))
    with pytest.raises(ConfigError, match="unknown"):
        load(path)
    view = load_safety_view(path)
    assert view.hal_backend == "sim" and view.board is None and view.safety == SafetyConfig()
    assert load_board_view(path) == ("sim", None)


def test_the_view_needs_no_station_section_and_no_identity(tmp_path):
    view = load_safety_view(write(tmp_path, "[safety]\norphan_grace_s = 30\n"))
    assert view.safety.orphan_grace_s == 30.0 and view.station.state_dir == "/var/lib/chargepoint"


@pytest.mark.parametrize(("text", "key", "reason"), [
    ("[station]\nmax_current_a = 100\n", "station.max_current_a", "must be at most 80, not 100"),
    ("[station]\nconnector_type = 'type3'\n", "station.connector_type", "unknown connector 'type3'"),
    ("[meter]\nkind = 'simm'\n", "meter.kind", "did you mean 'sim'?"),
    ("[meter]\nmodel = 'nope'\n", "meter.model", "unknown meter model 'nope'"),
    ("[hal]\nbackend = 'raspberypi'\n", "hal.backend", "did you mean 'raspberrypi'?"),
    ("[hal]\nbackend = 'raspberrypi'\n", "board", 'section is required with hal.backend = "raspberrypi"'),
    ("[simulation]\nev_phase = 3\n", "simulation.ev_phase", "did you mean 'ev_phases'?"),
    ("[[connectors]]\nid = 1\nmax_curent_a = 16\n", "connectors[0].max_curent_a",
     "did you mean 'max_current_a'?"),
    ("[safety]\ntick_s = 0.2\n", "safety.tick_s", "must be at most 0.05, not 0.2"),
    ("safety = 1\n", "safety", "must be a table ([safety])"),
    ("station = 'x'\n", "station", "must be a table ([station])"),
])
def test_the_view_is_strict_about_what_it_reads(tmp_path, text, key, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load_safety_view(path)
    assert (raised.value.file, raised.value.key) == (str(path), key)
    assert reason in raised.value.reason


def test_a_meter_with_its_own_register_map_is_not_checked_for_a_model(tmp_path):
    path = write(tmp_path, "[meter]\nkind = 'modbus'\nmodel = 'my-meter'\nmap_file = 'missing.toml'\n")
    assert load_safety_view(path).meter.kind == "modbus"


def test_unreadable_files_name_the_file(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_safety_view(tmp_path / "none.toml")
    assert raised.value.key == "-" and raised.value.reason.startswith("file not found: check the path")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_board_view(write(tmp_path, "[board\n"))


def test_the_board_view_reads_the_board_alone(tmp_path):
    # A step too long is the supervisor's problem, not safe-off's: the outputs must still be driven.
    text = newer_firmware(PI_EXAMPLE.read_text()).replace("tick_s = 0.005 ", "tick_s = 0.05  ")
    path = write(tmp_path, text.replace("[safety]\n", "[safety]\nunknown = 1\n"))
    backend, board = load_board_view(path)
    assert backend == "raspberrypi" and board == load(PI_EXAMPLE).board


# ------------------------------------------------------------------ where the channel is


def test_channel_path_per_backend(tmp_path):
    sim = parse(tomllib.loads(MINIMAL.replace("[ocpp]", f'state_dir = "{tmp_path}"\n[ocpp]')))
    assert channel_path(sim) == f"{tmp_path}/safety.sock"
    assert channel_path(load(PI_EXAMPLE)) == "/run/chargepoint-safety/channel.sock"
    assert channel_path(load_safety_view(PI_EXAMPLE)) == "/run/chargepoint-safety/channel.sock"
    view = load_safety_view(write(tmp_path, f'[station]\nstate_dir = "{tmp_path}/state"\n'))
    assert channel_path(view) == f"{tmp_path}/state/safety.sock"
    own = load_safety_view(write(tmp_path, '[safety]\nchannel = "/run/own/channel.sock"\n'))
    assert channel_path(own) == "/run/own/channel.sock"
    pi_own = PI_EXAMPLE.read_text().replace("[safety]\n", '[safety]\nchannel = "/run/own/c.sock"\n')
    assert channel_path(load(write(tmp_path, pi_own, "pi.toml"))) == "/run/own/c.sock"
