"""The supervisor on the reference board, in a process of its own without TLS.

On a board the supervisor makes ``ssl`` unimportable before asyncio loads it,
and aiohttp everywhere (``command.leave_out_unused_modules``: libssl, libcrypto
and aiohttp would otherwise be locked in memory for nothing). This runs the real ``Supervisor`` over
``build_board`` on examples/raspberrypi.toml with the fakes at the hardware
boundary (gpiozero's MockFactory, the ADS1015 and sysfs PWM fakes), in a
subprocess so that the blocked import cannot leak into other tests, and asks it
over its channel: it answers, steps, and ssl was never loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).parents[2] / "examples" / "raspberrypi.toml"

SCRIPT = r"""
import json, sys, tempfile
from pathlib import Path
from chargepoint.supervisor.command import leave_out_unused_modules
assert "ssl" not in sys.modules and "aiohttp" not in sys.modules, "loaded before the supervisor decided"
leave_out_unused_modules(sys.argv[1])
import asyncio
from dataclasses import replace
from chargepoint.config.safety_view import load_safety_view
from chargepoint.supervisor.client import SupervisorClient
from chargepoint.supervisor.hardware import build_board
from chargepoint.supervisor.main import Supervisor
from tests.unit.pi_fakes import FakeAds1x15, FakePwmSysfs, PilotModel, mock_factory

root = Path(tempfile.mkdtemp())
config = load_safety_view(sys.argv[1])
config = replace(config, safety=replace(config.safety, channel=str(root / "safety.sock")))
sysfs = FakePwmSysfs(root)
model = PilotModel(sysfs.duty_percent)
bus = FakeAds1x15(model.adc_volts, chip=config.board.adc.type)
hardware = build_board(config, pin_factory=mock_factory(), i2c_bus=bus, sysfs_root=root,
                       blocking_sleep=sysfs.kernel_sleep)
supervisor = Supervisor(config, hardware)

async def main():
    task = asyncio.ensure_future(supervisor.run())
    client = SupervisorClient(str(root / "safety.sock"), read_only=True)
    hello = await asyncio.to_thread(client.connect, 10.0)
    client.start()
    await asyncio.sleep(1.2)
    state = await asyncio.to_thread(client.request, "state")
    client.close()
    supervisor._stop.set()
    await task
    print(json.dumps({"ssl": sys.modules.get("ssl") is not None,
                      "aiohttp": sys.modules.get("aiohttp") is not None, "hello": hello["supervisor"],
                      "state": state["connectors"][0]["status"]}))

asyncio.run(main())
"""


def test_the_board_supervisor_runs_without_ssl_and_answers_on_its_channel():
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(EXAMPLE)], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).parents[2])
    assert result.returncode == 0, result.stderr[-3000:]
    said = json.loads(result.stdout.splitlines()[-1])
    assert said["ssl"] is False and said["aiohttp"] is False
    assert said["hello"]["backend"] == "raspberrypi" and said["hello"]["heartbeat"] is True
    state = said["state"]
    assert state["cp"] == "A" and state["contactor"] is False and state["duty"] == 100.0
