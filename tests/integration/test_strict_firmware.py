"""Firmware Management against the strict ocpp-rpc CSMS: every 1.6 frame schema-checked.

UpdateFirmware (a package refused by its checksum, one whose server drops the
download half-way), GetDiagnostics with its window, and the triggered
FirmwareStatusNotification / DiagnosticsStatusNotification, all through the
independent peer of ``test_strict_peer``; the run must end with zero strict
validation failures and the connection never dropped.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.firmware_rig import FileServer
from tests.integration.strict_peer import PEER_DIR, SCRIPT, StrictPeer
from tests.integration.test_strict_peer import HEARTBEAT_S


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[StrictPeer]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the strict ocpp-rpc peer cannot run (make test installs it)")
    if not (PEER_DIR / "node_modules" / "ocpp-rpc").is_dir():
        pytest.fail(f"{PEER_DIR / 'node_modules'} is missing: run `make test` to install the strict peer")
    stderr_path = tmp_path / "strict_csms.stderr"
    with stderr_path.open("wb") as stderr:
        process = await asyncio.create_subprocess_exec(
            node, str(SCRIPT), "0", str(HEARTBEAT_S), cwd=PEER_DIR,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=stderr)
    server = StrictPeer(process, stderr_path)
    try:
        await server.wait(lambda: server.port, "the peer to listen", timeout=10)
        yield server
    finally:
        await server.quit()


@pytest.fixture
async def files() -> AsyncIterator[FileServer]:
    server = await FileServer().start()
    yield server
    await server.close()


@pytest.fixture
async def daemon(strict: StrictPeer, tmp_path: Path) -> AsyncIterator[Daemon]:
    venvs = tmp_path / "venvs"
    (venvs / "0.1.0").mkdir(parents=True)
    (venvs / "current").symlink_to("0.1.0")
    station = Daemon(parse({
        "station": {"identity": "CP-STRICT-FW", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{strict.port}", "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "simulation": {"speed": 10.0},
        "control": {"socket": str(tmp_path / "control.sock")},
        "firmware": {"venvs_dir": str(venvs), "retry_interval_s": 1, "allow_unsigned_without_tls": True},
        "diagnostics": {"retry_interval_s": 1},
    }, "<test_strict_firmware>"))
    task = asyncio.ensure_future(station.run())
    try:
        await strict.wait_call("StatusNotification", connectorId=1, status="Available")
        yield station
        assert strict.of("close") == [], "the connection dropped" + strict.report()
    finally:
        station.stop()
        await asyncio.wait_for(task, 20)
    assert strict.strict_failures() == [], "ocpp-rpc (strict mode) rejected frames" + strict.report()
    assert strict.of("badMessage") == [], strict.report()


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def _ok(strict: StrictPeer, action: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await strict.call(action, params)
    assert answer["event"] == "result", answer
    return dict(answer["result"])


def _statuses(strict: StrictPeer, action: str) -> list[str]:
    return [c["params"]["status"] for c in strict.calls(action)]


async def test_update_firmware_and_get_diagnostics_pass_the_strict_peer(
        strict: StrictPeer, daemon: Daemon, files: FileServer) -> None:
    now = daemon.clock.time()
    files.files["pkg.whl"] = b"not the package announced" * 100
    assert await _ok(strict, "UpdateFirmware", {
        "location": files.url("/files/pkg.whl") + "#sha256=" + "00" * 32,
        "retrieveDate": _iso(now), "retries": 1, "retryInterval": 1}) == {}
    await strict.wait_call("FirmwareStatusNotification", status="InstallationFailed", timeout=20)
    assert await _ok(strict, "UpdateFirmware", {"location": files.url("/drop/pkg.whl"),
                                                 "retrieveDate": _iso(now)}) == {}
    await strict.wait_call("FirmwareStatusNotification", status="DownloadFailed", timeout=30)
    assert _statuses(strict, "FirmwareStatusNotification") == [
        "Downloading", "Downloaded", "InstallationFailed", "Downloading", "DownloadFailed"]

    answer = await _ok(strict, "GetDiagnostics", {"location": files.url("/upload/"), "retries": 2,
                                                  "retryInterval": 1, "startTime": _iso(now - 3600),
                                                  "stopTime": _iso(now + 3600)})
    assert answer["fileName"].startswith("CP-STRICT-FW-diagnostics-")
    await strict.wait_call("DiagnosticsStatusNotification", status="Uploaded", timeout=20)
    assert answer["fileName"] in files.uploads

    for message in ("FirmwareStatusNotification", "DiagnosticsStatusNotification"):
        before = len(strict.calls(message))
        assert await _ok(strict, "TriggerMessage", {"requestedMessage": message}) == {"status": "Accepted"}
        sent = await strict.wait_call(message, count=before + 1)
        assert sent[-1]["params"] == {"status": "Idle"}

