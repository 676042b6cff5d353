"""Firmware updates against a hostile service user, package or server: the guard never writes
through a planted link nor acts on a record it did not write, and drops root for its file work;
versions that are no plain name never reach the versions directory; downloads have a size cap,
archives a bound, and every failure a final status without the URL's password."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import chargepoint.core.firmware.manager as manager_module
from chargepoint.config.firmware import DOWNLOAD_RESERVE_MB
from chargepoint.core.diagnostics import (
    Diagnostics,
    DiagnosticsRequest,
    DiagnosticsSources,
    DiagnosticsStatus,
)
from chargepoint.core.firmware import (
    FirmwareManager,
    FirmwareRequest,
    FirmwareState,
    FirmwareStatus,
    Sha256Verifier,
    UpdatePolicy,
    trial,
)
from chargepoint.core.firmware.archive import ArchiveRefused, Bounds, tar_members
from chargepoint.core.firmware.installer import Installed, InstallError, VenvInstaller
from chargepoint.core.firmware.package import unpack, wheel_info
from chargepoint.core.firmware.transfer import MB, check_url, hide, shown
from hal.clock import ManualClock
from tests.firmware_rig import FileServer, FtpServer, build_wheel

S = FirmwareStatus

GUARD = Path(trial.__file__)


# -------------------------------------------------------------------- the guard
@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    venvs, state = tmp_path / "venvs", tmp_path / "state"
    for version in ("0.1.0", "0.2.0"):
        (venvs / version).mkdir(parents=True)
    (venvs / "current").symlink_to("0.2.0")
    (state / "firmware").mkdir(parents=True)
    return venvs, state


def _pending(**changes: object) -> dict[str, object]:
    """A trial of 0.2.0 whose deadline has long passed: the guard's next check rolls it back."""
    return {"state": "pending", "version": "0.2.0", "target": "0.2.0", "previous": "0.1.0",
            "deadline_s": 1, "installed_at": 0, "starts": 1, "started_at": 0, "reason": None, **changes}


def _guard(action: str, venvs: Path, state: Path) -> int:
    return trial.main([action, "--state-dir", str(state), "--venvs-dir", str(venvs)])


@pytest.mark.parametrize("action", ["check", "prestart"])
def test_a_link_planted_at_the_temporary_record_is_replaced_never_written_through(
        layout: tuple[Path, Path], tmp_path: Path, action: str) -> None:
    venvs, state = layout
    outside = tmp_path / "run-by-root.sh"
    outside.write_text("#!/bin/sh\necho original\n")
    record = _pending(**{"$(touch /tmp/owned)": "`reboot`; echo"})
    (state / "firmware" / "trial.json").write_text(json.dumps(record))
    (state / "firmware" / "trial.json.tmp").symlink_to(outside)
    assert _guard(action, venvs, state) == 0
    assert outside.read_text() == "#!/bin/sh\necho original\n", "the link's target is untouched"
    assert trial.current(venvs) == "0.1.0" and trial.read(state)["state"] == trial.ROLLED_BACK
    assert not (state / "firmware" / "trial.json.tmp").exists()
    assert oct((state / "firmware" / "trial.json").stat().st_mode & 0o777) == "0o600"


