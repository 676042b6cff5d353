"""``chargepoint mode`` against a running daemon (subprocess, sim hal, the simulated house's grid meter).

The daemon reads the simulated house's grid meter, sets the load_manager claim
from it, changes the solar mode when told, shows mode and surplus in
``status``, and keeps the mode across a restart.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from chargepoint.cli import main
from tests.integration.test_limit_cli import _daemon, _stop

if TYPE_CHECKING:
    from tests.integration.control_rig import Rig

pytest_plugins = ("tests.integration.control_rig",)  # the rig fixture

GRID = """
[load]
enabled = true
main_fuse_a = 25

[load.meter]
kind = "sim"
poll_interval_s = 0.5

[house]
pv_peak_w = 0
day_start_h = 23
"""


@pytest.fixture
def state_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="cp-mode-", dir="/tmp"))  # short: a socket path
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_mode_is_set_shown_and_kept_across_a_restart(state_root: Path):
    from tests.integration.control_rig import free_port, station_toml, wait_until

    sock = str(state_root / "control.sock")
    config = state_root / "station.toml"
    config.write_text(station_toml(state_root, free_port(), sock, extra=GRID))
    log = state_root / "daemon.log"

    def ask(*args: str, code: int = 0) -> str:
        result = CliRunner().invoke(main, [*args, "--socket", sock])
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        return result.stdout

    for step in ("set", "check"):
        Path(sock).unlink(missing_ok=True)
        daemon = _daemon(config, log)
        try:
            wait_until(lambda d=daemon: d.poll() is not None or os.path.exists(sock), 30, "the socket")
            assert daemon.poll() is None, log.read_text()
            if step == "set":
                assert "Solar mode: fast." in ask("mode")
                said = json.loads(ask("mode", "pv", "--json"))
                assert said["mode"] == "pv" and said["grid_meter"] is True
                ask("mode", "sunny", code=2)  # usage: not a mode
                # The mode applies at the next grid reading.
                status = wait_until(lambda: "solar" in (s := json.loads(ask("status", "--json")))[
                    "connectors"][0]["limit"]["claims"] and s, 15, "a grid reading in pv mode")
                energy = status["energy"]
                assert energy["mode"] == "pv" and energy["grid_meter"]["state"] == "ok"
                assert energy["grid_a"][0] > 0, "night: the house imports"
                claims = status["connectors"][0]["limit"]["claims"]
                assert claims["solar"] == 0.0, "pv at night: paused"
                assert 20 < claims["load_manager"] <= 24, claims
                text = ask("status")
                assert "solar      mode pv" in text and "main fuse  25 A" in text, text
            else:
                assert "Solar mode: pv." in ask("mode"), "kept across the restart"
                ask("mode", "fast")
        finally:
            _stop(daemon)
        assert daemon.returncode == 0, log.read_text()[-3000:]


def test_mode_without_a_grid_meter_is_refused(rig: Rig):
    said = rig.json("mode")
    assert said == {"mode": "fast", "grid_meter": False, "energy": None}
    refused = rig.json("mode", "pv", code=1)
    assert refused["error"]["code"] == "refused" and "load.enabled" in refused["error"]["message"]
    assert rig.status()["energy"] is None
