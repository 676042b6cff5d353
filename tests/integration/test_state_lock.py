"""What `chargepoint run` finds in its state directory: another daemon, or a damaged database.

The lab found a second daemon running a second station on the first one's
database and draining its outbox. Here two real daemons are started as users
start them (subprocesses on the sim hal, against a loopback CSMS); the second
must stop at once with the pid of the first, and the first must not notice.

A damaged state database (the kinds of damage are made in
tests/unit/test_store_corruption.py) must stop the daemon with one line naming
the file, not a traceback, or with ``recreate_corrupt_state`` be set aside
while the station starts afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from ocpp.v16 import call

from chargepoint.app.statelock import LOCK_NAME, StateDirLocked, StateLock
from chargepoint.core.storage.store import DB_NAME
from tests.integration.conftest import StationLog, running, station_config, until
from tests.integration.loopback_csms import LoopbackCsms
from tests.unit.test_store_corruption import corrupt_pages, filled_database, undecodable_row, zero_length

ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, csms_url: str, identity: str, **station: str) -> Path:
    config = tmp_path / "station.toml"
    extra = "".join(f"{name} = {value}\n" for name, value in station.items())
    config.write_text(f"""
[station]
identity = "{identity}"
state_dir = "{tmp_path / 'state'}"
{extra}
[ocpp]
csms_url = "{csms_url}"
reconnect_min_s = 0.2
[control]
socket = "{tmp_path / 'control.sock'}"
""")
    return config


async def spawn(config: Path) -> asyncio.subprocess.Process:
    """``chargepoint run --config`` from this tree, as systemd would start it."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chargepoint.cli", "run", "--config", str(config),
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})


async def stop(process: asyncio.subprocess.Process) -> tuple[int, str]:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    return process.returncode, stderr.decode()


def boot_written(state: Path) -> bool:
    """The first daemon has written what its boot writes after the CSMS's answers (the heartbeat
    interval, the startup security event marked sent): later, nothing writes unless asked."""
    db = sqlite3.connect(f"file:{state / DB_NAME}?mode=ro", uri=True)
    try:
        interval = db.execute("SELECT 1 FROM settings WHERE name = 'heartbeat_interval_s'").fetchall()
        unsent = db.execute("SELECT 1 FROM security_log WHERE sent = 0").fetchall()
    finally:
        db.close()
    return bool(interval) and not unsent


def database_files(state: Path) -> dict[str, str]:
    """Every file of the state database (with its WAL) by content."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(state.glob("chargepoint.sqlite*")) if not path.name.endswith("-shm")}


async def until_quiet(state: Path, timeout: float = 20) -> None:
    """Until the running daemon has nothing left to write from its start (no unsent security event)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        db = sqlite3.connect(f"file:{state / DB_NAME}?mode=ro", uri=True)
        try:
            unsent = db.execute("SELECT count(*) FROM security_log WHERE sent = 0").fetchone()[0]
        finally:
            db.close()
        if unsent == 0:
            return
        assert asyncio.get_running_loop().time() < deadline, "the startup security event was never sent"
        await asyncio.sleep(0.05)


