"""An error that names a file, a port or a transport says what to do next."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargepoint.cli import main
from chargepoint.config import ConfigError, load, parse

MINIMAL = {"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://127.0.0.1:9"}}


def refused(**sections: dict) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse({**MINIMAL, **sections}, "/etc/chargepoint/chargepoint.toml")
    return caught.value


def test_the_configuration_file_itself(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found: check the path"):
        load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="cannot be read: Is a directory: give the path of the config"):
        load(tmp_path)
    broken = tmp_path / "broken.toml"
    broken.write_text("[station\n")
    with pytest.raises(ConfigError, match="not valid TOML: .*: fix the TOML at that line and column"):
        load(broken)


@pytest.mark.parametrize(("sections", "key", "next_step"), [
    ({"ocpp": {"csms_url": "wss://csms.example/ocpp", "ca_bundle": "/nonexistent/ca.pem"}}, "ocpp.ca_bundle",
     "leave ca_bundle out to trust the system's CA store"),
    ({"web": {"tls_cert": "/nonexistent/cert.pem", "tls_key": "/nonexistent/key.pem"}}, "web.tls_cert",
     "give the path of the PEM file"),
    ({"mqtt": {"enabled": True, "host": "broker", "tls": True, "ca_file": "/nonexistent/ca.pem"}},
     "mqtt.ca_file", "give the path of the PEM file"),
    ({"meter": {"kind": "modbus", "transport": "serial"}}, "meter.transport",
     "'rtu' for an RS-485 adapter (with port), 'tcp' for Modbus TCP or a gateway (with host)"),
    ({"meter": {"kind": "modbus", "transport": "tcp"}}, "meter.host",
     "the address of the meter or its Modbus TCP gateway"),
    ({"meter": {"kind": "modbus", "transport": "rtu", "port": ""}}, "meter.port",
     "the RS-485 adapter's device, e.g. /dev/serial/by-id/"),
])
def test_files_ports_and_transports_in_the_configuration(sections: dict, key: str, next_step: str) -> None:
    error = refused(**{**MINIMAL, **sections, "ocpp": {**MINIMAL["ocpp"], **sections.get("ocpp", {})}})
    assert error.key == key and next_step in error.reason, error


def test_the_cli_says_which_connector_and_where_a_password_can_go(tmp_path: Path) -> None:
    config = tmp_path / "station.toml"
    config.write_text('[station]\nidentity = "CP-1"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n'
                      '[[connectors]]\nid = 1\n[[connectors]]\nid = 2\n')
    wrong = CliRunner().invoke(main, ["meter", "--config", str(config), "--connector", "3"])
    assert wrong.exit_code == 1 and "has no connector 3: give --connector 1 or 2" in wrong.stderr
    config.write_text(f'[station]\nidentity = "CP-1"\nstate_dir = "{config}/state"\n'
                      '[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n')
    nowhere = CliRunner().invoke(main, ["web", "passwd", "--config", str(config), "--password-stdin",
                                        "--json"], input="correct horse battery\n")
    assert nowhere.exit_code == 1
    message = json.loads(nowhere.stdout)["error"]["message"]
    assert message.startswith(f"cannot write the password into {config}/state")
    assert "run it as the station's service user, or with sudo" in message
