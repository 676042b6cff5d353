"""systemd/chargepoint-safety.service (the safety supervisor) and systemd/chargepoint.service (the
daemon): `systemd-analyze verify` is clean for both, and the offline security rating stays at 2.5 or
below for the supervisor, which needs the safety hardware and real time, and 1.5 or below for the
daemon, which has the network but no device beyond the serial ports.

systemd-analyze comes with Debian's systemd package, which `make system-deps` installs,
so these run in CI; on a machine without it they are skipped with that reason.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).parents[2] / "systemd"
UNIT = SYSTEMD / "chargepoint.service"
SAFETY_UNIT = SYSTEMD / "chargepoint-safety.service"
MAX_EXPOSURE = {UNIT: 1.5, SAFETY_UNIT: 2.5}
SAFE_OFF = ["/opt/chargepoint/venv/bin/chargepoint", "safe-off",
            "--config", "/etc/chargepoint/chargepoint.toml"]

analyze = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(analyze is None, reason="systemd-analyze is not installed "
                                                           "(make system-deps installs the systemd package)")


def settings(unit: Path = UNIT) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def words(values: list[str]) -> list[str]:
    return [word for value in values for word in value.split()]


def system_units() -> Path:
    for candidate in (Path("/usr/lib/systemd/system"), Path("/lib/systemd/system")):
        if (candidate / "sysinit.target").exists():
            return candidate
    pytest.skip("this machine has no systemd unit directory to verify against")


def root_with(tmp_path: Path, units: dict[str, str]) -> Path:
    """A file system root holding systemd's own units, the units, and an executable wherever they
    run one (verify checks that ExecStart= exists)."""
    root = tmp_path / "root"
    shutil.copytree(system_units(), root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    for name, text in units.items():
        (root / "etc/systemd/system" / name).write_text(text)
    for path in ("/opt/chargepoint/venvs/current/bin/chargepoint", "/opt/chargepoint/firmware-guard",
                 "/opt/chargepoint/venv/bin/chargepoint"):
        binary = root / path.lstrip("/")
        binary.parent.mkdir(parents=True, exist_ok=True)
        binary.write_text("#!/bin/sh\nexit 0\n")
        binary.chmod(0o755)
    return root


def both_units() -> dict[str, str]:
    return {UNIT.name: UNIT.read_text(), SAFETY_UNIT.name: SAFETY_UNIT.read_text()}


def test_the_daemon_unit_has_the_network_and_the_serial_ports_only():
    s = settings()
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["Restart"] == ["on-failure"] and s["WatchdogSec"] == ["10"]
    assert s["StartLimitIntervalSec"] == ["0"], "restarts go on until the disk is writable again"
    assert s["ExecStart"][0].split()[:2] == ["/opt/chargepoint/venvs/current/bin/chargepoint", "run"]
    # The supervisor first, and the daemon only with it.
    assert "chargepoint-safety.service" in words(s["Requires"])
    assert "chargepoint-safety.service" in words(s["After"])
    # Firmware updates: the guard before every start, the versions' directory writable, nothing else.
    assert s["ExecStartPre"][0].split()[:2] == ["-/opt/chargepoint/firmware-guard", "prestart"]
    assert words(s["ReadWritePaths"]) == ["/opt/chargepoint/venvs"], "no /sys/class/pwm, no PWM chips"
    # No outputs to make safe: the supervisor's unit does that.
    assert "ExecStopPost" not in s
    assert s["User"] == ["chargepoint"] and s["Group"] == ["chargepoint"]
    assert words(s["SupplementaryGroups"]) == ["dialout"]
    for directory in ("StateDirectory", "ConfigurationDirectory", "RuntimeDirectory"):
        assert s[directory] == ["chargepoint"]
    # The control socket's default path lives in the RuntimeDirectory.
    from chargepoint.config import ControlConfig

    assert ControlConfig().socket.startswith("/run/chargepoint/")
    # Devices: the serial ports of meters and RFID readers, nothing of the safety hardware.
    assert s["DevicePolicy"] == ["closed"]
    allowed = {rule.split()[0] for rule in s["DeviceAllow"]}
    assert allowed == {"char-ttyUSB", "char-ttyAMA", "char-ttyS"}
    text = "\n".join(line for line in UNIT.read_text().splitlines() if not line.startswith("#"))
    for safety_device in ("gpio", "i2c", "spi", "/sys/class/pwm", "/sys/devices"):
        assert safety_device not in text, safety_device
    assert s.get("PrivateDevices", ["no"]) == ["no"], "PrivateDevices would hide the serial ports"
    assert s["RestrictRealtime"] == ["yes"]
    # Descriptors: the unit sets the limit (systemd's default soft limit is 1024), well above what the
    # control socket may use plus the reserve it keeps for the OCPP link and the store.
    from chargepoint.control.server import FD_RESERVE, MAX_CLIENTS

    assert s["LimitNOFILE"] == ["4096"]
    assert int(s["LimitNOFILE"][0]) >= 8 * (MAX_CLIENTS + FD_RESERVE)


def test_the_rfid_readers_need_no_bus_the_daemon_lost():
    """The daemon keeps only the serial ports: every RFID reader is a serial one."""
    from hal.rfid import Pn532Reader, Rdm6300Reader, SerialCardReader

    assert issubclass(Rdm6300Reader, SerialCardReader) and issubclass(Pn532Reader, SerialCardReader)


def test_the_supervisor_unit_is_real_time_with_the_safety_hardware_and_no_network():
    s = settings(SAFETY_UNIT)
    assert s["Type"] == ["notify"] and s["NotifyAccess"] == ["main"]
    assert s["WatchdogSec"] == ["2"]
    assert s["Restart"] == ["always"] and s["RestartSec"] == ["1"] and s["StartLimitIntervalSec"] == ["0"]
    # Root's venv from install.sh, never venvs/ (which the daemon's user writes for firmware updates).
    assert s["ExecStart"][0].split() == ["/opt/chargepoint/venv/bin/chargepoint", "supervise",
                                         "--config", "/etc/chargepoint/chargepoint.toml",
                                         "--daemon-user", "chargepoint"]
    # The daemon comes back with the supervisor, even after a start of the supervisor that failed.
    assert "chargepoint.service" in words(s["Wants"])
    # However it ends: safe-off from the install-time venv, then the shell fallback. A failing
    # safe-off ("-") must not skip the fallback; systemd runs the commands in order.
    first, fallback = s["ExecStopPost"]
    assert first.startswith("-") and first[1:].split() == SAFE_OFF
    assert fallback.startswith("-/bin/sh -c ")
    # Real time from the unit, memory locked, last to go under memory pressure.
    assert s["CPUSchedulingPolicy"] == ["fifo"]
    assert 1 <= int(s["CPUSchedulingPriority"][0]) < 50, "below the kernel's interrupt threads (FIFO 50)"
    assert "CPUSchedulingResetOnFork" not in s, "threads must keep the policy"
    assert s["LimitMEMLOCK"] == ["infinity"]
    assert int(s["OOMScoreAdjust"][0]) < 0
    # Its own user, with the device groups and the configuration's group.
    assert s["User"] == ["chargepoint-hw"] and s["Group"] == ["chargepoint-hw"]
    assert set(words(s["SupplementaryGroups"])) == {"gpio", "i2c", "spi", "chargepoint"}
    # The channel's directory: the daemon's user may enter it; it survives the supervisor's restarts.
    assert s["RuntimeDirectory"] == ["chargepoint-safety"] and s["RuntimeDirectoryMode"] == ["0755"]
    assert s["RuntimeDirectoryPreserve"] == ["restart"]
    assert s["WorkingDirectory"] == ["/run/chargepoint-safety"]
    # The safety hardware only, and no network at all.
    assert s["DevicePolicy"] == ["closed"]
    assert {rule.split()[0] for rule in s["DeviceAllow"]} == {"char-gpiochip", "char-i2c", "char-spi"}
    assert words(s["ReadWritePaths"]) == ["-/sys/class/pwm", "-/sys/devices/platform"]
    assert s.get("PrivateDevices", ["no"]) == ["no"], "PrivateDevices would hide /dev/gpiochip*"
    assert s["RestrictAddressFamilies"] == ["AF_UNIX"] and s["IPAddressDeny"] == ["any"]
    assert s["PrivateNetwork"] == ["yes"]
    assert s.get("PrivateUsers", ["no"]) == ["no"], "the daemon's uid must reach SO_PEERCRED unmapped"
    assert "ProcSubset" not in s, "gpiozero reads the board revision from /proc/device-tree or /proc/cpuinfo"


def test_the_channel_lives_in_the_supervisors_runtime_directory():
    safety_parse = pytest.importorskip("chargepoint.config.safety_parse")
    channel = Path(safety_parse.RASPBERRYPI_CHANNEL)
    assert channel.parent == Path("/run") / settings(SAFETY_UNIT)["RuntimeDirectory"][0]


def fallback_script(pwm_root: Path) -> list[str]:
    """The shell fallback's command line as systemd runs it ($$ is its escape for $), on a fake sysfs."""
    line = settings(SAFETY_UNIT)["ExecStopPost"][1].removeprefix("-")
    argv = [word.replace("$$", "$") for word in shlex.split(line)]
    assert argv[:2] == ["/bin/sh", "-c"] and len(argv) == 3
    assert "/sys/class/pwm/" in argv[2]
    return ["sh", "-c", argv[2].replace("/sys/class/pwm", str(pwm_root))]