def test_a_linked_or_forged_record_is_not_acted_on(layout: tuple[Path, Path], tmp_path: Path) -> None:
    venvs, state = layout
    record_file = state / "firmware" / "trial.json"
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text(json.dumps(_pending()))
    record_file.symlink_to(elsewhere)
    assert trial.read(state) is None, "a record reached through a link is no record"
    assert _guard("check", venvs, state) == 0 and trial.current(venvs) == "0.2.0"
    record_file.unlink()
    for forged in (_pending(previous="/etc"), _pending(previous="$(reboot)"), _pending(target="current"),
                   _pending(version="..; rm -rf /"), _pending(previous="../../bin"),
                   _pending(started_at="0; reboot"), _pending(target="../0.2.0")):
        record_file.write_text(json.dumps(forged))
        before = record_file.read_bytes()
        assert _guard("check", venvs, state) == 2 and _guard("prestart", venvs, state) == 2, forged
        assert trial.current(venvs) == "0.2.0" and record_file.read_bytes() == before, forged
        with pytest.raises(ValueError):
            trial.rollback(state, venvs, forged, "test")
    # The environment systemd/install.sh made sits beside the versions directory: a rightful previous.
    record_file.write_text(json.dumps(_pending(previous="../venv")))
    assert _guard("check", venvs, state) == 0 and trial.current(venvs) == "../venv"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user may enter (pytest's own are root's, mode 0700)."""
    base = Path(tempfile.mkdtemp(prefix="guard-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_run_as_root_the_guard_works_as_the_state_directorys_owner_and_restarts_as_root(
        shared_dir: Path) -> None:
    service_user = 65534
    venvs, state = shared_dir / "venvs", shared_dir / "state"
    for version in ("0.1.0", "0.2.0"):
        (venvs / version).mkdir(parents=True)
    (venvs / "current").symlink_to("0.2.0")
    (state / "firmware").mkdir(parents=True)
    (state / "firmware" / "trial.json").write_text(json.dumps(_pending()))
    root_only = shared_dir / "root-only"
    root_only.write_text("root's\n")
    root_only.chmod(0o644)
    for path in (venvs, venvs / "current", state, state / "firmware", state / "firmware" / "trial.json"):
        os.lchown(path, service_user, service_user)
    marker = shared_dir / "restarted"
    done = subprocess.run([sys.executable, str(GUARD), "check", "--state-dir", str(state), "--venvs-dir",
                           str(venvs), "--restart-command", f"touch {marker}"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "rolled back to 0.1.0" in done.stderr
    assert trial.current(venvs) == "0.1.0"
    assert (state / "firmware" / "trial.json").stat().st_uid == service_user, "written as the owner"
    assert os.lstat(venvs / "current").st_uid == service_user, "the link switched as the owner"
    assert marker.stat().st_uid == 0, "the restart command runs as root"
    # The child really is that user: root's file is out of its reach.
    probe = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(GUARD.parent)!r}); import trial; "
         f"trial.as_owner(({service_user}, {service_user}), lambda: open({str(root_only)!r}, 'w').close())"],
        capture_output=True, text=True, timeout=30)
    assert probe.returncode != 0 and "PermissionError" in probe.stderr
    assert root_only.read_text() == "root's\n"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_guard_units_verify_clean_and_the_timer_job_restarts_through_the_guard(tmp_path: Path) -> None:
    from tests.integration.test_systemd_unit import SYSTEMD, root_with, settings, verify

    names = ("chargepoint-firmware-guard.service", "chargepoint-firmware-guard.timer")
    result = verify(root_with(tmp_path, {n: (SYSTEMD / n).read_text() for n in names}), *names)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result.stderr
    service = settings(SYSTEMD / names[0])
    # Started as root (only root restarts the service); the guard drops to the state's owner itself.
    assert "User" not in service and service["UMask"] == ["0077"]
    assert service["ExecStart"][0].split()[:2] == ["/opt/chargepoint/firmware-guard", "check"]
    assert "--restart-command" in service["ExecStart"][0]


# ------------------------------------------------------------------ versions
def _wheel(version: str, name: str = "chargepoint", tag: str = "py3-none-any") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        zf.writestr("chargepoint-x.dist-info/METADATA", metadata)
        zf.writestr("chargepoint-x.dist-info/WHEEL", f"Wheel-Version: 1.0\nTag: {tag}\n")
        zf.writestr("chargepoint/__init__.py", "")
    return buffer.getvalue()


class _Station:
    """What an update needs of the station: connectors to hold and give back, no transaction."""

    def __init__(self) -> None:
        self.connectors: dict[int, Any] = {1: None}
        self.operative = {1: True}

    def view(self, evse_id: int) -> Any:
        return SimpleNamespace(operative=self.operative[evse_id])

    def active_transactions(self) -> list[Any]:
        return []

    def change_availability(self, evse_id: int, operative: bool) -> None:
        for connector in (self.operative if evse_id == 0 else [evse_id]):
            self.operative[connector] = operative

    async def stop_all(self, reason: Any) -> None:
        return None


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = await FileServer().start()
    yield server
    await server.close()


@pytest.fixture
def station_dirs(tmp_path: Path) -> SimpleNamespace:
    """/opt/chargepoint as install.sh leaves it (venv, venvs/current -> 0.1.0), a canary beside it,
    and a Python whose ``-m venv`` makes the directory it is given (and says so inside it)."""
    opt = tmp_path / "opt"
    venvs = opt / "venvs"
    (venvs / "0.1.0").mkdir(parents=True)
    (venvs / "0.1.0" / "pyvenv.cfg").write_text("running\n")
    (venvs / "current").symlink_to("0.1.0")
    (opt / "venv").mkdir()
    (opt / "canary").write_text("still here\n")
    python = tmp_path / "python"
    python.write_text('#!/bin/sh\nfor last; do :; done\nmkdir -p "$last" && touch "$last/made-here"\n')
    python.chmod(0o755)
    return SimpleNamespace(opt=opt, venvs=venvs, state=tmp_path / "state", python=str(python))


def _tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("version", ["..", ".", "current", "/abs", "a/b", "../../etc", ".hidden", "1.0 ; id"])
async def test_a_wheel_whose_version_is_no_plain_name_is_installation_failed_and_nothing_is_touched(
        station_dirs: SimpleNamespace, files: FileServer, version: str) -> None:
    d = station_dirs
    before = _tree(d.opt)
    files.files["package.whl"] = _wheel(version)
    installer = VenvInstaller(str(d.venvs), str(d.state), running_version="0.1.0", deadline_s=60,
                              python=d.python, keep=1)
    station = _Station()
    manager = FirmwareManager(station, ManualClock(), str(d.state), installer, [Sha256Verifier()],
                              running_version="0.1.0", restart=lambda: None)
    manager.update(FirmwareRequest(files.url("/files/package.whl"), retrieve_at=0.0))
    assert manager._task is not None
    await asyncio.wait_for(manager._task, 10)
    assert manager.state.status is S.INSTALLATION_FAILED, manager.state
    assert "version" in (manager.state.detail or "")
    assert _tree(d.opt) == before, "nothing made or removed in or beside the versions directory"
    assert (d.opt / "canary").read_text() == "still here\n" and trial.current(d.venvs) == "0.1.0"
    assert station.operative == {1: True}, "the connectors are given back"


def test_versions_are_pep_440_and_plain_names_and_tags_are_tags(tmp_path: Path) -> None:
    package = tmp_path / "p.whl"
    for good in ("0.2.0", "1!2.0rc1", "0.2.0+pi.3", "2.0.post1"):
        package.write_bytes(_wheel(good))
        assert wheel_info(package)[1] == good
    for bad, why in (("0.2.0\x1b[2J", "PEP 440"), ("not-a-version", "PEP 440")):
        package.write_bytes(_wheel(bad))
        with pytest.raises(InstallError, match=why):
            wheel_info(package)
    package.write_bytes(_wheel("0.2.0", tag="../../../tmp/x"))
    with pytest.raises(InstallError, match="compatibility tag"):
        wheel_info(package)


async def test_the_pruner_removes_only_old_environments_inside_the_versions_directory(
        station_dirs: SimpleNamespace, tmp_path: Path) -> None:
    d = station_dirs
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    for old in ("0.0.1", "0.0.2"):
        (d.venvs / old).mkdir()
    (d.venvs / "0.0.3").symlink_to(outside, target_is_directory=True)
    trial.write(d.state, _pending(version="0.1.0", target="0.1.0", previous="0.0.2", state="confirmed"))
    installer = VenvInstaller(str(d.venvs), str(d.state), running_version="0.1.0", deadline_s=60, keep=1)
    installer._prune("0.3.0")
    assert sorted(p.name for p in d.venvs.iterdir()) == ["0.0.2", "0.0.3", "0.1.0", "current"]
    assert (outside / "keep").exists(), "a link is never followed into"
    for name in ("current", "0.1.0", "0.0.2", "0.0.3", ".."):
        with pytest.raises(InstallError):
            installer._entry(name)


# ------------------------------------------------------------------ downloads
class _Installer:
    """Fails as told (an InstallError, or an error no step expects)."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def install(self, package: Path, request: FirmwareRequest) -> Installed:
        raise self.error


