"""Firmware updates against a hostile service user, package or server: the guard never writes
through a planted link nor acts on a record it did not write, and drops root for its file work;
versions that are no plain name never reach the versions directory; downloads have a size cap,
archives a bound, and every failure a final status without the URL's password."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from chargepoint.core.firmware import trial

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
