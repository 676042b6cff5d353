"""The daemon as users start it: `chargepoint run` in a subprocess, and the demo."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
from ocpp.v16 import call

from chargepoint.cli.demo import run_demo
from tests.integration.loopback_csms import LoopbackCsms


async def run_daemon(tmp_path: Path, csms: LoopbackCsms, identity: str) -> asyncio.subprocess.Process:
    """``chargepoint run`` with a minimal configuration file, as a subprocess."""
    config = tmp_path / "station.toml"
    config.write_text(f"""
[station]
identity = "{identity}"
state_dir = "{tmp_path / 'state'}"
[ocpp]
csms_url = "{csms.url}"
reconnect_min_s = 0.2
[control]
socket = "{tmp_path / 'control.sock'}"
""")
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chargepoint.cli", "run", "--config", str(config),
        stderr=asyncio.subprocess.PIPE)


async def test_daemon_subprocess_boots_and_stops_cleanly_on_sigterm(tmp_path, csms: LoopbackCsms):
    process = await run_daemon(tmp_path, csms, "CP-PROC-1")
    try:
        await csms.wait_for("StatusNotification", count=2, timeout=20)
        assert csms.paths == ["/ocpp/CP-PROC-1"]
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    log = stderr.decode()
    assert "BootNotification accepted" in log
    assert "station stopped" in log


@pytest.mark.parametrize(("ocpp", "actions"), [
    ("1.6", ("BootNotification", "Authorize", "StartTransaction", "MeterValues",
             "RemoteStopTransaction", "StopTransaction")),
    ("2.0.1", ("BootNotification", "Authorize", "TransactionEvent   Started seqNo=0",
               "TransactionEvent   Updated seqNo=1", "RequestStopTransaction",
               "TransactionEvent   Ended", "RemoteStop")),
    ("2.1", ("BootNotification", "Authorize", "TransactionEvent   Started seqNo=0",
             "RequestStopTransaction", "TransactionEvent   Ended", " EUR")),
])
async def test_demo_runs_a_whole_session_with_energy(ocpp, actions):
    lines: list[str] = []
    energy = await asyncio.wait_for(run_demo(speed=60, out=lines.append, samples=2, ocpp=ocpp), 30)
    assert energy > 0
    text = "\n".join(lines)
    for action in actions:
        assert action in text, f"{action} missing from the timeline"
    assert f"{energy} Wh delivered" in lines[-1]


async def test_reset_restarts_the_daemon_process(tmp_path, csms: LoopbackCsms):
    process = await run_daemon(tmp_path, csms, "CP-PROC-2")
    try:
        await csms.wait_for("StatusNotification", count=2, timeout=20)
        assert (await csms.call(call.Reset(type="Hard"))).status == "Accepted"
        boots = await csms.wait_for("BootNotification", count=2, timeout=30)
        assert boots[1].connection == 2, "the restarted daemon connects anew"
        assert process.returncode is None, "restarted in place, not exited"
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0
    assert "restarting (hard reset)" in stderr.decode()
