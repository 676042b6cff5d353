"""systemd/install.sh staged into a temporary root (DESTDIR), twice, then uninstalled; and a staged
station from before the safety supervisor upgraded.

DESTDIR mode must not touch the machine running the tests: the commands that would
(apt-get, systemctl, useradd, usermod, groupadd, gpasswd, deluser, systemd-sysusers, chown,
userdel) are replaced on PATH by stand-ins that record every call, and none may be called.
The project is installed from a wheel built here offline (no package index).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
INSTALL = REPO / "systemd" / "install.sh"
GUARDED = ("apt-get", "systemctl", "useradd", "usermod", "userdel", "groupadd", "groupdel", "gpasswd",
           "deluser", "systemd-sysusers", "chown")
UNITS = "etc/systemd/system"
SERVICES = ("chargepoint-safety.service", "chargepoint.service")


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


def assert_services_installed_and_enabled(root: Path) -> None:
    for name in SERVICES:
        assert (root / UNITS / name).read_text() == (REPO / "systemd" / name).read_text(), name
        assert os.readlink(root / UNITS / "multi-user.target.wants" / name) == f"/{UNITS}/{name}"


def assert_users(root: Path) -> None:
    """The daemon's user has the serial ports only; the supervisor's user the safety hardware."""
    daemon = (root / "usr/lib/sysusers.d/chargepoint.conf").read_text()
    assert 'u chargepoint - "chargepoint EV charging station controller" /var/lib/chargepoint' in daemon
    assert "g dialout -" in daemon
    assert not any(group in daemon for group in ("gpio", "i2c", "spi")), daemon
    hw = (root / "usr/lib/sysusers.d/chargepoint-hw.conf").read_text()
    assert re.search(r'^u chargepoint-hw - "[^"]+" - /usr/sbin/nologin$', hw, re.MULTILINE), hw
    for group in ("gpio", "i2c", "spi"):
        assert f"g {group} -" in hw and f"m chargepoint-hw {group}" in hw
    # The supervisor reads /etc/chargepoint (root:chargepoint 0750).
    assert "m chargepoint-hw chargepoint" in hw


def verify_units(root: Path) -> None:
    """The installed units, with their real ExecStart=, against systemd's own units."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        return
    for units in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (units / "sysinit.target").exists():
            shutil.copytree(units, root / "usr/lib/systemd/system", symlinks=True, dirs_exist_ok=True)
            break
    verify = subprocess.run([analyze, "verify", f"--root={root}", *(f"/{UNITS}/{name}" for name in SERVICES)],
                            capture_output=True, text=True, timeout=60)
    assert verify.returncode == 0 and verify.stderr == "", verify.stderr


def test_install_twice_into_a_staging_root_then_uninstall(tmp_path: Path, wheel: Path):
    root = tmp_path / "root"
    first = run(tmp_path, wheel, root)
    assert first.returncode == 0, first.stderr
    unit = root / "etc/systemd/system/chargepoint.service"
    safety = root / "etc/systemd/system/chargepoint-safety.service"
    wants = root / "etc/systemd/system/multi-user.target.wants/chargepoint.service"
    safety_wants = root / "etc/systemd/system/multi-user.target.wants/chargepoint-safety.service"
    assert_services_installed_and_enabled(root)
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
    assert "[Manager]\nRuntimeWatchdogSec=15\nRebootWatchdogSec=15\n" in watchdog, \
        "the SoC's hardware watchdog is enabled, within its 15 s maximum"
    assert_users(root)
    assert "wrote /etc/chargepoint/chargepoint.toml" in first.stdout

    config.write_text(config.read_text().replace('identity = "', 'identity = "EDITED-'))
    edited = config.read_text()
    second = run(tmp_path, wheel, root)
    assert second.returncode == 0, second.stderr
    assert "kept /etc/chargepoint/chargepoint.toml" in second.stdout
    assert config.read_text() == edited, "an existing configuration is never overwritten"
    assert_services_installed_and_enabled(root)
    assert os.access(entry, os.X_OK)
    assert not (tmp_path / "calls").exists(), (tmp_path / "calls").read_text()
    verify_units(root)

    removed = run(tmp_path, wheel, root, "--uninstall")
    assert removed.returncode == 0, removed.stderr
    assert not unit.exists() and not wants.is_symlink() and not (root / "opt/chargepoint").exists()
    assert not safety.exists() and not safety_wants.is_symlink()
    assert not (root / "etc/systemd/system.conf.d/chargepoint-watchdog.conf").exists()
    assert config.read_text() == edited, "uninstall keeps the configuration"
    purged = run(tmp_path, wheel, root, "--uninstall", "--purge")
    assert purged.returncode == 0, purged.stderr
    assert "(no user was removed)" in purged.stdout and "and the users" not in purged.stdout
    assert not (root / "etc/chargepoint").exists()
    assert not (root / "usr/lib/sysusers.d/chargepoint.conf").exists()
    assert not (root / "usr/lib/sysusers.d/chargepoint-hw.conf").exists()
    assert not (tmp_path / "calls").exists(), (tmp_path / "calls").read_text()


