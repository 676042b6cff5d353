"""The daemon's state directory, lock and log are its user's alone, whatever the umask it starts with.

Started from a shell (umask 022) the state directory came out 0755 and the log
file (card ids, addresses) 0644, readable by every local user. Each test sets
that umask and restores the one it found.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargepoint.app import filemodes
from chargepoint.app.logfile import LogFile
from chargepoint.app.statelock import StateLock

#: The module (``chargepoint.cli.main`` the attribute is the command group).
cli = importlib.import_module("chargepoint.cli.main")


@pytest.fixture
def shell_umask() -> Iterator[None]:
    before = os.umask(0o022)  # the usual one, with which files come out readable by all
    try:
        yield
    finally:
        os.umask(before)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_state_directory_and_its_lock_are_private(tmp_path, shell_umask):
    state = tmp_path / "var" / "state"
    lock = StateLock(state)
    lock.acquire()
    try:
        assert mode(state) == 0o700 and mode(state / "chargepoint.lock") == 0o600
    finally:
        lock.release()


def test_a_lock_file_an_older_release_left_readable_is_made_private(tmp_path, shell_umask):
    (tmp_path / "chargepoint.lock").write_text("")
    os.chmod(tmp_path / "chargepoint.lock", 0o644)
    tmp_path.chmod(0o750)  # the owner's (or systemd's StateDirectoryMode=) choice: kept
    lock = StateLock(tmp_path)
    lock.acquire()
    lock.release()
    assert mode(tmp_path / "chargepoint.lock") == 0o600 and mode(tmp_path) == 0o750


def test_the_log_file_its_backups_and_its_directory_are_private(tmp_path, shell_umask):
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    (logs / "chargepoint.log.1").write_text("an older release's\n")
    os.chmod(logs / "chargepoint.log.1", 0o644)
    fresh = LogFile(str(tmp_path / "fresh"), max_bytes=400, backups=2)
    older = LogFile(str(tmp_path), max_bytes=400, backups=2)
    log = logging.getLogger("chargepoint.test.filemodes")
    fresh.attach()
    older.attach()
    try:
        for n in range(20):  # rotated a few times
            log.warning("line %d with card CAFE%04d", n, n)
    finally:
        fresh.detach()
        older.detach()
    assert mode(tmp_path / "fresh" / "logs") == 0o700
    assert len(fresh.files()) == 3 and len(older.files()) == 3
    assert {oct(mode(p)) for p in [*fresh.files(), *older.files()]} == {oct(0o600)}


def test_chargepoint_run_takes_the_umask_of_the_systemd_unit(tmp_path, shell_umask, monkeypatch):
    """Everything else the daemon makes (diagnostics, firmware records) comes out private too."""
    command = importlib.import_module("chargepoint.app.command")
    monkeypatch.setattr(command, "setup_logging", lambda level: None)
    result = CliRunner().invoke(cli.main, ["run", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code != 0  # stops at the configuration, after taking the umask
    assert os.umask(0o022) == filemodes.UMASK
