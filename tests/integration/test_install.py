"""systemd/install.sh staged into a temporary root (DESTDIR), twice, then uninstalled.

DESTDIR mode must not touch the machine running the tests: the commands that would
(apt-get, systemctl, useradd, usermod, groupadd, systemd-sysusers, chown, userdel)
are replaced on PATH by stand-ins that record every call, and none may be called.
The project is installed from a wheel built here offline (no package index).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
INSTALL = REPO / "systemd" / "install.sh"
GUARDED = ("apt-get", "systemctl", "useradd", "usermod", "userdel", "groupadd", "groupdel",
           "systemd-sysusers", "chown")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("wheel", reason="building the wheel offline needs the wheel package ([test] extra)")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                    "--no-index", "--disable-pip-version-check", "-w", str(out), str(REPO)],
                   check=True, capture_output=True, timeout=120)
    (built,) = out.glob("chargepoint-*.whl")
    return built


def run(tmp_path: Path, wheel: Path, root: Path, *args: str, destdir: bool = True
        ) -> subprocess.CompletedProcess[str]:
    guards = tmp_path / "guards"
    guards.mkdir(exist_ok=True)
    calls = tmp_path / "calls"
    for name in GUARDED:
        stand_in = guards / name
        stand_in.write_text(f'#!/bin/sh\necho "{name} $*" >> "{calls}"\nexit 1\n')
        stand_in.chmod(0o755)
    env = {**os.environ, "PATH": f"{guards}:{os.environ['PATH']}", "PACKAGE": str(wheel),
           "PIP_ARGS": "--no-deps --no-index", "PYTHON": sys.executable}
    env.pop("DESTDIR", None)
    if destdir:
        env["DESTDIR"] = str(root)
    return subprocess.run(["sh", str(INSTALL), *args], env=env, capture_output=True, text=True, timeout=180)


def test_install_twice_into_a_staging_root_then_uninstall(tmp_path: Path, wheel: Path):
    root = tmp_path / "root"
    first = run(tmp_path, wheel, root)
    assert first.returncode == 0, first.stderr
    unit = root / "etc/systemd/system/chargepoint.service"
    assert unit.read_text() == (REPO / "systemd/chargepoint.service").read_text()
    wants = root / "etc/systemd/system/multi-user.target.wants/chargepoint.service"
    assert os.readlink(wants) == "/etc/systemd/system/chargepoint.service"
    config = root / "etc/chargepoint/chargepoint.toml"
    assert config.read_text() == (REPO / "examples/raspberrypi.toml").read_text()
    assert (root / "etc/chargepoint/chargepoint.toml.example").exists()
    assert oct(config.stat().st_mode & 0o777) == "0o640"
    assert oct((root / "etc/chargepoint").stat().st_mode & 0o777) == "0o750"
    entry = root / "opt/chargepoint/venv/bin/chargepoint"
    assert os.access(entry, os.X_OK)
    # Firmware updates: the service starts venvs/current, which is this install's venv; the guard
    # runs as a script of its own (no chargepoint import) and its timer is enabled.
    assert os.readlink(root / "opt/chargepoint/venvs/current") == "../venv"
    assert os.access(root / "opt/chargepoint/venvs/current/bin/chargepoint", os.X_OK)
    guard = root / "opt/chargepoint/firmware-guard"
    shown = subprocess.run([str(guard), "show", "--state-dir", str(root / "var/lib/chargepoint"),
                            "--venvs-dir", str(root / "opt/chargepoint/venvs")],
                           capture_output=True, text=True)
    assert shown.returncode == 0 and '"current": "../venv"' in shown.stdout, shown.stderr
    timer = root / "etc/systemd/system/timers.target.wants/chargepoint-firmware-guard.timer"
    assert os.readlink(timer) == "/etc/systemd/system/chargepoint-firmware-guard.timer"
    assert (root / "opt/chargepoint/README.md").exists()
    watchdog = (root / "etc/systemd/system.conf.d/chargepoint-watchdog.conf").read_text()
    assert "[Manager]\nRuntimeWatchdogSec=15\n" in watchdog, "the SoC's hardware watchdog is enabled"
    sysusers = (root / "usr/lib/sysusers.d/chargepoint.conf").read_text()
    assert 'u chargepoint - "chargepoint EV charging station controller" /var/lib/chargepoint' in sysusers
    assert all(f"g {group} -" in sysusers for group in ("gpio", "i2c", "dialout"))
    assert "wrote /etc/chargepoint/chargepoint.toml" in first.stdout

    config.write_text(config.read_text().replace('identity = "', 'identity = "EDITED-'))
    edited = config.read_text()
    second = run(tmp_path, wheel, root)
    assert second.returncode == 0, second.stderr
    assert "kept /etc/chargepoint/chargepoint.toml" in second.stdout
    assert config.read_text() == edited, "an existing configuration is never overwritten"
    assert unit.read_text() == (REPO / "systemd/chargepoint.service").read_text()
    assert os.access(entry, os.X_OK) and os.readlink(wants) == "/etc/systemd/system/chargepoint.service"
    assert not (tmp_path / "calls").exists(), (tmp_path / "calls").read_text()

    analyze = shutil.which("systemd-analyze")
    if analyze:  # the installed unit, with its real ExecStart, against systemd's own units
        for units in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
            if (units / "sysinit.target").exists():
                shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
                break
        verify = subprocess.run([analyze, "verify", f"--root={root}",
                                 "/etc/systemd/system/chargepoint.service"],
                                capture_output=True, text=True, timeout=60)
        assert verify.returncode == 0 and verify.stderr == "", verify.stderr

    removed = run(tmp_path, wheel, root, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists() and not wants.is_symlink() and not (root / "opt/chargepoint").exists()
    assert not (root / "etc/systemd/system.conf.d/chargepoint-watchdog.conf").exists()
    assert config.read_text() == edited, "uninstall keeps the configuration"
    purged = run(tmp_path, wheel, root, "--uninstall", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert "(no user was removed)" in purged.stdout and "and the user chargepoint" not in purged.stdout
    assert not (root / "etc/chargepoint").exists()
    assert not (root / "usr/lib/sysusers.d/chargepoint.conf").exists()
    assert not (tmp_path / "calls").exists(), (tmp_path / "calls").read_text()


def test_install_refuses_unclear_requests(tmp_path: Path, wheel: Path):
    lone_purge = run(tmp_path, wheel, tmp_path / "root", "--purge")
    assert lone_purge.returncode == 1 and "--purge goes with --uninstall" in lone_purge.stderr
    typo = run(tmp_path, wheel, tmp_path / "root", "--unistall")
    assert typo.returncode == 1 and "unknown argument --unistall" in typo.stderr
    if os.geteuid() != 0:
        unstaged = run(tmp_path, wheel, tmp_path / "root", destdir=False)
        assert unstaged.returncode == 1 and "run it as root" in unstaged.stderr
    assert not (tmp_path / "calls").exists()
