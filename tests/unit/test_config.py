"""A bad configuration file is rejected at start with the file, key and reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from chargepoint.config import ConfigError, load, parse

EXAMPLE = Path(__file__).parents[2] / "examples" / "chargepoint.toml"

MINIMAL = """
[station]
identity = "CP-1"
[ocpp]
csms_url = "ws://csms.example:9000/ocpp"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "station.toml"
    path.write_text(text)
    return path


def test_shipped_example_is_valid_and_shows_the_defaults():
    config = load(EXAMPLE)
    defaults = parse({"station": {"identity": "CP-0001"}, "ocpp": {"csms_url": "ws://127.0.0.1:9000"}})
    assert config.station == defaults.station
    assert config.ocpp == defaults.ocpp
    assert config.connectors == defaults.connectors
    assert config.simulation == defaults.simulation
    assert config.meter == defaults.meter
    assert config.safety == defaults.safety


def test_minimal_file_gets_defaults(tmp_path):
    config = load(write(tmp_path, MINIMAL))
    assert config.station.identity == "CP-1"
    assert config.ocpp.meter_value_sample_interval_s == 60
    assert [c.id for c in config.connectors] == [1]
    assert config.connectors[0].max_current_a == 32
    assert config.hal_backend == "sim"


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        ("[ocpp]\ncsms_url='ws://x'\n", "station", "section is required"),
        ("[station]\nidentity='CP 1'\n[ocpp]\ncsms_url='ws://x'\n", "station.identity", "without spaces"),
        ("[station]\n[ocpp]\ncsms_url='ws://x'\n", "station.identity", "is required"),
        (MINIMAL + "[meter]\npoll_interval_s = 'fast'\n", "meter.poll_interval_s", "must be a number"),
        (MINIMAL.replace("ws://csms.example:9000/ocpp", "http://x"), "ocpp.csms_url", "ws:// or wss://"),
        (MINIMAL.replace("[ocpp]", "[ocpp]\nversion = '2.2'"), "ocpp.version", "unsupported OCPP version"),
        (MINIMAL.replace("[ocpp]", "[ocpp]\nheartbeat_interval = 5"), "ocpp.heartbeat_interval",
         "unknown key"),
        (MINIMAL + "[station2]\n", "station2", "unknown section"),
        (MINIMAL + "[hal]\nbackend = 'gpio'\n", "hal.backend", "unknown backend"),
        (MINIMAL.replace("[station]", "[station]\nmax_current_a = 100"), "station.max_current_a",
         "at most 80"),
        (MINIMAL + "[[connectors]]\nid = 2\n", "connectors[0].id", "expected 1"),
        (MINIMAL.replace("[ocpp]", "[ocpp]\nmeter_values_sampled_data = ['Volts']"),
         "ocpp.meter_values_sampled_data", "unknown value 'Volts'"),
        (MINIMAL + "[simulation]\nev_phases = 2\n", "simulation.ev_phases", "must be 1 or 3"),
        (MINIMAL.replace("[ocpp]", "[ocpp]\nauthorize_remote_tx_requests = 1"),
         "ocpp.authorize_remote_tx_requests", "true or false"),
        (MINIMAL.replace("[ocpp]", "[ocpp]\nreconnect_min_s = 10\nreconnect_max_s = 5"),
         "ocpp.reconnect_max_s", "reconnect_min_s"),
        ("[station\n", "-", "not valid TOML"),
    ],
)
def test_bad_file_names_file_key_and_reason(tmp_path, text, key, reason):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        load(path)
    error = raised.value
    assert error.file == str(path)
    assert error.key == key
    assert reason in error.reason
    assert str(error).startswith(f"{path}: {key}: ")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load(tmp_path / "absent.toml")


def test_daemon_refuses_to_start_with_a_bad_file(tmp_path):
    path = write(tmp_path, MINIMAL.replace("[station]", "[station]\nmax_current_a = 5"))
    result = subprocess.run(
        [sys.executable, "-m", "chargepoint.cli", "run", "--config", str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    assert f"{path}: station.max_current_a: must be at least 6" in result.stderr
