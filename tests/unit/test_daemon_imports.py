"""What ``chargepoint run`` loads: the daemon, not the technician's CLI nor the safety loop.

The daemon lives for months on a small board, and every module it imports stays
resident (bench/README.md, footprint). The launcher hands ``run`` straight to
``chargepoint.app.command``, which reads its options with argparse; the safety
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
    "click",  # `run` reads its two options with argparse (app/command.py)
    "chargepoint.safety.evse",  # the loop runs in the supervisor
    "chargepoint.supervisor.station",
    "hal.sim.world",  # the simulation is the supervisor's hardware
    "difflib",  # "did you mean" for a wrong configuration key
)

#: Loaded when first used, not at start: each stays resident for the daemon's life once imported.
AT_FIRST_USE = (
    "chargepoint.core.firmware.package",  # reading a firmware package: when an update installs
    "chargepoint.core.firmware.archive",
    "tarfile",  # the same, and writing a diagnostics archive
    "gzip",
    "packaging",  # the package's PEP 440 version
    "ftplib",  # an FTP download or upload
    "chargepoint.control.selftest",  # `chargepoint selftest`, the commissioning test
    "chargepoint.config.placeholders",
    "hal.meters.bus",  # the simulated meter's Modbus driver, with pymodbus: at its first read, in a thread
    "pymodbus",
)

#: Loaded only where OCPP 2.0.1, or 2.1 (built on it), is offered (``protocol.registry.load``): a
#: 1.6-only daemon knows 2.0.1's names (``v201.variables``) but not its device model nor its adapter.
ONLY_WITH_2_0_1 = (
    "chargepoint.protocol.v201.device_model",
    "chargepoint.protocol.v201.adapter",
    "chargepoint.protocol.v21.adapter",
    "ocpp.v201",
    "ocpp.v21",
)

SCRIPT = """
import json, sys
import chargepoint.launcher, chargepoint.app.command, chargepoint.app.daemon, chargepoint.backends.remote
from chargepoint.protocol import registry
for offered in sys.argv[1:]:  # as the daemon loads the versions it offers
    registry.load(offered)
print(json.dumps(sorted(sys.modules)))
"""


def daemon_modules(*offered: str) -> set[str]:
    """What a daemon offering ``offered`` has imported once it started (in a fresh interpreter)."""
    result = subprocess.run([sys.executable, "-c", SCRIPT, *offered], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).parents[2], check=True)
    return set(json.loads(result.stdout))


def within(loaded: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == n or m.startswith(n + ".") for n in names))


def test_chargepoint_run_imports_neither_the_cli_nor_the_safety_loop():
    loaded = daemon_modules("1.6")
    assert "chargepoint.app.daemon" in loaded and "chargepoint.supervisor.client" in loaded
    wrong = within(loaded, NEVER_IN_THE_DAEMON)
    assert not wrong, f"the daemon's imports pull in {wrong}"
    early = within(loaded, AT_FIRST_USE)
    assert not early, f"the daemon's imports pull in {early}, which it needs only when used"


def test_a_daemon_offering_only_1_6_loads_nothing_of_2_0_1_but_its_names():
    loaded = daemon_modules("1.6")
    assert "chargepoint.protocol.v201.variables" in loaded  # masks 2.0.1's passwords, reads its names
    assert within(loaded, ONLY_WITH_2_0_1) == []
    offering_2_1 = daemon_modules("2.1", "1.6")
    assert {"chargepoint.protocol.v201.device_model", "chargepoint.protocol.v21.adapter"} <= offering_2_1


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
