"""A password in a firmware or diagnostics URL (``ftp://user:password@host/...``) shows nowhere.

The CSMS puts it in UpdateFirmware and GetDiagnostics; the station needs it for
the transfer, and keeps it out of everything a person or a CSMS can read back:
the frames of ``chargepoint logs --frames``, the events, the log file, the
status, and the diagnostics archive (its ``logs/recent.jsonl`` holds the recent
frames).
"""

from __future__ import annotations

import json
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ocpp.v16 import call

from chargepoint.control.commands import COMMANDS
from tests.firmware_rig import FtpServer
from tests.integration.loopback_csms import LoopbackCsms

PASSWORD = FtpServer.PASSWORD


def _sections(tmp_path: Path) -> dict[str, Any]:
    venvs = tmp_path / "venvs"
    (venvs / "0.1.0").mkdir(parents=True)
    (venvs / "current").symlink_to("0.1.0")
    return {"firmware": {"venvs_dir": str(venvs), "retry_interval_s": 1},
            "diagnostics": {"retry_interval_s": 1},
            "control": {"socket": str(tmp_path / "control.sock")}}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def test_passwords_in_firmware_and_diagnostics_urls_show_nowhere(
        csms: LoopbackCsms, station: Any, tmp_path: Path) -> None:
    ftp = FtpServer(tmp_path / "ftp")
    try:
        (ftp.root / "pkg.whl").write_bytes(b"PK-not-what-was-announced" * 100)
        (ftp.root / "incoming").mkdir()
        async with station(**_sections(tmp_path)) as daemon:
            await csms.wait_for("StatusNotification", connector_id=1)
            assert await csms.call(call.UpdateFirmware(
                location=ftp.url("/pkg.whl") + "#sha256=" + "ab" * 32, retrieve_date=_now(), retries=1,
                retry_interval=1)) is not None
            await csms.wait_for("FirmwareStatusNotification", status="InstallationFailed", timeout=20)
            answer = await csms.call(call.GetDiagnostics(location=ftp.url("/incoming"), retries=1))
            await csms.wait_for("DiagnosticsStatusNotification", status="Uploaded", timeout=20)
            frames = (await COMMANDS["logs"](daemon.service, {"kind": "frames", "limit": 0}))["entries"]
            events = (await COMMANDS["logs"](daemon.service, {"kind": "events", "limit": 0}))["entries"]
            status = await COMMANDS["status"](daemon.service, {})
        with tarfile.open(ftp.root / "incoming" / answer.file_name) as tar:
            archive = {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()  # type: ignore[union-attr]
                       if m.isfile()}
    finally:
        ftp.close()

    shown = [f["text"] for f in frames if "UpdateFirmware" in f["text"] or "GetDiagnostics" in f["text"]]
    assert len(shown) >= 2 and all("station:(redacted)@127.0.0.1" in text for text in shown), shown
    recent = [json.loads(line) for line in archive["logs/recent.jsonl"].splitlines()]
    assert any("UpdateFirmware" in e.get("text", "") for e in recent)
    everything = {"frames": json.dumps(frames), "events": json.dumps(events), "status": json.dumps(status),
                  "log file": (tmp_path / "state" / "logs" / "chargepoint.log").read_text(), **archive}
    assert [where for where, text in everything.items() if PASSWORD in text] == []
