"""Firmware updates end to end: real wheels, real venvs, a real daemon restarted by a service manager.

Each test starts version 0.1.0 of this checkout from ``venvs/0.1.0`` through the
``current`` link, as the systemd unit does, with the firmware guard before every
start (``firmware_rig.Service``). The CSMS sends UpdateFirmware for a wheel built
here; the station downloads it from a loopback HTTP server, verifies its SHA-256,
installs it into a new venv, exits for the restart, and the result is sent by
whichever version runs afterwards. The good version ends Installed and running;
one that crashes at start and one that never gets an accepted BootNotification
end with 0.1.0 running again and InstallationFailed, without anyone's help. A station
killed just as the link switched comes back as the new version and says Installed.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from chargepoint.core.firmware import trial
from tests.firmware_rig import FileServer, Service, build_wheel, copy_venv, deps_dir, make_venv
from tests.integration.conftest import until
from tests.integration.loopback_csms import LoopbackCsms

#: Replaces the daemon's run in the build that crashes at start (after the import check passed).
CRASH = """
async def _crash_at_start(self, state_lock=None):
    raise SystemExit("this build crashes at start")


Daemon.run = _crash_at_start
"""


@pytest.fixture(scope="session")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The wheels (old, new, crashing, never booting), the deps dir and a venv of the old one: once."""
    root = tmp_path_factory.mktemp("firmware-builds")
    deps = deps_dir(root / "deps")
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(deps), "HOME": str(root)}
    wheels = {"0.1.0": build_wheel(root, "0.1.0"), "0.1.1": build_wheel(root, "0.1.1"),
              "0.1.2": build_wheel(root, "0.1.2", {"chargepoint/app/daemon.py": CRASH}),
              "0.1.3": build_wheel(root, "0.1.3")}
    template = root / "template" / "0.1.0"
    make_venv(template, wheels["0.1.0"], env)
    return {"wheels": wheels, "env": env, "template": template}


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = await FileServer().start()
    yield server
    await server.close()


@pytest.fixture
async def service(tmp_path: Path, csms: LoopbackCsms, builds: dict[str, Any],
                  request: pytest.FixtureRequest) -> AsyncIterator[Service]:
    # The update that succeeds takes the default way (the new venv gets its own pip); the others
    # save the seconds of ensurepip and install with the running environment's pip.
    unit = _unit(tmp_path, csms, builds, with_pip="installs_the_new_version" in request.node.name,
                 charging="charges_on" in request.node.name)  # a free-vend session runs through the update
    unit.start()
    try:
        await csms.wait_for("BootNotification", timeout=30, firmware_version="0.1.0")
        yield unit
    finally:
        await unit.stop()


def _unit(tmp_path: Path, csms: LoopbackCsms, builds: dict[str, Any], *, with_pip: bool = False,
          charging: bool = False) -> Service:
    """Version 0.1.0 in ``venvs/0.1.0`` behind the ``current`` link, its configuration, its unit."""
    venvs = tmp_path / "venvs"
    copy_venv(builds["template"], venvs / "0.1.0")
    (venvs / "current").symlink_to("0.1.0")
    config = tmp_path / "station.toml"
    config.write_text(f"""
[station]
identity = "CP-FW-1"
state_dir = "{tmp_path / 'state'}"
free_vend = {str(charging).lower()}
[ocpp]
csms_url = "{csms.url}"
meter_value_sample_interval_s = {2 if charging else 60}
reconnect_min_s = 0.2
reconnect_max_s = 1.0
[control]
socket = "{tmp_path / 'control.sock'}"
[firmware]
venvs_dir = "{venvs}"
allow_unsigned_without_tls = true
boot_deadline_s = 2
pip_args = "--no-deps"
system_site_packages = false
venv_with_pip = {str(with_pip).lower()}
""")
    return Service(venvs, tmp_path / "state", config, builds["env"], tmp_path / "daemon.log")


