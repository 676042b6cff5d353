"""``chargepoint plan`` and ``chargepoint mode`` on a running home station with a simulated grid
meter: a plan is set, shown in words and in the status data, and cleared; without a grid meter a plan
is refused with the reason. An in-process daemon on the sim hal, the real CLI over the real socket."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargepoint.cli import main
from tests.integration.conftest import running, until
from tests.integration.test_standalone import cli, config


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cp-pl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def words(sock: Path, *args: str, code: int = 0) -> str:
    result = await asyncio.to_thread(CliRunner().invoke, main, [*args, "--socket", str(sock)])
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    return result.stdout + result.stderr


async def test_a_departure_plan_is_set_shown_and_cleared(tmp_path, socket_dir):
    state, sock = tmp_path / "state", socket_dir / "control.sock"
    data = config(state, sock)
    data.update(load={"enabled": True, "meter": {"kind": "sim"}}, solar={"mode": "pv"},
                house={"pv_peak_w": 6000, "day_start_h": 11})
    async with running(data):
        await until(sock.exists, 10, "the control socket")
        assert (await words(sock, "plan")).strip() == "Connector 1: no departure plan (solar mode pv)."
        mode = await words(sock, "mode")
        assert "connector 1: no EV: one plugged in starts once the surplus has covered 6 A for 60 s" in mode
        by = time.strftime("%H:%M", time.localtime(time.time() + 3 * 3600))
        text = await words(sock, "plan", "12", "--by", by)
        assert text.startswith(f"Connector 1: departure plan 12.0 kWh by {by}: waiting for the EV"), text
        status = await cli(sock, "status")
        plan = status["energy"]["connectors"][0]["plan"]
        assert plan["energy_wh"] == 12000 and plan["state"] == "solar"
        assert plan["words"].startswith("12.0 kWh")
        assert status["energy"]["mode"] == "pv" and "grid_w" in status["energy"]["power"]
        usage = await words(sock, "plan", "12", code=2)
        assert "needs both" in usage
        cleared = await cli(sock, "plan", "--clear")
        assert cleared["plan"] is None
        assert (await cli(sock, "status"))["energy"]["connectors"][0]["plan"] is None

    alone = config(tmp_path / "alone", socket_dir / "alone.sock")
    async with running(alone):
        await until((socket_dir / "alone.sock").exists, 10, "the control socket")
        refused = await cli(socket_dir / "alone.sock", "plan", "5", "--by", "07:00", code=1)
        assert refused["error"]["message"].startswith("a departure plan needs the grid meter")