def channel(chip: Path, number: int, duty_ns: int) -> Path:
    path = chip / f"pwm{number}"
    path.mkdir(parents=True)
    for name, value in (("period", "1000000"), ("duty_cycle", str(duty_ns)), ("enable", "1"),
                        ("polarity", "normal")):
        (path / name).write_text(f"{value}\n")
    return path


def test_the_shell_fallback_stops_every_exported_pwm_and_is_harmless_without_one(tmp_path: Path):
    # Nothing there at all (no PWM overlay, not a Pi), and a chip with no channel exported.
    for root in (tmp_path / "absent", tmp_path / "bare"):
        if root.name == "bare":
            (root / "pwmchip0").mkdir(parents=True)
            (root / "pwmchip0" / "npwm").write_text("2\n")
        ran = subprocess.run(fallback_script(root), capture_output=True, text=True, timeout=10)
        assert ran.returncode == 0 and ran.stdout == "" and ran.stderr == "", ran.stderr
    assert os.listdir(tmp_path / "bare" / "pwmchip0") == ["npwm"]
    # A pilot left at 26.7 % (16 A) by a crashed supervisor, and a second chip's channel (a Pi 5).
    pilot = channel(tmp_path / "pwm" / "pwmchip0", 0, 266_667)
    other = channel(tmp_path / "pwm" / "pwmchip2", 2, 1_000_000)
    ran = subprocess.run(fallback_script(tmp_path / "pwm"), capture_output=True, text=True, timeout=10)
    assert ran.returncode == 0 and ran.stderr == "", ran.stderr
    for path in (pilot, other):
        values = {name: (path / name).read_text().strip() for name in ("duty_cycle", "enable", "period")}
        assert values == {"duty_cycle": "0", "enable": "0", "period": "1000000"}, path
    # The duty goes to 0 % before the channel is disabled: the pin is low whatever a driver does then.
    script = fallback_script(tmp_path)[2]
    assert script.index("duty_cycle") < script.index("enable")