class _Verifier:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def verify(self, package: Path, request: FirmwareRequest) -> str | None:
        raise self.error


def _manager(tmp_path: Path, *, installer: Any = None, verifiers: list[Any] | None = None,
             **policy: Any) -> tuple[FirmwareManager, _Station]:
    station = _Station()
    manager = FirmwareManager(station, ManualClock(), str(tmp_path / "state"),
                              installer or _Installer(InstallError("installed nothing")),
                              verifiers if verifiers is not None else [Sha256Verifier()],
                              running_version="0.1.0", restart=lambda: None, policy=UpdatePolicy(**policy))
    return manager, station


async def _update(manager: FirmwareManager, location: str, retries: int = 1) -> FirmwareState:
    """One update to its end. A retry would wait on the manual clock, which nobody advances: only a
    final failure (or the last attempt) ends it within the time limit."""
    manager.update(FirmwareRequest(location, 0.0, retries=retries, retry_interval_s=60))
    assert manager._task is not None
    await asyncio.wait_for(manager._task, 10)
    return manager.state


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[FtpServer]:
    server = FtpServer(tmp_path / "ftp")
    yield server
    server.close()


async def test_a_package_bigger_than_the_cap_is_download_failed_at_once_and_its_part_removed(
        tmp_path: Path, files: FileServer, ftp: FtpServer) -> None:
    files.files["big.whl"] = b"x" * (2 * MB)
    (ftp.root / "big.whl").write_bytes(b"x" * (2 * MB))
    download = tmp_path / "state" / "firmware" / "download"
    for location, path in ((files.url("/files/big.whl"), "/files/big.whl"),
                           (files.url("/endless/big.whl"), "/endless/big.whl"),  # no length announced
                           (ftp.url("/big.whl"), None)):
        manager, station = _manager(tmp_path, max_download_mb=1)
        files.requests.clear()
        state = await _update(manager, location, retries=3)
        assert state.status is S.DOWNLOAD_FAILED, state
        detail = state.detail or ""
        assert "bigger than the 1 MB allowed" in detail and "attempt 1 of 3" in detail
        if path is not None:
            assert files.requests == [path], "not tried again: it would be as big"
        assert list(download.iterdir()) == [], "the partial file is removed"
        assert station.operative == {1: True}


