"""A firmware update killed at any instant ends in one truthful final status, the right version
running and nothing left behind.

Each case builds exactly what a kill at one step of an update leaves on disk (``status.json``,
``trial.json``, the ``current`` link, the versions directory, the download and unpack
directories), then does what systemd does next: the guard's ``prestart``, the daemon of whichever
version ``current`` names (its ``resume``, then its BootNotification accepted), and later the
guard's timer (``check``, long after any deadline). No process is killed: the state is the kill."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from chargepoint.core.firmware import FirmwareManager, FirmwareState, FirmwareStatus, trial
from chargepoint.core.firmware import installer as installer_module
from chargepoint.core.firmware.installer import MARKER, VenvInstaller
from hal.clock import ManualClock

S = FirmwareStatus
OLD, NEW = "0.1.0", "0.2.0"
#: Far past any trial's deadline: the timer's check rolls back whatever is still pending then.
LATER = 10_000_000.0


class _Station:
    """Connectors as the store keeps them across a restart: held Unavailable until given back."""

    def __init__(self, operative: bool) -> None:
        self.connectors: dict[int, Any] = {1: None}
        self.operative = {1: operative}

    def view(self, evse_id: int) -> Any:
        return SimpleNamespace(operative=self.operative[evse_id])

    def active_transactions(self) -> list[Any]:
        return []

    def change_availability(self, evse_id: int, operative: bool) -> None:
        for connector in (self.operative if evse_id == 0 else [evse_id]):
            self.operative[connector] = operative

    async def stop_all(self, reason: Any) -> None:
        return None


@dataclass
class Disk:
    """The station's state directory and versions directory, as a kill left them."""

    state: Path
    venvs: Path
    held: bool = False

    @property
    def firmware(self) -> Path:
        return self.state / "firmware"

    def status(self, status: FirmwareStatus, version: str | None = None, *, held: bool = False,
               unreported: bool = False) -> None:
        self.held = held
        record = {"status": status.value, "request_id": None, "location": "http://h/pkg.whl",
                  "version": version, "detail": None, "since": 1.0, "unreported": unreported,
                  "held": {"1": True} if held else None}
        (self.firmware / "status.json").write_text(json.dumps(record))

    def venv(self, version: str, *, complete: bool = True) -> None:
        (self.venvs / version / "bin").mkdir(parents=True, exist_ok=True)
        (self.venvs / version / "pyvenv.cfg").write_text("home = /usr/bin\n")
        if complete:
            (self.venvs / version / "bin" / "chargepoint").write_text("#!/bin/sh\n")

    def link(self, version: str) -> None:
        trial.switch(self.venvs, version)

    def installing(self, version: str) -> None:
        """What the installer leaves from the start of an install: its mark and the unpacked wheel."""
        (self.firmware / MARKER).write_text(version)
        (self.firmware / f"{MARKER}.tmp").write_text(version)  # and, killed as it wrote it, its file
        (self.firmware / "unpacked").mkdir(exist_ok=True)
        (self.firmware / "unpacked" / f"chargepoint-{version}-py3-none-any.whl").write_bytes(b"PK")

    def trial(self, state: str = trial.PENDING, *, starts: int = 0, reason: str | None = None) -> None:
        trial.write(self.state, {"state": state, "version": NEW, "target": NEW, "previous": OLD,
                                 "deadline_s": 60, "installed_at": 100.0, "starts": starts,
                                 "started_at": 200.0 if starts else None, "reason": reason})

    def leftovers(self) -> list[str]:
        """What an ended update must not leave: work directories, its mark, a trial record."""
        names = ("download", "unpacked", MARKER, f"{MARKER}.tmp", trial.RECORD, "status.json.tmp")
        return [name for name in names if (self.firmware / name).exists()]

    def versions(self) -> set[str]:
        return {p.name for p in self.venvs.iterdir()}


@dataclass
class Start:
    """One start of the service as systemd makes it, and what came of it."""

    guard: int
    running: str
    manager: FirmwareManager
    station: _Station
    said: list[FirmwareState] = field(default_factory=list)

    @property
    def finals(self) -> list[FirmwareState]:
        return [s for s in self.said if s.status.final]


@pytest.fixture
def disk(tmp_path: Path) -> Disk:
    d = Disk(tmp_path / "state", tmp_path / "venvs")
    d.firmware.mkdir(parents=True)
    d.venv(OLD)
    (d.venvs / trial.LINK).symlink_to(OLD)
    return d


async def start(disk: Disk) -> Start:
    """ExecStartPre (the guard script's prestart), then the daemon from ``current``: its resume, its
    first BootNotification accepted (the watchdog fed), and any confirmation it starts."""
    guard = trial.main(["prestart", "--state-dir", str(disk.state), "--venvs-dir", str(disk.venvs)])
    running = trial.current(disk.venvs) or "?"
    station = _Station(operative=not disk.held)
    installer = VenvInstaller(str(disk.venvs), str(disk.state), running_version=running, deadline_s=60)
    manager = FirmwareManager(station, ManualClock(), str(disk.state), installer, [],
                              running_version=running, restart=lambda: None)
    run = Start(guard, running, manager, station)
    manager.listeners.append(run.said.append)
    await manager.resume()
    manager.boot_accepted()
    if manager._task is not None:
        await manager._task
    disk.held = False
    return run