def verify(root: Path, *units: str) -> subprocess.CompletedProcess[str]:
    assert analyze is not None
    return subprocess.run([analyze, "verify", f"--root={root}", *(f"/etc/systemd/system/{u}" for u in units)],
                          capture_output=True, text=True, timeout=60)


@needs_analyze
def test_systemd_analyze_verify_is_clean(tmp_path: Path):
    root = root_with(tmp_path, both_units())
    result = verify(root, UNIT.name, SAFETY_UNIT.name)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == "", result.stderr
    # ... and it would say so: a mistake in either unit is found, and so is a missing supervisor.
    for name in (UNIT.name, SAFETY_UNIT.name):
        units = both_units()
        units[name] = units[name].replace("Type=notify", "Type=notifyy")
        assert "notifyy" in verify(root_with(tmp_path / f"broken-{name}", units), name).stderr
    alone = root_with(tmp_path / "alone", {UNIT.name: UNIT.read_text()})
    assert "chargepoint-safety.service" in verify(alone, UNIT.name).stderr


@needs_analyze
@pytest.mark.parametrize("unit", [UNIT, SAFETY_UNIT], ids=lambda unit: unit.name)
def test_offline_security_exposure_stays_within_its_limit(unit: Path):
    result = subprocess.run([analyze, "security", "--offline=yes", "--no-pager", str(unit)],
                            capture_output=True, text=True, timeout=60)
    match = re.search(rf"Overall exposure level for {re.escape(unit.name)}: (\d+\.\d+)", result.stdout)
    assert match, result.stdout[-2000:] + result.stderr
    assert float(match.group(1)) <= MAX_EXPOSURE[unit], result.stdout


def test_the_readme_sections_the_units_and_installer_name_exist():
    readme = (UNIT.parents[1] / "README.md").read_text()
    headings = set(re.findall(r"^#+ (.+)$", readme, flags=re.MULTILINE))
    for path in (UNIT, SAFETY_UNIT, UNIT.parent / "install.sh"):
        for section in re.findall(r'README(?:\.md)?, "([^"]+)"', path.read_text()):
            assert section in headings, f"{path.name} names README section {section!r}, which does not exist"
    assert "systemd-analyze verify --root=" in readme
