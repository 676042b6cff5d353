"""systemd/chargepoint.service: `systemd-analyze verify` is clean and the offline security
rating stays at 2.0 or below, while the unit still lets the service reach its hardware.

systemd-analyze comes with Debian's systemd package, which `make system-deps` installs,
so these run in CI; on a machine without it they are skipped with that reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNIT = Path(__file__).parents[2] / "systemd" / "chargepoint.service"
MAX_EXPOSURE = 2.0

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed "
                                                           "(make system-deps installs the systemd package)")


def settings() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def system_units() -> Path:
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (candidate / "sysinit.target").exists():
            return candidate
    pytest.skip("this machine has no systemd unit directory to verify against")


def root_with(tmp_path: Path, unit_text: str, exec_start: str) -> Path:
    """A file system root holding systemd's own units, the unit, and an executable where
    ExecStart points (verify checks that it exists)."""
    root = tmp_path / "root"
    shutil.copytree(system_units(), root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/chargepoint.service").write_text(unit_text)
    for path in (exec_start, "/opt/chargepoint/firmware-guard", "/opt/chargepoint/venv/bin/chargepoint"):
        binary = root / path.lstrip("/")
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text("#!/bin/sh\nexit 0\n")
        binary.chmod(0o755)
    return root


def test_the_unit_is_what_the_daemon_and_the_hardware_need():
    s = settings()
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["Restart"] == ["on-failure"] and s["WatchdogSec"] == ["10"]
    assert s["StartLimitIntervalSec"] == ["0"], "restarts go on until the disk is writable again"
    assert s["ExecStart"][0].split()[:2] == ["/opt/chargepoint/venvs/current/bin/chargepoint", "run"]
    # Firmware updates: the guard before every start, the versions' directory writable.
    assert s["ExecStartPre"][0].split()[:2] == ["-/opt/chargepoint/firmware-guard", "prestart"]
    assert "/opt/chargepoint/venvs" in s["ReadWritePaths"][1].split()
    # However the daemon ends, the outputs are made safe without it.
    assert s["ExecStopPost"][0].split() == ["/opt/chargepoint/venv/bin/chargepoint", "safe-off", "--config",
                                            "/etc/chargepoint/chargepoint.toml"]
    assert s["User"] == ["chargepoint"] and s["Group"] == ["chargepoint"]
    assert s["SupplementaryGroups"][0].split() == ["gpio", "i2c", "dialout"]
    for directory in ("StateDirectory", "ConfigurationDirectory", "RuntimeDirectory"):
        assert s[directory] == ["chargepoint"]
    # The control socket's default path lives in the RuntimeDirectory.
    from chargepoint.config import ControlConfig

    assert ControlConfig().socket.startswith("/run/chargepoint/")
    # The hardware stays reachable: devices by name, the PWM in sysfs writable.
    allowed = {rule.split()[0] for rule in s["DeviceAllow"]}
    assert {"char-gpiochip", "char-i2c", "char-ttyUSB", "char-ttyAMA"} <= allowed
    assert "-/sys/class/pwm" in s["ReadWritePaths"][0].split()
    assert s.get("PrivateDevices", ["no"]) == ["no"], "PrivateDevices would hide /dev/gpiochip*"
    assert s["DevicePolicy"] == ["closed"]
    # Descriptors: the unit sets the limit (systemd's default soft limit is 1024), well above what the
    # control socket may use plus the reserve it keeps for the OCPP link and the store.
    from chargepoint.control.server import FD_RESERVE, MAX_CLIENTS

    assert s["LimitNOFILE"] == ["4096"]
    assert int(s["LimitNOFILE"][0]) >= 8 * (MAX_CLIENTS + FD_RESERVE)


def verify(root: Path) -> subprocess.CompletedProcess[str]:
    assert analyze is not None
    return subprocess.run([analyze, "verify", f"--root={root}", "/etc/systemd/system/chargepoint.service"],
                          capture_output=True, text=True, timeout=60)


@needs_analyze
def test_systemd_analyze_verify_is_clean(tmp_path: Path):
    text = UNIT.read_text()
    exec_start = settings()["ExecStart"][0].split()[0]
    root = root_with(tmp_path, text, exec_start)
    result = verify(root)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result.stderr
    # ... and it would say so: a mistake in the unit is found.
    broken = root_with(tmp_path / "broken", text.replace("Type=notify", "Type=notifyy"), exec_start)
    assert "notifyy" in verify(broken).stderr


@needs_analyze
def test_offline_security_exposure_is_at_most_2(tmp_path: Path):
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(UNIT)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for chargepoint\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE, result.stdout


def test_the_readme_sections_the_unit_and_installer_name_exist():
    readme = (UNIT.parents[1] / "README.md").read_text()
    headings = set(re.findall(r"^#+ (.+)$", readme, flags=re.MULTILINE))
    for path in (UNIT, UNIT.parent / "install.sh"):
        for section in re.findall(r'README(?:\.md)?, "([^"]+)"', path.read_text()):
            assert section in headings, f"{path.name} names README section {section!r}, which does not exist"
    assert "systemd-analyze verify --root=" in readme