def saved(disk: Disk) -> dict[str, Any]:
    return json.loads((disk.firmware / "status.json").read_text())


async def ends(disk: Disk, status: FirmwareStatus, running: str, *, says: str = "") -> Start:
    """A start after the kill ends the update with ``status`` (said once), ``running`` runs, the
    connectors are given back, nothing is left; the timer's check and a further start change
    nothing."""
    run = await start(disk)
    assert run.guard == 0
    assert [s.status for s in run.finals] == [status], run.said
    assert says in (run.finals[0].detail or ""), run.finals[0]
    assert run.running == running and trial.current(disk.venvs) == running
    assert run.station.operative == {1: True}, "the connectors held for the install are given back"
    assert disk.leftovers() == []
    assert saved(disk)["status"] == status.value and saved(disk)["held"] is None
    assert trial.check(disk.state, disk.venvs, LATER) is None, "the timer finds nothing to roll back"
    again = await start(disk)
    assert again.said == [] and again.running == running, "a later restart says nothing new"
    assert again.manager.state.status is status
    return run


# ---------------------------------------------------------------- before the switch
async def test_a_kill_while_downloading_is_download_failed_without_the_partial_file(disk: Disk) -> None:
    disk.status(S.DOWNLOADING)
    (disk.firmware / "status.json.tmp").write_text('{"status": "downl')  # killed as it saved a status
    (disk.firmware / "download").mkdir()
    (disk.firmware / "download" / "pkg.whl.part").write_bytes(b"half")
    await ends(disk, S.DOWNLOAD_FAILED, OLD, says="restarted during the download")
    assert disk.versions() == {OLD, "current"}


@pytest.mark.parametrize("status", [S.DOWNLOADED, S.SIGNATURE_VERIFIED, S.INSTALL_SCHEDULED])
async def test_a_kill_between_download_and_install_is_installation_failed_with_nothing_installed(
        disk: Disk, status: FirmwareStatus) -> None:
    disk.status(status, held=status is S.INSTALL_SCHEDULED)
    (disk.firmware / "download").mkdir()
    (disk.firmware / "download" / "pkg.whl").write_bytes(b"whole")
    await ends(disk, S.INSTALLATION_FAILED, OLD, says="nothing was installed")
    assert disk.versions() == {OLD, "current"}


async def test_a_kill_while_the_venv_is_made_removes_the_half_made_venv_and_work_files(disk: Disk) -> None:
    disk.status(S.INSTALLING, held=True)
    disk.installing(NEW)
    disk.venv(NEW, complete=False)
    disk.venv("0.0.9")  # an older version kept on purpose: not the killed install's
    disk.venv(".0.0.8.removing", complete=False)  # an old one the install was removing
    await ends(disk, S.INSTALLATION_FAILED, OLD, says=f"version {OLD} runs as before")
    assert disk.versions() == {OLD, "0.0.9", "current"}