async def test_a_second_daemon_is_refused_with_the_pid_of_the_first_which_runs_on(
        tmp_path: Path, csms: LoopbackCsms) -> None:
    config = write_config(tmp_path, csms.url, "CP-LOCK-1")
    state = tmp_path / "state"
    first = await spawn(config)
    try:
        await csms.wait_for("StatusNotification", count=2, timeout=20)
        await until(lambda: boot_written(state), 10, "the first daemon's writes after its boot")
        assert (state / LOCK_NAME).read_text().strip() == str(first.pid)
        # The first daemon's own last write of its start: the startup security event marked sent.
        await csms.wait_for("SecurityEventNotification", timeout=20)
        await until_quiet(state)
        before = database_files(state)
        assert "chargepoint.sqlite" in before

        second = await spawn(config)
        try:
            _, stderr = await asyncio.wait_for(second.communicate(), 20)
        except TimeoutError:
            second.kill()
            await second.wait()
            pytest.fail("the second daemon runs on the same state directory")
        log = stderr.decode()
        assert second.returncode == 1, log
        assert "Traceback" not in log, log
        last = log.strip().splitlines()[-1]
        assert f"pid {first.pid}" in last and str(state) in last, log

        assert first.returncode is None, "the first daemon was disturbed"
        assert database_files(state) == before, "the second daemon wrote to the first one's database"
        assert (state / LOCK_NAME).read_text().strip() == str(first.pid)
        assert csms.paths == ["/ocpp/CP-LOCK-1"], "the second daemon connected as the same station"
        answer = await csms.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
        assert answer.status == "Accepted", "the first daemon still answers its CSMS"
        code, log = await stop(first)
        assert code == 0, log
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()


async def test_a_killed_daemon_leaves_no_lock_behind(tmp_path: Path, csms: LoopbackCsms) -> None:
    config = write_config(tmp_path, csms.url, "CP-LOCK-2")
    first = await spawn(config)
    await csms.wait_for("BootNotification", timeout=20)
    first.kill()
    await first.wait()
    assert (tmp_path / "state" / LOCK_NAME).read_text().strip() == str(first.pid), "a stale pid, no lock"
    again = await spawn(config)
    try:
        await csms.wait_for("BootNotification", count=2, timeout=20)
        assert (tmp_path / "state" / LOCK_NAME).read_text().strip() == str(again.pid)
    finally:
        code, log = await stop(again)
    assert code == 0, log


def test_the_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    held = StateLock(tmp_path / "state")
    held.acquire()
    other = StateLock(tmp_path / "state")
    with pytest.raises(StateDirLocked, match=f"pid {os.getpid()}") as refused:
        other.acquire()
    assert refused.value.state_dir == tmp_path / "state" and not other.held
    held.release()
    other.acquire()
    assert (tmp_path / "state" / LOCK_NAME).read_text() == f"{os.getpid()}\n"
    other.release()
    assert (tmp_path / "state" / LOCK_NAME).read_text() == "", "no pid of a process not holding it"


@pytest.mark.parametrize("damage", [corrupt_pages, zero_length, undecodable_row], ids=lambda d: d.__name__)
async def test_run_refuses_a_damaged_database_with_one_line(tmp_path: Path, damage) -> None:
    path = await damage_state(tmp_path, damage)
    process = await spawn(write_config(tmp_path, "ws://127.0.0.1:9/ocpp", "CP-DAMAGED"))
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), 20)
    except TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail("the daemon started on a damaged state database")
    log = stderr.decode()
    assert process.returncode == 1, log
    assert "Traceback" not in log, log
    assert log.strip().splitlines()[-1].startswith(f"Error: {path}: "), log


async def test_a_damaged_queue_is_set_aside_and_the_station_starts_when_configured(
        tmp_path: Path, csms: LoopbackCsms, station_log: StationLog) -> None:
    """Damage only reading the queue shows (the file itself checks out) gets the same recovery."""
    path = await damage_state(tmp_path, undecodable_row)
    config = station_config(csms.url, str(path.parent), station={"recreate_corrupt_state": True})
    async with running(config) as daemon:
        await csms.wait_for("StatusNotification", count=2, timeout=20)
        assert len(daemon.outbox) == 0 and await daemon.outbox.open_transactions() == []
    [line] = station_log.matching("moved to")
    assert str(path) in line and "queued transaction message 7 cannot be decoded" in line
    assert len(list(path.parent.glob(f"{DB_NAME}.corrupt-*"))) == 1
    assert csms.of("StopTransaction") == [], "nothing of the damaged queue was sent"


async def damage_state(tmp_path: Path, damage) -> Path:
    """A state database in ``tmp_path / "state"`` as the store writes it, then damaged."""
    path = await filled_database(tmp_path / "state")
    damage(path)
    return path