async def _update(csms: LoopbackCsms, files: FileServer, wheel: Path) -> None:
    files.files[wheel.name] = wheel.read_bytes()
    digest = hashlib.sha256(files.files[wheel.name]).hexdigest()
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    await csms.call(call.UpdateFirmware(location=files.url(f"/files/{wheel.name}#sha256={digest}"),
                                        retrieve_date=now, retries=1, retry_interval=1))


def _firmware_statuses(csms: LoopbackCsms) -> list[str]:
    return [r.payload['status'] for r in csms.of('FirmwareStatusNotification')]


def _log(service: Service) -> str:
    return service.log.read_text(errors="replace") if service.log.exists() else ""


async def test_an_update_installs_the_new_version_in_its_own_venv_and_reports_installed(
        csms: LoopbackCsms, files: FileServer, service: Service, builds: dict[str, Any]) -> None:
    await _update(csms, files, builds["wheels"]["0.1.1"])
    await csms.wait_for("FirmwareStatusNotification", timeout=60, status="Installed")
    assert _firmware_statuses(csms) == ["Downloading", "Downloaded", "Installing", "Installed"], _log(service)
    assert [r.payload["firmware_version"] for r in csms.of("BootNotification")] == ["0.1.0", "0.1.1"]
    assert service.running_version() == "0.1.1"
    assert service.exits == [75], "the old daemon exited for the restart, the new one runs"
    installed = csms.of("FirmwareStatusNotification")[-1]
    assert installed.connection == 2, "Installed is said by the new version, after its boot"
    # While it installed the connector was Unavailable; the new version gives it back.
    statuses = [r.payload["status"] for r in csms.of("StatusNotification") if r.payload["connector_id"] == 1]
    assert "Unavailable" in statuses
    await until(lambda: [r.payload["status"] for r in csms.of("StatusNotification")
                         if r.payload["connector_id"] == 1][-1] == "Available", 20, "connector 1 Available")
    assert not (service.state_dir / "firmware" / "trial.json").exists()
    assert "firmware-guard: starting version 0.1.1 on trial" in service.guard_said
    assert (service.venvs / "0.1.1" / "bin" / "pip").exists(), "the new version brings the pip of the next"


async def test_a_version_that_crashes_at_start_is_rolled_back_by_the_guard(
        csms: LoopbackCsms, files: FileServer, service: Service, builds: dict[str, Any]) -> None:
    await _update(csms, files, builds["wheels"]["0.1.2"])
    await csms.wait_for("FirmwareStatusNotification", timeout=60, status="InstallationFailed")
    assert _firmware_statuses(csms) == ["Downloading", "Downloaded", "Installing", "InstallationFailed"]
    assert service.running_version() == "0.1.0"
    assert [r.payload["firmware_version"] for r in csms.of("BootNotification")] == ["0.1.0", "0.1.0"]
    assert service.exits[:2] == [75, 1], "the new version crashed once; the guard rolled back before the next"
    assert any("rolled back to 0.1.0" in said and "stopped before" in said for said in service.guard_said)
    assert "this build crashes at start" in _log(service)
    assert "firmware installation failed: version 0.1.2 stopped before" in _log(service)


async def test_a_version_that_never_boots_is_rolled_back_after_its_deadline(
        csms: LoopbackCsms, files: FileServer, service: Service, builds: dict[str, Any]) -> None:
    csms.pending_versions.add("0.1.3")
    await _update(csms, files, builds["wheels"]["0.1.3"])
    await csms.wait_for("BootNotification", timeout=60, firmware_version="0.1.3")
    assert service.running_version() == "0.1.3"
    # The guard's timer: nothing happens before the deadline (2 s after the start), then the rollback.
    said = await until(_checked(service), 30, "the guard to roll back")
    assert "had no accepted BootNotification within 2 s" in said
    await csms.wait_for("FirmwareStatusNotification", timeout=30, status="InstallationFailed")
    assert service.running_version() == "0.1.0"
    assert [r.payload["firmware_version"] for r in csms.of("BootNotification")][-1] == "0.1.0"
    assert _firmware_statuses(csms)[-1] == "InstallationFailed"