async def test_old_environments_are_renamed_before_they_are_removed(
        disk: Disk, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill while an old environment is removed leaves no half of it under its version's name."""
    for version in ("0.0.7", "0.0.8"):
        disk.venv(version)
    installer = VenvInstaller(str(disk.venvs), str(disk.state), running_version=OLD, deadline_s=60, keep=2)
    renamed: list[str] = []
    real = installer_module.shutil.rmtree

    def rmtree(path: Any, ignore_errors: bool = False) -> None:
        renamed.append(Path(path).name)
        real(path, ignore_errors=ignore_errors)

    monkeypatch.setattr(installer_module.shutil, "rmtree", rmtree)
    installer._prune(NEW)
    assert {".0.0.7.removing", ".0.0.8.removing"} <= set(renamed)
    assert not {"0.0.7", "0.0.8"} & set(renamed)
    assert disk.versions() == {OLD, "current"}


async def test_a_kill_after_the_trial_is_recorded_but_before_the_switch_restarts_nothing(
        disk: Disk) -> None:
    disk.status(S.INSTALLING, held=True)
    disk.installing(NEW)
    disk.venv(NEW)
    disk.trial()
    run = await ends(disk, S.INSTALLATION_FAILED, OLD, says=f"before switching to version {NEW}")
    assert "on trial" not in (run.finals[0].detail or "")
    assert disk.versions() == {OLD, "current"}


# ---------------------------------------------------------------- at and after the switch
async def test_a_kill_at_the_instant_the_link_switches_goes_on_as_the_trial_and_ends_installed(
        disk: Disk) -> None:
    """The old daemon switched the link but was killed before it saved InstallRebooting: the new
    version is on trial, is confirmed at its accepted boot and says Installed, not InstallationFailed;
    the guard has nothing to roll back."""
    disk.status(S.INSTALLING, held=True)
    disk.installing(NEW)
    disk.venv(NEW)
    disk.trial()
    disk.link(NEW)
    run = await ends(disk, S.INSTALLED, NEW)
    assert run.finals[0].version == NEW
    assert disk.versions() == {OLD, NEW, "current"}, "the old version stays to come back to"


async def test_a_kill_before_the_restart_ends_installed(disk: Disk) -> None:
    disk.status(S.INSTALL_REBOOTING, NEW, held=True)
    disk.installing(NEW)
    disk.venv(NEW)
    disk.trial()
    disk.link(NEW)
    await ends(disk, S.INSTALLED, NEW)


@pytest.mark.parametrize("status", [S.INSTALL_REBOOTING, S.INSTALLING])
async def test_a_kill_in_the_new_versions_first_seconds_rolls_back_and_says_why(
        disk: Disk, status: FirmwareStatus) -> None:
    """The new version had started once (the guard counted it) and was killed before it confirmed:
    the next start is the old version, which says the new one stopped before its confirmation."""
    disk.status(status, NEW if status is S.INSTALL_REBOOTING else None, held=True)
    disk.installing(NEW)
    disk.venv(NEW)
    disk.trial(starts=1)
    disk.link(NEW)
    await ends(disk, S.INSTALLATION_FAILED, OLD, says=f"version {NEW} stopped before")
    assert disk.versions() == {OLD, "current"}, "the version that failed is removed"


async def test_a_kill_after_the_confirmation_is_written_ends_installed(disk: Disk) -> None:
    disk.status(S.INSTALL_REBOOTING, NEW, held=True)
    disk.installing(NEW)
    disk.venv(NEW)
    disk.trial(trial.CONFIRMED, starts=1)
    disk.link(NEW)
    await ends(disk, S.INSTALLED, NEW)


async def test_a_kill_after_installed_is_saved_sends_it_once_and_removes_the_record(disk: Disk) -> None:
    disk.status(S.INSTALLED, NEW, unreported=True)
    disk.installing(NEW)
    disk.venv(NEW)
    disk.trial(trial.CONFIRMED, starts=1)
    disk.link(NEW)
    run = await start(disk)
    assert run.said == [] and run.manager.state.status is S.INSTALLED and run.manager.unreported, \
        "Installed was saved: the adapter sends it after the boot, once"
    assert disk.leftovers() == [] and disk.versions() == {OLD, NEW, "current"}


async def test_a_kill_after_a_rollback_before_the_failure_is_saved_says_the_guards_reason(
        disk: Disk) -> None:
    disk.status(S.INSTALL_REBOOTING, NEW, held=True)
    disk.installing(NEW)
    disk.venv(NEW)
    disk.trial(trial.ROLLED_BACK, starts=1,
               reason=f"version {NEW} had no accepted BootNotification within 60 s")
    await ends(disk, S.INSTALLATION_FAILED, OLD, says="no accepted BootNotification within 60 s")
    assert disk.versions() == {OLD, "current"}


async def test_leftovers_are_removed_only_inside_their_directories(disk: Disk, tmp_path: Path) -> None:
    """A work directory that is a link is unlinked, never followed; a mark naming something that is
    no plain environment of the versions directory removes nothing."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    (disk.firmware / "download").symlink_to(outside)
    (disk.firmware / "unpacked").symlink_to(outside)
    disk.status(S.INSTALLING, held=True)
    for name in ("..", "current", OLD, "../outside"):
        (disk.firmware / MARKER).write_text(name)
        await start(disk)
        assert (outside / "keep").exists() and trial.current(disk.venvs) == OLD
        assert (disk.venvs / OLD / "bin" / "chargepoint").exists()
        assert not (disk.firmware / MARKER).exists() and disk.leftovers() == []



async def test_a_rollback_at_the_deadline_says_when_the_boot_was_accepted_but_the_watchdog_not_fed(
        disk: Disk) -> None:
    """The new version runs and its boot is accepted, but it is not healthy: never confirmed, the
    timer rolls it back, and the reason says what happened, not "no accepted BootNotification"."""
    disk.status(S.INSTALL_REBOOTING, NEW, held=True)
    disk.installing(NEW)
    disk.venv(NEW)
    disk.trial()
    disk.link(NEW)
    assert trial.prestart(disk.state, disk.venvs, 200.0) == f"starting version {NEW} on trial"
    installer = VenvInstaller(str(disk.venvs), str(disk.state), running_version=NEW, deadline_s=60)
    manager = FirmwareManager(_Station(operative=False), ManualClock(), str(disk.state), installer, [],
                              running_version=NEW, restart=lambda: None, healthy=lambda: False)
    await manager.resume()
    manager.boot_accepted()
    assert manager._noting is not None
    await manager._noting
    said = trial.check(disk.state, disk.venvs, LATER) or ""
    assert f"version {NEW} was not confirmed within 60 s" in said and "watchdog was not fed" in said
    run = await start(disk)  # what the timer's restart brings: the old version, which says why
    assert [(s.status, s.detail) for s in run.finals] == [(S.INSTALLATION_FAILED, said.partition(": ")[2])]
    assert run.running == OLD and disk.leftovers() == [] and disk.versions() == {OLD, "current"}