ONE_PROCESS_UNIT = """[Unit]
Description=chargepoint EV charging station controller
[Service]
Type=notify
ExecStart=/opt/chargepoint/venvs/current/bin/chargepoint run --config /etc/chargepoint/chargepoint.toml
ExecStopPost=/opt/chargepoint/venv/bin/chargepoint safe-off --config /etc/chargepoint/chargepoint.toml
User=chargepoint
SupplementaryGroups=gpio i2c dialout
DeviceAllow=char-gpiochip rw
ReadWritePaths=-/sys/class/pwm -/sys/devices/platform
[Install]
WantedBy=multi-user.target
"""
ONE_PROCESS_SYSUSERS = """\
u chargepoint - "chargepoint EV charging station controller" /var/lib/chargepoint /usr/sbin/nologin
g gpio -
g i2c -
g dialout -
"""


def test_upgrading_a_one_process_station_adds_the_supervisor(tmp_path: Path, wheel: Path):
    """A station installed before the supervisor existed (one unit, the daemon's user with the
    devices) gets the supervisor's unit, enabled, and its user; the daemon's unit and user lose
    the devices. Its configuration stays as it was."""
    root = tmp_path / "root"
    assert run(tmp_path, wheel, root).returncode == 0
    for name in ("chargepoint-safety.service", "multi-user.target.wants/chargepoint-safety.service"):
        (root / UNITS / name).unlink()
    (root / "usr/lib/sysusers.d/chargepoint-hw.conf").unlink()
    (root / UNITS / "chargepoint.service").write_text(ONE_PROCESS_UNIT)
    (root / "usr/lib/sysusers.d/chargepoint.conf").write_text(ONE_PROCESS_SYSUSERS)
    config = root / "etc/chargepoint/chargepoint.toml"
    config.write_text(config.read_text().replace('identity = "', 'identity = "OLD-'))
    edited = config.read_text()

    upgraded = run(tmp_path, wheel, root)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "staged and enabled chargepoint-safety.service and chargepoint.service" in upgraded.stdout
    assert_services_installed_and_enabled(root)
    assert_users(root)
    assert config.read_text() == edited
    assert not (tmp_path / "calls").exists(), (tmp_path / "calls").read_text()
    verify_units(root)


def test_install_refuses_unclear_requests(tmp_path: Path, wheel: Path):
    lone_purge = run(tmp_path, wheel, tmp_path / "root", "--purge")
    assert lone_purge.returncode == 1 and "--purge goes with --uninstall" in lone_purge.stderr
    typo = run(tmp_path, wheel, tmp_path / "root", "--unistall")
    assert typo.returncode == 1 and "unknown argument --unistall" in typo.stderr
    if os.geteuid() != 0:
        unstaged = run(tmp_path, wheel, tmp_path / "root", destdir=False)
        assert unstaged.returncode == 1 and "run it as root" in unstaged.stderr
    assert not (tmp_path / "calls").exists()