def _checked(service: Service) -> Any:
    """A condition for ``until`` that runs the guard's check (as its timer would) each time it is asked."""
    import asyncio

    pending: list[asyncio.Task[str]] = []

    def condition() -> str | None:
        if pending and pending[0].done():
            said = pending.pop().result()
            if "rolled back" in said:
                return said
        if not pending:
            pending.append(asyncio.ensure_future(service.check()))
        return None
    return condition


async def test_a_running_session_charges_on_through_the_install_and_its_restart(
        csms: LoopbackCsms, files: FileServer, service: Service, builds: dict[str, Any]) -> None:
    """The safety supervisor keeps the car charging while the daemon restarts into the new version:
    one StartTransaction, the same transaction's MeterValues from both versions, no stop."""
    plug = subprocess.run([str(service.venvs / "current" / "bin" / "chargepoint"), "sim", "plug",
                           "--config", str(service.config)], env={**os.environ, **builds["env"]},
                          capture_output=True, text=True, timeout=30)
    assert plug.returncode == 0, plug.stderr
    await csms.wait_for("StartTransaction", timeout=30)
    await _update(csms, files, builds["wheels"]["0.1.1"])
    await csms.wait_for("FirmwareStatusNotification", timeout=60, status="Installed")
    assert "the running transactions go on through the restart" in _log(service)
    transaction_id = csms.of("StartTransaction")[0].payload.get("transaction_id") or 100
    await until(lambda: any(m.connection == 2 for m in csms.of("MeterValues")), 30,
                "a meter value from the new version")
    assert len(csms.of("StartTransaction")) == 1 and not csms.of("StopTransaction")
    assert {m.payload["transaction_id"] for m in csms.of("MeterValues")} <= {transaction_id}
    assert service.running_version() == "0.1.1"


async def test_a_station_killed_as_the_link_switched_comes_back_as_the_new_version_installed(
        csms: LoopbackCsms, tmp_path: Path, builds: dict[str, Any]) -> None:
    """What the old daemon leaves when killed right after switching the link (before it could save
    InstallRebooting): the status says Installing, the trial of 0.1.1 is pending, ``current`` names
    0.1.1. The service starts 0.1.1 on trial; it is confirmed at its accepted boot and says
    Installed, never InstallationFailed, and the guard's timer finds nothing to roll back."""
    unit = _unit(tmp_path, csms, builds)
    new = unit.venvs / "0.1.1"
    copy_venv(builds["template"], new)
    for module in new.glob("lib/python*/site-packages/chargepoint/__init__.py"):
        module.write_text(module.read_text().replace('"0.1.0"', '"0.1.1"'))
    firmware = unit.state_dir / "firmware"
    (firmware / "unpacked").mkdir(parents=True)
    (firmware / "installing").write_text("0.1.1")
    (firmware / "status.json").write_text(json.dumps(
        {"status": "installing", "request_id": None, "location": "http://127.0.0.1/files/p.whl",
         "version": None, "detail": None, "since": 1.0, "unreported": False, "held": {"1": True}}))
    trial.begin(unit.state_dir, unit.venvs, "0.1.1", "0.1.1", deadline_s=2, now=time.time())
    unit.start()
    try:
        await csms.wait_for("FirmwareStatusNotification", timeout=30, status="Installed")
        assert _firmware_statuses(csms) == ["Installed"], _log(unit)
        assert [r.payload["firmware_version"] for r in csms.of("BootNotification")] == ["0.1.1"]
        assert "firmware-guard: starting version 0.1.1 on trial" in unit.guard_said
        await until(lambda: not (firmware / "trial.json").exists(), 10, "the trial record removed")
        assert await unit.check() == "", "nothing to roll back, even past the deadline"
        assert unit.running_version() == "0.1.1" and unit.exits == []
        assert not (firmware / "unpacked").exists() and not (firmware / "installing").exists()
        assert "InstallationFailed" not in _firmware_statuses(csms)
    finally:
        await unit.stop()
