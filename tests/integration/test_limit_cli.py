"""``chargepoint limit`` against a running daemon (subprocess, sim hal) over the real control socket.

The operator's limit binds on the pilot the simulated EV reads, pauses the
session below 6 A, is shown with every other claim by ``status``, and is still
in force after the daemon restarts.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from chargepoint.cli import main

if TYPE_CHECKING:
    from tests.integration.control_rig import Rig

pytest_plugins = ("tests.integration.control_rig",)  # the rig fixture


def test_limit_binds_pauses_below_six_amperes_and_clears(rig: Rig):
    rig.idle()
    try:
        said = rig.json("limit", "10")
        assert [(c["id"], c["operator_a"]) for c in said["connectors"]] == [(1, 10.0)]
        assert said["connectors"][0]["limit"]["binding"] == "operator"
        c = rig.connector()
        assert c["limit"]["claims"]["operator"] == 10.0 and c["limit"]["amps"] == 10.0
        text = rig.cli("status")
        assert text.exit_code == 0, text.stderr
        assert "operator 10 A (binds)" in text.stdout and "station 32 A" in text.stdout

        rig.json("sim", "plug")
        rig.wait(lambda: rig.connector()["iec_state"] == "B", "the EV in state B")
        rig.json("start", "--id-tag", "LIMIT-1")
        c = rig.wait(lambda: (c := rig.connector())["ocpp_status"] == "Charging" and c, "Charging")
        assert c["offered_a"] == 10.0 and round(c["pwm_duty"], 1) == 16.7

        rig.json("limit", "-c", "1", "4")
        rig.wait(lambda: rig.connector()["ocpp_status"] == "SuspendedEVSE", "paused below 6 A")
        c = rig.connector()
        assert c["pwm_duty"] == 100.0 and c["iec_state"] == "B" and c["contactor"]["closed"] is False
        assert c["session"]["transaction"] is not None, "the transaction goes on"

        text = rig.cli("limit", "clear")
        assert text.exit_code == 0 and "operator limit cleared" in text.stdout, text.stdout
        c = rig.wait(lambda: (c := rig.connector())["ocpp_status"] == "Charging" and c, "charging again")
        assert "operator" not in c["limit"]["claims"] and c["offered_a"] == 32.0
    finally:
        rig.cli("limit", "clear")
        rig.idle()


def test_limit_refuses_what_it_cannot_set(rig: Rig):
    assert rig.cli("limit", "fast").exit_code == 2
    result = rig.json("limit", "99", code=1)
    assert result["error"]["code"] == "bad_request" and "0 to 80 A" in result["error"]["message"]
    result = rig.json("limit", "-c", "5", "10", code=1)
    assert result["error"]["code"] == "no_connector"
    assert "operator" not in rig.connector()["limit"]["claims"]


@pytest.fixture
def state_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="cp-limit-", dir="/tmp"))  # short: a socket path
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _daemon(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
    with open(log, "ab") as stderr:
        return subprocess.Popen([sys.executable, "-m", "chargepoint.cli", "run", "--config", str(config)],
                                stderr=stderr, env=env)


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(30)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()


def test_the_operator_limit_survives_a_restart(state_root: Path):
    from tests.integration.control_rig import free_port, station_toml, wait_until

    sock = str(state_root / "control.sock")
    config = state_root / "station.toml"
    config.write_text(station_toml(state_root, free_port(), sock))  # no CSMS: the limit is local
    log = state_root / "daemon.log"

    def ask(*args: str) -> str:
        result = CliRunner().invoke(main, [*args, "--socket", sock])
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result.stdout

    for step in ("set", "check"):
        Path(sock).unlink(missing_ok=True)
        daemon = _daemon(config, log)
        try:
            wait_until(lambda d=daemon: d.poll() is not None or os.path.exists(sock), 30, "the socket")
            assert daemon.poll() is None, log.read_text()
            if step == "set":
                assert "operator limit 12 A" in ask("limit", "12")
            else:
                assert "operator 12 A (binds)" in ask("status")
        finally:
            _stop(daemon)
        assert daemon.returncode == 0, log.read_text()[-3000:]
