"""The technician's command line as a whole: what reconnect, status and --json promise everywhere.

Against the running daemon of the CLI rig (subprocess, sim hal, bench CSMS) over its real control socket.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
import pytest
from click.testing import CliRunner

from chargepoint.cli import client, main
from chargepoint.cli.client import DEFAULT_SOCKET

if TYPE_CHECKING:
    from tests.integration.control_rig import Rig

pytest_plugins = ("tests.integration.control_rig",)  # the rig fixture

#: Commands that run until stopped (daemons, the demo) or hand their arguments to another program.
LONG_RUNNING = {"run", "demo", "csms", "supervise", "firmware-guard"}


def test_reconnect_keeps_a_healthy_link_unless_forced(rig: Rig):
    connection = rig.wait(lambda: (c := rig.status()["connection"])["boot"] == "accepted" and c,
                          "the CSMS link accepted")
    kept = rig.cli("reconnect")
    assert kept.exit_code == 0, kept.output
    assert "nothing to do (--force drops the link and connects again)" in kept.stdout
    # The answer comes after a drop would have closed the link: it is still the same connection.
    after = rig.status()["connection"]
    assert after["connected"] and after["connections"] == connection["connections"]
    assert rig.json("reconnect")["status"] == "healthy"

    forced = rig.json("reconnect", "--force")
    assert forced["was_connected"] is True and forced["status"] == "reconnecting"
    rig.wait(lambda: (c := rig.status()["connection"])["connections"] > connection["connections"]
             and c["boot"] == "accepted", "a new connection, accepted")


def test_status_without_a_daemon_names_the_socket_and_how_to_point_elsewhere(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch):
    # The default socket of this machine may be in use by a station: the test's own default is a free path.
    default = str(tmp_path / "control.sock")
    monkeypatch.setattr(client, "DEFAULT_SOCKET", default)
    result = CliRunner().invoke(main, ["status"], env={"CHARGEPOINT_SOCKET": None})
    assert result.exit_code == 3
    assert f"no control socket at {default}" in result.stderr
    assert "a daemon on another socket: give --socket PATH, or --config FILE" in result.stderr
    assert "CHARGEPOINT_SOCKET" in result.stderr
    assert DEFAULT_SOCKET == "/run/chargepoint/control.sock"


def test_web_passwd_answers_in_json(tmp_path: Path):
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\nidentity = "CP-JSON"\nstate_dir = "{tmp_path / "state"}"\n')
    done = CliRunner().invoke(main, ["web", "passwd", "--config", str(config), "--password-stdin", "--json"],
                              input="correct horse battery\n")
    assert done.exit_code == 0, done.output
    answer = json.loads(done.stdout)
    assert answer["ok"] is True and answer["mode"] == "0600" and Path(answer["file"]).is_file()
    short = CliRunner().invoke(main, ["web", "passwd", "--config", str(config), "--password-stdin", "--json"],
                               input="short\n")
    assert short.exit_code == 1
    assert json.loads(short.stdout)["error"]["message"].startswith("a password needs at least")


def test_every_command_takes_json():
    def leaves(command: click.Command, path: tuple[str, ...]) -> list[tuple[tuple[str, ...], click.Command]]:
        if isinstance(command, click.Group):
            return [leaf for name, sub in command.commands.items() for leaf in leaves(sub, (*path, name))]
        return [(path, command)]

    missing = [" ".join(path) for path, command in leaves(main, ())
               if path[0] not in LONG_RUNNING
               and "--json" not in {opt for param in command.params for opt in getattr(param, "opts", ())}]
    assert missing == []


def test_safe_off_answers_in_json(tmp_path: Path):
    config = tmp_path / "station.toml"
    config.write_text('[station]\nidentity = "CP-JSON"\n')
    done = CliRunner().invoke(main, ["safe-off", "--config", str(config), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"ok": True, "file": str(config), "hal": "sim", "outputs": []}


def test_check_config_refuses_what_run_refuses_every_problem_at_once(tmp_path: Path):
    config = tmp_path / "station.toml"
    config.write_text(f'[station]\nidentity = "CP-X"\nstate_dir = "{tmp_path / "state"}"\nsupply_phases = 2\n'
                      'max_curent_a = 16\n[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n'
                      '[web]\nenabled = true\nlisten = "0.0.0.0"\n')
    checked = CliRunner().invoke(main, ["check-config", str(config)])
    assert checked.exit_code == 1
    assert f"Error: {config}: station.supply_phases: must be 1 or 3" in checked.stderr
    assert (f"Error: {config}: station.max_curent_a: unknown key; did you mean 'max_current_a'?"
            in checked.stderr)
    assert (f"Error: {config}: web.listen: listening on 0.0.0.0 (beyond this machine) needs a dashboard "
            f"password first: run `chargepoint web passwd --config {config}`") in checked.stderr
    assert f"{config}: 3 problem(s)" in checked.stderr
    # The daemon refuses the same file with the first of them.
    refused = subprocess.run([sys.executable, "-m", "chargepoint.cli", "run", "--config", str(config)],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1
    assert f"configuration rejected: {config}: station.supply_phases: must be 1 or 3" in refused.stderr
    # With the password set, the dashboard may listen beyond loopback.
    config.write_text(config.read_text().replace("supply_phases = 2\nmax_curent_a = 16\n", ""))
    assert "needs a dashboard password" in CliRunner().invoke(main, ["check-config", str(config)]).stderr
    done = CliRunner().invoke(main, ["web", "passwd", "--config", str(config), "--password-stdin"],
                              input="correct horse battery\n")
    assert done.exit_code == 0, done.output
    assert CliRunner().invoke(main, ["check-config", str(config)]).exit_code == 0
