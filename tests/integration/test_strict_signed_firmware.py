"""Signed firmware and log uploads in 1.6 (security extension) and 2.0.1, against the strict ocpp-rpc CSMS.

A package signed under the installed manufacturer root is verified and
installed; the same signature over a tampered package is InvalidSignature, the
package never reaches the installer and InvalidFirmwareSignature reaches the
CSMS; a package signed by a certificate of an unknown root is answered
InvalidCertificate before anything is downloaded. GetLog (SecurityLog)
uploads the security log's events of the requested window, over real HTTP on
loopback. Every frame is schema-checked by the independent peer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from chargepoint.core.security.certificates import RootKind
from tests.firmware_rig import FileServer
from tests.integration.strict_peer import StrictPeer, strict_peer
from tests.integration.test_strict_firmware import _iso, _ok
from tests.integration.test_strict_peer import HEARTBEAT_S
from tests.pki import Ca, pem, sign_package

PACKAGE = b"a signed operating system image" * 500


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = await FileServer().start()
    yield server
    await server.close()


@asynccontextmanager
async def running(peer: StrictPeer, tmp_path: Path, identity: str) -> AsyncIterator[Daemon]:
    """A station whose installer copies the verified package to ``installed.img``."""
    daemon = Daemon(parse({
        "station": {"identity": identity, "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
        "firmware": {"installer_command": f"sh -c 'cp \"$0\" {tmp_path}/installed.img'",
                     "retry_interval_s": 1},
        "diagnostics": {"retry_interval_s": 1},
    }, "<test_strict_signed_firmware>"))
    task = asyncio.ensure_future(daemon.run())
    try:
        yield daemon
        assert peer.of("close") == [], "the connection dropped" + peer.report()
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], "ocpp-rpc (strict mode) rejected frames" + peer.report()
    assert peer.of("badMessage") == [], peer.report()


def signed_firmware(location: str, now: float, certificate: Any, key: Any, data: bytes) -> dict[str, Any]:
    return {"location": location, "retrieveDateTime": _iso(now),
            "signingCertificate": pem(certificate), "signature": sign_package(key, data)}


def statuses(peer: StrictPeer, action: str, request_id: int) -> list[str]:
    return [c["params"]["status"] for c in peer.calls(action) if c["params"].get("requestId") == request_id]


async def test_signed_update_firmware_and_get_log_in_16(tmp_path: Path, files: FileServer) -> None:
    root = Ca.root("Manufacturer")
    signing, key = root.leaf("firmware signing")
    installed = tmp_path / "installed.img"
    async with strict_peer(tmp_path, HEARTBEAT_S) as peer, \
            running(peer, tmp_path, "CP-SIGNED-16") as daemon:
        await peer.wait_call("StatusNotification", connectorId=1, status="Available", timeout=15)
        now = daemon.clock.time()
        assert await _ok(peer, "InstallCertificate", {
            "certificateType": "ManufacturerRootCertificate", "certificate": pem(root.certificate)}) == {
            "status": "Accepted"}

        # Signed by the installed manufacturer root: verified, then installed.
        files.files["good.img"] = PACKAGE
        firmware = signed_firmware(files.url("/files/good.img"), now, signing, key, PACKAGE)
        assert await _ok(peer, "SignedUpdateFirmware", {"requestId": 7, "firmware": firmware}) == {
            "status": "Accepted"}
        await peer.wait_call("SignedFirmwareStatusNotification", requestId=7, status="Installed", timeout=20)
        assert statuses(peer, "SignedFirmwareStatusNotification", 7) == [
            "Downloading", "Downloaded", "SignatureVerified", "Installing", "Installed"]
        assert installed.read_bytes() == PACKAGE

        # The same signature over a tampered package: refused before the installer sees it.
        installed.unlink()
        files.files["tampered.img"] = PACKAGE[:-8] + b"TAMPERED"
        firmware = signed_firmware(files.url("/files/tampered.img"), now, signing, key, PACKAGE)
        assert await _ok(peer, "SignedUpdateFirmware", {"requestId": 8, "firmware": firmware}) == {
            "status": "Accepted"}
        await peer.wait_call("SignedFirmwareStatusNotification", requestId=8, status="InvalidSignature",
                             timeout=20)
        await peer.wait_call("SecurityEventNotification", type="InvalidFirmwareSignature")
        assert statuses(peer, "SignedFirmwareStatusNotification", 8) == [
            "Downloading", "Downloaded", "InvalidSignature"]
        assert not installed.exists(), "a package with a wrong signature reached the installer"

        # Signed by a certificate of a root the station does not have: refused at once.
        stranger, stranger_key = Ca.root("Someone else").leaf("firmware signing")
        firmware = signed_firmware(files.url("/files/good.img"), now, stranger, stranger_key, PACKAGE)
        served = len(files.requests)
        assert await _ok(peer, "SignedUpdateFirmware", {"requestId": 9, "firmware": firmware}) == {
            "status": "InvalidCertificate"}
        await peer.wait_call("SecurityEventNotification", type="InvalidFirmwareSigningCertificate")
        assert statuses(peer, "SignedFirmwareStatusNotification", 9) == []
        assert len(files.requests) == served, "a package of an unknown signer was downloaded"

        # The triggers say what runs now: nothing.
        for message in ("FirmwareStatusNotification", "LogStatusNotification"):
            action = "SignedFirmwareStatusNotification" if message.startswith("Firmware") else message
            before = len(peer.calls(action))
            assert await _ok(peer, "ExtendedTriggerMessage", {"requestedMessage": message}) == {
                "status": "Accepted"}
            sent = await peer.wait_call(action, count=before + 1)
            assert sent[-1]["params"] == {"status": "Idle"}

        # The security log of the window, uploaded; a window before the events holds none of them.
        later = daemon.clock.time()
        answer = await _ok(peer, "GetLog", {"logType": "SecurityLog", "requestId": 10, "log": {
            "remoteLocation": files.url("/upload/"), "oldestTimestamp": _iso(now - 60),
            "latestTimestamp": _iso(later + 60)}})
        assert answer["status"] == "Accepted" and answer["filename"].startswith("CP-SIGNED-16-security-")
        await peer.wait_call("LogStatusNotification", requestId=10, status="Uploaded", timeout=20)
        assert statuses(peer, "LogStatusNotification", 10) == ["Uploading", "Uploaded"]
        text = files.uploads[answer["filename"]].decode()
        assert "invalid_firmware_signature" in text and "invalid_firmware_signing_certificate" in text
        assert "reconfiguration_of_security_parameters" in text  # the root installed above
        answer = await _ok(peer, "GetLog", {"logType": "SecurityLog", "requestId": 11, "log": {
            "remoteLocation": files.url("/upload/"), "latestTimestamp": _iso(now - 3600)}})
        await peer.wait_call("LogStatusNotification", requestId=11, status="Uploaded", timeout=20)
        assert "invalid_firmware" not in files.uploads[answer["filename"]].decode()


async def test_update_firmware_and_get_log_in_201(tmp_path: Path, files: FileServer) -> None:
    """The same in 2.0.1: UpdateFirmware with its signature fields, GetLog, the triggers."""
    root = Ca.root("Manufacturer")
    signing, key = root.leaf("firmware signing")
    installed = tmp_path / "installed.img"
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp2.0.1") as peer, \
            running(peer, tmp_path, "CP-SIGNED-201") as daemon:
        await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available", timeout=15)
        assert peer.of("client")[0]["protocol"] == "ocpp2.0.1"
        now = daemon.clock.time()
        assert (await daemon.security.install_root(RootKind.MANUFACTURER, pem(root.certificate))).value == \
            "accepted"

        files.files["good.img"] = PACKAGE
        firmware = signed_firmware(files.url("/files/good.img"), now, signing, key, PACKAGE)
        firmware["installDateTime"] = _iso(now + 20)  # simulated seconds: 2 s here
        assert await _ok(peer, "UpdateFirmware", {"requestId": 21, "firmware": firmware, "retries": 1}) == {
            "status": "Accepted"}
        await peer.wait_call("FirmwareStatusNotification", requestId=21, status="Installed", timeout=20)
        assert statuses(peer, "FirmwareStatusNotification", 21) == [
            "Downloading", "Downloaded", "SignatureVerified", "InstallScheduled", "Installing", "Installed"]
        assert daemon.clock.time() >= now + 20, "installed before its installDateTime"
        assert installed.read_bytes() == PACKAGE

        installed.unlink()
        files.files["tampered.img"] = PACKAGE[:-8] + b"TAMPERED"
        firmware = signed_firmware(files.url("/files/tampered.img"), now, signing, key, PACKAGE)
        assert await _ok(peer, "UpdateFirmware", {"requestId": 22, "firmware": firmware}) == {
            "status": "Accepted"}
        await peer.wait_call("FirmwareStatusNotification", requestId=22, status="InvalidSignature",
                             timeout=20)
        assert statuses(peer, "FirmwareStatusNotification", 22) == [
            "Downloading", "Downloaded", "InvalidSignature"]
        assert not installed.exists(), "a package with a wrong signature reached the installer"

        stranger, stranger_key = Ca.root("Someone else").leaf("firmware signing")
        firmware = signed_firmware(files.url("/files/good.img"), now, stranger, stranger_key, PACKAGE)
        served = len(files.requests)
        assert await _ok(peer, "UpdateFirmware", {"requestId": 23, "firmware": firmware}) == {
            "status": "InvalidCertificate"}
        assert statuses(peer, "FirmwareStatusNotification", 23) == []
        assert len(files.requests) == served, "a package of an unknown signer was downloaded"
        kinds = [e.kind.value for e in await daemon.security.log.entries()]
        assert "invalid_firmware_signature" in kinds and "invalid_firmware_signing_certificate" in kinds

        for message in ("FirmwareStatusNotification", "LogStatusNotification"):
            before = len(peer.calls(message))
            assert await _ok(peer, "TriggerMessage", {"requestedMessage": message}) == {"status": "Accepted"}
            sent = await peer.wait_call(message, count=before + 1)
            assert sent[-1]["params"] == {"status": "Idle"}

        later = daemon.clock.time()
        answer = await _ok(peer, "GetLog", {"logType": "SecurityLog", "requestId": 24, "log": {
            "remoteLocation": files.url("/upload/"), "oldestTimestamp": _iso(now - 60),
            "latestTimestamp": _iso(later + 60)}})
        assert answer["status"] == "Accepted" and answer["filename"].startswith("CP-SIGNED-201-security-")
        await peer.wait_call("LogStatusNotification", requestId=24, status="Uploaded", timeout=20)
        assert statuses(peer, "LogStatusNotification", 24) == ["Uploading", "Uploaded"]
        text = files.uploads[answer["filename"]].decode()
        assert "invalid_firmware_signature" in text and "invalid_firmware_signing_certificate" in text
        answer = await _ok(peer, "GetLog", {"logType": "SecurityLog", "requestId": 25, "log": {
            "remoteLocation": files.url("/upload/"), "latestTimestamp": _iso(now - 3600)}})
        await peer.wait_call("LogStatusNotification", requestId=25, status="Uploaded", timeout=20)
        assert "invalid_firmware" not in files.uploads[answer["filename"]].decode()

        answer = await _ok(peer, "GetLog", {"logType": "DiagnosticsLog", "requestId": 26, "log": {
            "remoteLocation": files.url("/upload/")}})
        assert answer["filename"].startswith("CP-SIGNED-201-diagnostics-")
        await peer.wait_call("LogStatusNotification", requestId=26, status="Uploaded", timeout=20)
        assert files.uploads[answer["filename"]][:2] == b"\x1f\x8b", "the diagnostics archive (gzip)"
