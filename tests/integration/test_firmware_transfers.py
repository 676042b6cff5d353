"""Firmware downloads and diagnostics uploads of a running station, over real HTTP and FTP on loopback.

The failures a field station meets end with the running version untouched and
the right 1.6 status sent: a package whose SHA-256 differs (over FTP, with a
password that must not show), a server that drops the connection half-way
(retried, then DownloadFailed), a disk that fills up (one attempt: retrying
cannot help), a package that is no wheel (InstallationFailed, connectors given
back). GetDiagnostics uploads an archive whose content is checked: the log
window honoured, secrets masked, the store's summary and the versions present.
TriggerMessage reports what is going on at that moment.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import subprocess
import tarfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.v16 import call

from chargepoint.cli.control_status import _status_view
from chargepoint.control.commands import COMMANDS
from tests.firmware_rig import FileServer, FtpServer
from tests.integration.conftest import StationLog, until
from tests.integration.loopback_csms import LoopbackCsms

AUTH_KEY = "0123456789abcdef0123456789abcdef"
MQTT_PASSWORD = "mqtt-secret-pass-42"


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = await FileServer().start()
    yield server
    await server.close()


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[FtpServer]:
    server = FtpServer(tmp_path / "ftp")
    yield server
    server.close()


def _sections(tmp_path: Path) -> dict[str, Any]:
    venvs = tmp_path / "venvs"
    (venvs / "0.1.0").mkdir(parents=True, exist_ok=True)
    if not (venvs / "current").exists():
        (venvs / "current").symlink_to("0.1.0")
    # Unsigned packages over ws://: the owner's key that allows them (refused by default).
    return {"firmware": {"venvs_dir": str(venvs), "retry_interval_s": 1, "allow_unsigned_without_tls": True},
            "diagnostics": {"retry_interval_s": 1},
            "mqtt": {"username": "station", "password": MQTT_PASSWORD},
            "control": {"socket": str(tmp_path / "control.sock")}}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _statuses(csms: LoopbackCsms, action: str = "FirmwareStatusNotification") -> list[str]:
    return [r.payload["status"] for r in csms.of(action)]


async def _update(csms: LoopbackCsms, location: str, retries: int = 1) -> None:
    assert await csms.call(call.UpdateFirmware(location=location, retrieve_date=_now(), retries=retries,
                                               retry_interval=1)) is not None


async def test_a_wrong_checksum_over_ftp_is_installation_failed_and_the_password_never_shows(
        csms: LoopbackCsms, station: Any, ftp: FtpServer, tmp_path: Path, station_log: StationLog) -> None:
    (ftp.root / "pkg.whl").write_bytes(b"PK-not-what-was-announced" * 1000)
    async with station(**_sections(tmp_path)) as daemon:
        await csms.wait_for("StatusNotification", connector_id=1)
        await _update(csms, ftp.url("/pkg.whl") + "#sha256=" + "ab" * 32)
        await csms.wait_for("FirmwareStatusNotification", status="InstallationFailed", timeout=20)
        assert _statuses(csms) == ["Downloading", "Downloaded", "InstallationFailed"]
        assert daemon.restart_requested is None
        assert daemon.services.firmware.state.detail.startswith("SHA-256")
        assert sorted(p.name for p in (tmp_path / "venvs").iterdir()) == ["0.1.0", "current"]
        assert list((tmp_path / "state" / "firmware" / "download").iterdir()) == [], "the package is gone"
    assert "SHA-256" in "\n".join(station_log.matching("firmware install verification failed"))
    logged = "\n".join(station_log.messages())
    assert FtpServer.PASSWORD not in logged
    assert FtpServer.PASSWORD not in (tmp_path / "state" / "logs" / "chargepoint.log").read_text()


async def test_a_download_dropped_half_way_is_retried_then_download_failed(
        csms: LoopbackCsms, station: Any, files: FileServer, tmp_path: Path) -> None:
    files.files["pkg.whl"] = b"x" * 200_000
    async with station(**_sections(tmp_path)) as daemon:
        await csms.wait_for("StatusNotification", connector_id=1)
        await _update(csms, files.url("/drop/pkg.whl"), retries=2)
        await csms.wait_for("FirmwareStatusNotification", status="DownloadFailed", timeout=20)
        assert _statuses(csms) == ["Downloading", "DownloadFailed"]
        assert files.requests == ["/drop/pkg.whl", "/drop/pkg.whl"], "two attempts, as asked"
        assert "attempt 2 of 2" in daemon.services.firmware.state.detail
        assert list((tmp_path / "state" / "firmware" / "download").iterdir()) == [], "no half file left"
        assert daemon.failure is None


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs for the state directory: a disk that really fills up (needs permission to mount)."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


async def test_a_full_disk_ends_the_download_at_once_and_the_station_goes_on(
        csms: LoopbackCsms, files: FileServer, tmp_path: Path, small_disk: Path) -> None:
    from tests.integration.conftest import running, station_config

    config = station_config(csms.url, str(small_disk / "state"), **_sections(tmp_path))
    async with running(config) as daemon:
        await csms.wait_for("StatusNotification", connector_id=1)
        await _update(csms, files.url("/endless/pkg.whl"), retries=3)
        await csms.wait_for("FirmwareStatusNotification", status="DownloadFailed", timeout=30)
        detail = daemon.services.firmware.state.detail
        assert "disk is full" in detail and "attempt 1 of 3" in detail, detail
        assert files.requests == ["/endless/pkg.whl"], "a full disk is not retried"
        assert list((small_disk / "state" / "firmware" / "download").iterdir()) == []
        assert daemon.failure is None and daemon.store.failure is None, "the state database still works"
        assert (await csms.call(call.TriggerMessage(requested_message="StatusNotification",
                                                    connector_id=1))).status == "Accepted"


async def test_a_package_that_is_no_wheel_fails_to_install_and_gives_the_connectors_back(
        csms: LoopbackCsms, station: Any, files: FileServer, tmp_path: Path) -> None:
    files.files["chargepoint-9.9.9-py3-none-any.whl"] = data = b"\x00garbage, not a zip" * 5000
    name = "chargepoint-9.9.9-py3-none-any.whl"
    location = files.url(f"/files/{name}") + "#sha256=" + hashlib.sha256(data).hexdigest()
    async with station(**_sections(tmp_path)) as daemon:
        await csms.wait_for("StatusNotification", connector_id=1, status="Available")
        files.release.clear()  # the download waits half-way: the trigger sees it running
        await _update(csms, location)
        await csms.wait_for("FirmwareStatusNotification", status="Downloading")
        status = await COMMANDS["status"](daemon.service, {})
        assert status["maintenance"]["firmware"]["status"] == "downloading"
        assert f"firmware   downloading from {files.url('/files/')}" in _status_view(status)
        assert (await csms.call(call.TriggerMessage(requested_message="FirmwareStatusNotification"))
                ).status == "Accepted"
        await csms.wait_for("FirmwareStatusNotification", count=2, status="Downloading")
        files.release.set()
        await csms.wait_for("FirmwareStatusNotification", status="InstallationFailed", timeout=20)
        assert _statuses(csms) == ["Downloading", "Downloading", "Downloaded", "Installing",
                                   "InstallationFailed"]
        assert "neither a wheel nor a tarball" in daemon.services.firmware.state.detail
        connector = [r.payload["status"] for r in csms.of("StatusNotification")
                     if r.payload["connector_id"] == 1]
        assert "Unavailable" in connector, "Unavailable while it installed"
        await until(lambda: daemon.station.view(1).operative, 10, "connector 1 operative again")
        assert daemon.restart_requested is None
        await csms.call(call.TriggerMessage(requested_message="FirmwareStatusNotification"))
        await csms.wait_for("FirmwareStatusNotification", status="Idle")
    # A restart does not report it again: the CSMS has it.
    async with station(**_sections(tmp_path)):
        await csms.wait_for("BootNotification", count=2)
        await csms.wait_for("StatusNotification", count=2, connector_id=1, status="Available")
        assert _statuses(csms)[-1] == "Idle"


async def _archive(files: FileServer, name: str) -> dict[str, str]:
    with tarfile.open(fileobj=io.BytesIO(files.uploads[name]), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode()  # type: ignore[union-attr]
                for m in tar.getmembers() if m.isfile()}


async def test_get_diagnostics_uploads_the_window_with_secrets_masked(
        csms: LoopbackCsms, station: Any, files: FileServer, tmp_path: Path, station_log: StationLog) -> None:
    test_log = logging.getLogger("chargepoint.test")
    sections = _sections(tmp_path)
    sections["ocpp"] = {"authorization_key": AUTH_KEY, "security_profile": 1}
    async with station(**sections) as daemon:
        await csms.wait_for("StatusNotification", connector_id=1)
        logfile = tmp_path / "state" / "logs" / "chargepoint.log"
        test_log.info("marker BEFORE the window")
        start = (int(time.time() * 1000) + 2) / 1000
        await until(lambda: time.time() > start + 0.002, 2, "the window to open")
        test_log.info("marker IN the window, AuthorizationKey=%s", AUTH_KEY)
        stop = (int(time.time() * 1000) + 2) / 1000
        await until(lambda: time.time() > stop + 0.002, 2, "the window to close")
        test_log.info("marker AFTER the window")
        await until(lambda: "AFTER" in logfile.read_text(), 5, "the log file to have the markers")

        files.release.clear()  # the upload's answer waits: the trigger sees it running
        answer = await csms.call(call.GetDiagnostics(
            location=files.url("/upload/"), retries=1,
            start_time=datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z"),
            stop_time=datetime.fromtimestamp(stop, UTC).isoformat().replace("+00:00", "Z")))
        assert answer.file_name.startswith("CP-TEST-1-diagnostics-") and answer.file_name.endswith(".tar.gz")
        await csms.wait_for("DiagnosticsStatusNotification", status="Uploading")
        await csms.call(call.TriggerMessage(requested_message="DiagnosticsStatusNotification"))
        await csms.wait_for("DiagnosticsStatusNotification", count=2, status="Uploading")
        status = await COMMANDS["status"](daemon.service, {})
        assert status["maintenance"]["diagnostics"] == {"status": "uploading", "file_name": answer.file_name,
                                                        "detail": None}
        assert f"diagnostics uploading {answer.file_name}" in _status_view(status)
        files.release.set()
        await csms.wait_for("DiagnosticsStatusNotification", status="Uploaded", timeout=20)
        await csms.call(call.TriggerMessage(requested_message="DiagnosticsStatusNotification"))
        await csms.wait_for("DiagnosticsStatusNotification", status="Idle")
    assert _statuses(csms, "DiagnosticsStatusNotification") == ["Uploading", "Uploading", "Uploaded", "Idle"]
    parts = await _archive(files, answer.file_name)
    logs = parts["logs/chargepoint.log"]
    assert "marker IN the window" in logs
    assert "BEFORE" not in logs and "AFTER" not in logs
    for text in parts.values():
        assert AUTH_KEY not in text and MQTT_PASSWORD not in text
    configuration = json.loads(parts["configuration.json"])
    assert configuration["config"]["mqtt"]["password"] == "********"
    assert configuration["config"]["ocpp"]["authorization_key"] == "********"
    assert configuration["settings"]["authorization_key"] == "********"
    store = json.loads(parts["store.json"])
    assert store["outbox_length"] == 0 and store["open_transactions"] == []
    assert json.loads(parts["versions.json"])["chargepoint"] == "0.1.0"


async def test_get_diagnostics_over_ftp_and_a_server_that_is_not_there(
        csms: LoopbackCsms, station: Any, ftp: FtpServer, tmp_path: Path) -> None:
    (ftp.root / "incoming").mkdir()
    (tmp_path / "state").mkdir(parents=True, exist_ok=True)
    (tmp_path / "state" / "selftest.json").write_text('{"result": "pass"}')
    async with station(**_sections(tmp_path)):
        await csms.wait_for("StatusNotification", connector_id=1)
        answer = await csms.call(call.GetDiagnostics(location=ftp.url("/incoming")))
        await csms.wait_for("DiagnosticsStatusNotification", status="Uploaded", timeout=20)
        uploaded = ftp.root / "incoming" / answer.file_name
        with tarfile.open(uploaded) as tar:
            member = tar.extractfile("selftest.json")
            assert member is not None and json.loads(member.read()) == {"result": "pass"}
        # Nobody listens there: two attempts (as asked), then UploadFailed.
        await csms.call(call.GetDiagnostics(location="http://127.0.0.1:9/upload", retries=2,
                                            retry_interval=1))
        await csms.wait_for("DiagnosticsStatusNotification", status="UploadFailed", timeout=20)
        # A location that is no URL of ours: no file name, nothing uploaded.
        assert (await csms.call(call.GetDiagnostics(location="mailto:ops@example.com"))).file_name is None
    assert _statuses(csms, "DiagnosticsStatusNotification") == ["Uploading", "Uploaded", "Uploading",
                                                                 "UploadFailed"]


async def test_installing_waits_for_the_running_transaction_to_end(
        csms: LoopbackCsms, station: Any, files: FileServer, tmp_path: Path, station_log: StationLog) -> None:
    from tests.integration.conftest import charging

    files.files["chargepoint-9.9.9-py3-none-any.whl"] = b"not a wheel"
    async with station(**_sections(tmp_path)) as daemon:
        await charging(csms, daemon)
        await _update(csms, files.url("/files/chargepoint-9.9.9-py3-none-any.whl"))
        await csms.wait_for("FirmwareStatusNotification", status="Downloaded", timeout=20)
        await station_log.wait_for("waiting for the running transactions to end", timeout=20)
        assert _statuses(csms)[-1] == "Downloaded", "nothing is installed while a transaction runs"
        assert daemon.station.view(1).scheduled_operative is False, "Unavailable once it ends"
        tx = (await csms.wait_for("StartTransaction"))[0]
        assert csms.of("StopTransaction") == []
        await csms.remote_stop(100)
        await csms.wait_for("FirmwareStatusNotification", status="InstallationFailed", timeout=20)
        assert _statuses(csms)[-3:] == ["Downloaded", "Installing", "InstallationFailed"]
        stop = (await csms.wait_for("StopTransaction"))[0]
        assert stop.payload["reason"] == "Remote" and stop.at < csms.of("FirmwareStatusNotification")[-2].at
        assert tx.payload["connector_id"] == 1
        await until(lambda: daemon.station.view(1).operative, 10, "connector 1 given back")


async def test_with_stop_transactions_the_update_stops_them_with_reason_reboot(
        csms: LoopbackCsms, station: Any, files: FileServer, tmp_path: Path) -> None:
    from tests.integration.conftest import charging

    files.files["chargepoint-9.9.9-py3-none-any.whl"] = b"not a wheel"
    sections = _sections(tmp_path)
    sections["firmware"]["stop_transactions"] = True
    async with station(**sections) as daemon:
        await charging(csms, daemon)
        await _update(csms, files.url("/files/chargepoint-9.9.9-py3-none-any.whl"))
        stop = (await csms.wait_for("StopTransaction", timeout=20))[0]
        assert stop.payload["reason"] == "Reboot"
        await csms.wait_for("FirmwareStatusNotification", status="InstallationFailed", timeout=20)
        await until(lambda: daemon.station.view(1).operative, 10, "connector 1 given back")



async def test_a_download_waits_for_its_retrieve_date_and_the_trigger_says_idle_meanwhile(
        csms: LoopbackCsms, station: Any, files: FileServer, tmp_path: Path) -> None:
    files.files["pkg.whl"] = b"package"
    async with station(**_sections(tmp_path)) as daemon:
        await csms.wait_for("StatusNotification", connector_id=1)
        later = datetime.fromtimestamp(daemon.clock.time() + 30, UTC)  # 30 station seconds: 3 s here
        await csms.call(call.UpdateFirmware(location=files.url("/files/pkg.whl") + "#sha256=" + "0" * 64,
                                            retrieve_date=later.isoformat().replace("+00:00", "Z")))
        await until(lambda: daemon.services.firmware.state.status.value == "download_scheduled", 5,
                    "the download to be scheduled")
        await csms.call(call.TriggerMessage(requested_message="FirmwareStatusNotification"))
        await csms.wait_for("FirmwareStatusNotification", status="Idle")
        assert files.requests == [], "nothing is fetched before the retrieve date"
        status = await COMMANDS["status"](daemon.service, {})
        assert "firmware   download scheduled from" in _status_view(status)
        await csms.wait_for("FirmwareStatusNotification", status="InstallationFailed", timeout=20)
        assert daemon.clock.time() >= later.timestamp()
        assert _statuses(csms) == ["Idle", "Downloading", "Downloaded", "InstallationFailed"]


async def test_the_transfers_alone_post_a_form_and_name_what_went_wrong(
        files: FileServer, ftp: FtpServer, tmp_path: Path) -> None:
    from chargepoint.core.firmware import transfer

    archive = tmp_path / "diag.tar.gz"
    archive.write_bytes(b"z" * 300_000)
    await transfer.upload(files.url("/upload"), archive, method="POST")
    assert files.uploads["diag.tar.gz"] == archive.read_bytes()
    with pytest.raises(transfer.TransferError, match="FTP: 550"):
        await transfer.upload(ftp.url("/no/such/dir"), archive)
    with pytest.raises(transfer.TransferError, match="HTTP 404"):
        await transfer.download(files.url("/files/missing.whl"), tmp_path / "missing.whl")
    assert not (tmp_path / "missing.whl.part").exists() and not (tmp_path / "missing.whl").exists()
    (ftp.root / "p.whl").write_bytes(b"w" * 200_000)
    assert await transfer.download(ftp.url("/p.whl"), tmp_path / "p.whl") == 200_000


async def test_an_operators_installer_command_replaces_the_venvs(
        csms: LoopbackCsms, station: Any, files: FileServer, tmp_path: Path) -> None:
    files.files["bundle.img"] = image = b"an operating system image" * 1000
    digest = hashlib.sha256(image).hexdigest()
    sections = _sections(tmp_path)
    sections["firmware"]["installer_command"] = f"sh -c 'cp \"$0\" {tmp_path}/installed.img'"
    async with station(**sections) as daemon:
        await csms.wait_for("StatusNotification", connector_id=1)
        await _update(csms, files.url(f"/files/bundle.img#sha256={digest}"))
        await csms.wait_for("FirmwareStatusNotification", status="Installed", timeout=20)
        assert (tmp_path / "installed.img").read_bytes() == image, "the command got the verified package"
        assert _statuses(csms) == ["Downloading", "Downloaded", "Installing", "Installed"]
        assert daemon.restart_requested is None, "restarting is the command's business"
        await until(lambda: daemon.station.view(1).operative, 10, "connector 1 given back")
    sections["firmware"]["installer_command"] = "sh -c 'echo the image does not fit >&2; exit 3'"
    async with station(**sections) as daemon:
        await csms.wait_for("BootNotification", count=2)
        await _update(csms, files.url(f"/files/bundle.img#sha256={digest}"))
        await csms.wait_for("FirmwareStatusNotification", status="InstallationFailed", timeout=20)
        assert "exit 3): the image does not fit" in daemon.services.firmware.state.detail