async def test_the_cap_leaves_the_reserve_free_on_the_state_directorys_disk(
        tmp_path: Path, files: FileServer, monkeypatch: pytest.MonkeyPatch) -> None:
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(manager_module.shutil, "disk_usage",
                        lambda path: usage._replace(free=(DOWNLOAD_RESERVE_MB + 1) * MB))
    manager, _ = _manager(tmp_path, max_download_mb=200)
    assert manager._download_limit() == MB
    files.files["pkg.whl"] = b"x" * (MB + 1)
    state = await _update(manager, files.url("/files/pkg.whl"))
    assert state.status is S.DOWNLOAD_FAILED and "disk is full" in (state.detail or "")
    assert f"less than {DOWNLOAD_RESERVE_MB} MB free" in (state.detail or "")


async def test_a_url_with_cr_lf_ends_in_a_final_status_and_sends_no_command(
        tmp_path: Path, ftp: FtpServer, caplog: pytest.LogCaptureFixture) -> None:
    (ftp.root / "other.whl").write_bytes(b"keep me")
    (ftp.root / "up").mkdir()
    manager, _ = _manager(tmp_path)
    state = await _update(manager, ftp.url("/pkg.whl%0d%0aDELE%20other.whl"), retries=3)
    assert state.status is S.DOWNLOAD_FAILED and "control characters" in (state.detail or ""), state
    assert "attempt 1 of 3" in (state.detail or "")
    diagnostics = Diagnostics(DiagnosticsSources(), ManualClock(), str(tmp_path / "state"), "CP")
    diagnostics.request(DiagnosticsRequest(ftp.url("/up%0d%0aDELE%20other.whl/"), retries=3))
    assert diagnostics._task is not None
    await asyncio.wait_for(diagnostics._task, 10)
    assert diagnostics.state.status is DiagnosticsStatus.UPLOAD_FAILED, diagnostics.state
    assert "control characters" in (diagnostics.state.detail or "")
    assert (ftp.root / "other.whl").read_bytes() == b"keep me" and list((ftp.root / "up").iterdir()) == []
    said = f"{state} {diagnostics.state} {caplog.text}"
    assert FtpServer.PASSWORD not in said


