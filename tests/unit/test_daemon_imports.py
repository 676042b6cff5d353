"""What ``chargepoint run`` loads: the daemon, not the technician's CLI nor the safety loop.

The daemon lives for months on a small board, and every module it imports stays
resident (bench/README.md, footprint). The launcher hands ``run`` straight to
``chargepoint.app.command``, which reads its options without click; the safety
loops run in the supervisor; the firmware guard's command line and the
configuration's spelling hints load only when used. Checked in a fresh
interpreter that imports what ``run`` does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

NEVER_IN_THE_DAEMON = (
    "chargepoint.cli",  # the technician's commands, their client and rendering
    "rich",
    "click",  # `run` parses its two options itself (app/command.py)
    "gettext",  # click's and argparse's messages
    "chargepoint.safety.evse",  # the loop runs in the supervisor
    "chargepoint.supervisor.station",
    "hal.sim.world",  # the simulation is the supervisor's hardware
    "argparse",  # the firmware guard's own command line
    "difflib",  # "did you mean" for a wrong configuration key
)

SCRIPT = """
import json, sys
import chargepoint.launcher, chargepoint.app.command, chargepoint.app.daemon, chargepoint.backends.remote
print(json.dumps(sorted(sys.modules)))
"""


def test_chargepoint_run_imports_neither_the_cli_nor_the_safety_loop():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).parents[2], check=True)
    loaded = set(json.loads(result.stdout))
    assert "chargepoint.app.daemon" in loaded and "chargepoint.supervisor.client" in loaded
    wrong = sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in NEVER_IN_THE_DAEMON))
    assert not wrong, f"the daemon's imports pull in {wrong}"


LAUNCH = """
import atexit, json, runpy, sys
atexit.register(lambda: print(json.dumps(sorted(sys.modules))))
way, sys.argv = sys.argv[1], ["chargepoint", "run", "--config", sys.argv[2]]
if way == "launcher":  # the console script
    from chargepoint.launcher import main
    sys.exit(main())
runpy.run_module("chargepoint", run_name="__main__", alter_sys=True)  # as the daemon restarts itself
"""


@pytest.mark.parametrize("way", ["launcher", "python -m chargepoint"])
def test_the_launcher_hands_run_to_the_daemon_command_without_loading_the_cli(tmp_path, way):
    result = subprocess.run([sys.executable, "-c", LAUNCH, way, str(tmp_path / "missing.toml")],
                            capture_output=True, text=True, timeout=60, cwd=Path(__file__).parents[2])
    assert result.returncode == 1 and "configuration rejected" in result.stderr, result.stderr[-2000:]
    loaded = json.loads(result.stdout.splitlines()[-1])
    assert "chargepoint.app.command" in loaded
    assert not [m for m in loaded if m.startswith(("chargepoint.cli", "click"))], loaded