async def test_an_error_no_step_expects_ends_the_update_with_a_final_status_without_the_password(
        tmp_path: Path, files: FileServer, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    files.files["p.whl"] = b"package"
    secret = "pa%24s-w0rd"  # "pa$s-w0rd"
    location = f"http://operator:{secret}@127.0.0.1:{files.port}/files/p.whl"
    leak = RuntimeError("the verifier broke on pa$s-w0rd")
    manager, station = _manager(tmp_path, verifiers=[_Verifier(leak)])
    state = await _update(manager, location)
    assert state.status is S.INSTALLATION_FAILED and "unexpected RuntimeError" in (state.detail or ""), state
    manager, station = _manager(tmp_path, installer=_Installer(KeyError("venv")))
    state = await _update(manager, location)
    assert state.status is S.INSTALLATION_FAILED and "KeyError" in (state.detail or ""), state
    assert station.operative == {1: True}, "the connectors held for the install are given back"

    async def broken_download(*args: Any, **kwargs: Any) -> int:
        raise UnicodeError(f"cannot encode {location}")

    monkeypatch.setattr(manager_module.transfer, "download", broken_download)
    manager, station = _manager(tmp_path)
    state = await _update(manager, location)
    assert state.status is S.DOWNLOAD_FAILED and "UnicodeError" in (state.detail or ""), state
    assert "operator@127.0.0.1" in (state.detail or "")
    said = f"{state} {caplog.text} {(tmp_path / 'state' / 'firmware' / 'status.json').read_text()}"
    assert secret not in said and "pa$s-w0rd" not in said


def test_urls_are_shown_without_passwords_even_when_they_do_not_parse() -> None:
    for url in ("http://u:s3cr3t@[::1/p", "ftp://u:s3cr3t@h:port/p", "ftp://a:s3cr3t@c@d/x"):
        assert "s3cr3t" not in shown(url) and "s3cr3t" not in hide(f"error: {url}", url)
        assert check_url(url) is not None or url.startswith("ftp://a:")
    assert check_url("http://h/p%0aX") is not None and check_url("http://h/p%7f") is not None
    assert check_url("https://h/p.whl?x=%41") is None


# ------------------------------------------------------------------ archives
def _tarball(path: Path, members: list[tuple[str, bytes]], **pax: str) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.pax_headers = dict(pax)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_member_announced_at_1_5_gb_is_refused_at_its_header_without_being_expanded(tmp_path: Path) -> None:
    bomb = tarfile.TarInfo("chargepoint-0.2.0-py3-none-any.whl")
    bomb.size = 1536 * MB  # the header says so; the data behind it is never read
    package = tmp_path / "bomb.tar.gz"
    package.write_bytes(gzip.compress(bomb.tobuf(format=tarfile.GNU_FORMAT) + bytes(64 * 1024)))
    work = tmp_path / "work"
    with pytest.raises(InstallError, match="refused without unpacking: .* would unpack to 1610612736 bytes"):
        unpack(package, work)
    assert not work.exists(), "nothing was written"


def test_zeros_in_a_tarball_or_a_wheel_beyond_the_ratio_are_refused_and_real_packages_pass(
        tmp_path: Path) -> None:
    zeros = bytes(8 * MB)  # compresses to a few kilobytes: a ratio near 1000
    wheel = _wheel("0.2.0")
    tarball = _tarball(tmp_path / "zeros.tar.gz", [("zeros.bin", zeros), ("chargepoint.whl", wheel)])
    with pytest.raises(InstallError, match="would unpack to 8388608 bytes"):
        unpack(tarball, tmp_path / "work")
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        with zipfile.ZipFile(io.BytesIO(wheel)) as small:
            for entry in small.infolist():
                zf.writestr(entry, small.read(entry))
        zf.writestr("chargepoint/zeros.bin", zeros)
    (tmp_path / "bomb.whl").write_bytes(bomb.getvalue())
    with pytest.raises(InstallError, match="bomb.whl would unpack to"):
        unpack(tmp_path / "bomb.whl", tmp_path / "work")
    # A big pax header is read by tarfile itself: the counter under it stops that too.
    pax = _tarball(tmp_path / "pax.tar.gz", [("chargepoint.whl", wheel)], comment="x" * (3 * MB))
    with pytest.raises(ArchiveRefused, match="unpacks to more than"):
        list(tar_members(pax, Bounds()))
    # Members are counted.
    many = _tarball(tmp_path / "many.tar.gz", [(f"m{n}", b"") for n in range(6)])
    with pytest.raises(ArchiveRefused, match="more than 5 members"):
        list(tar_members(many, Bounds(members=5)))
    # The real thing passes: this checkout as a wheel, alone and in a tarball with another wheel.
    real = build_wheel(tmp_path, "0.2.0")
    assert unpack(real, tmp_path / "work")[1:] == ("0.2.0", False)
    other = ("wheels/aiohttp-3.9.0-py3-none-any.whl", _wheel("3.9.0", "aiohttp"))
    bundle = _tarball(tmp_path / "bundle.tar", [("wheels/" + real.name, real.read_bytes()), other])
    assert unpack(bundle, tmp_path / "work")[1:] == ("0.2.0", True)
