"""Diagnostics for the operator: one archive of what a technician would look at, uploaded on request.

The archive (``<identity>-diagnostics-<UTC time>.tar.gz``) holds the daemon's
log lines in the requested window (its own log file, see ``app/logfile.py``),
the recent events and OCPP frames in that window, the effective configuration
with secrets masked, the state database's summary (open transactions, queued
messages), the versions, and the last self-test report when there is one.
What goes in is given by ``DiagnosticsSources`` (the daemon knows where each
part lives); the archive is written in a worker thread and uploaded to the
location the CSMS names (``transfer.upload``), with retries. Statuses are
neutral ``DiagnosticsStatus`` values the adapters translate (1.6
DiagnosticsStatusNotification, 2.0.1 LogStatusNotification). Every upload
ends with a final status, Uploaded or UploadFailed, whatever goes wrong (a
URL refused, an error no step expected); the reason never shows the URL's
password.
"""

from __future__ import annotations

import asyncio
import enum
import io
import json
import logging
import pathlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from chargepoint.core.firmware import transfer
from hal.clock import Clock

if TYPE_CHECKING:
    import tarfile

log = logging.getLogger(__name__)

#: A log line begins with its time: "2026-05-01T12:00:00.123Z INFO name: message" (app/logfile.py).
_STAMP_LENGTH = 24


class LogKind(enum.Enum):
    """What an upload carries: the diagnostics archive, or the security log's events in the window."""

    DIAGNOSTICS = "diagnostics"
    SECURITY = "security"


class DiagnosticsStatus(enum.Enum):
    IDLE = "idle"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    UPLOAD_FAILED = "upload_failed"


@dataclass(frozen=True)
class DiagnosticsRequest:
    """An upload as the CSMS asked for it (times are epoch seconds; None: unbounded)."""

    location: str
    start_at: float | None = None
    stop_at: float | None = None
    retries: int = 1
    retry_interval_s: float = 60.0
    #: The CSMS's number for it (2.0.1 and 1.6 security GetLog requestId; None in 1.6 GetDiagnostics).
    request_id: int | None = None
    kind: LogKind = LogKind.DIAGNOSTICS


@dataclass(frozen=True)
class DiagnosticsState:
    status: DiagnosticsStatus
    request_id: int | None = None
    file_name: str | None = None
    detail: str | None = None
    since: float = 0.0

    @property
    def in_progress(self) -> bool:
        return self.status is DiagnosticsStatus.UPLOADING


@dataclass
class DiagnosticsSources:
    """Where the archive's parts come from; each is read when an archive is made."""

    #: The daemon's log files, oldest first.
    log_files: Callable[[], list[pathlib.Path]] = list
    #: Recent events and frames (``time`` epoch seconds in each).
    recent: Callable[[], list[dict[str, Any]]] = list
    #: The effective configuration, secrets masked (JSON-ready).
    configuration: Callable[[], dict[str, Any]] = dict
    #: The state database's summary.
    summary: Callable[[], Awaitable[dict[str, Any]]] | None = None
    versions: Callable[[], dict[str, Any]] = dict
    #: The last self-test report's file (may not exist).
    selftest: pathlib.Path | None = None
    extra: dict[str, Callable[[], Any]] = field(default_factory=dict)
    #: Writes the security log of a window to a file, the number of events its answer
    #: (``SecurityLog.export``); None: no security log here, such uploads fail.
    security_log: Callable[[pathlib.Path, float | None, float | None], Awaitable[int]] | None = None


def stamp_of(line: str) -> float | None:
    """The epoch time a log line begins with, or None (a continuation line of a traceback)."""
    try:
        moment = datetime.strptime(line[:_STAMP_LENGTH], "%Y-%m-%dT%H:%M:%S.%fZ")
        return moment.replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def lines_in_window(files: list[pathlib.Path], start: float | None, stop: float | None,
                    out: io.BufferedWriter | Any) -> int:
    """Copy the lines of ``files`` written in [start, stop] to ``out``; the number copied."""
    copied = 0
    keep = False
    for path in files:
        try:
            handle = path.open("r", encoding="utf-8", errors="replace")
        except OSError:
            continue
        with handle:
            for line in handle:
                stamp = stamp_of(line)
                if stamp is not None:
                    keep = (start is None or stamp >= start) and (stop is None or stamp <= stop)
                if keep:
                    out.write(line.encode("utf-8"))
                    copied += 1
    return copied


class Diagnostics:
    """One diagnostics upload at a time (a new request replaces the one running)."""

    def __init__(self, sources: DiagnosticsSources, clock: Clock, state_dir: str, identity: str, *,
                 http_method: str = "PUT", timeout_s: float = 60.0) -> None:
        self.sources = sources
        self.clock = clock
        self.dir = pathlib.Path(state_dir) / "diagnostics"
        self.identity = identity
        self.http_method = http_method
        self.timeout_s = timeout_s
        self.listeners: list[Callable[[DiagnosticsState], None]] = []
        self.state = DiagnosticsState(DiagnosticsStatus.IDLE)
        self._task: asyncio.Task[None] | None = None
        self._next: str | None = None

    def next_name(self, kind: LogKind = LogKind.DIAGNOSTICS) -> str:
        """The file name the next upload will have (an answer names it before the upload begins)."""
        moment = datetime.fromtimestamp(self.clock.time(), UTC).strftime("%Y%m%dT%H%M%SZ")
        suffix = "security-{}.log" if kind is LogKind.SECURITY else "diagnostics-{}.tar.gz"
        self._next = f"{self.identity}-{suffix.format(moment)}"
        return self._next

    def request(self, request: DiagnosticsRequest) -> tuple[str, bool]:
        """Start an upload: (the archive's file name, whether one running was canceled for it)."""
        canceled = self._task is not None and not self._task.done()
        if canceled:
            assert self._task is not None
            self._task.cancel()
        name = self._next or self.next_name(request.kind)
        self._next = None
        self.state = DiagnosticsState(DiagnosticsStatus.IDLE, request.request_id, name)
        self._task = asyncio.ensure_future(self._run(request, name))
        return name, canceled

    def activity(self) -> DiagnosticsState:
        """What a triggered report says: uploading, else idle."""
        return self.state if self.state.in_progress else DiagnosticsState(
            DiagnosticsStatus.IDLE, since=self.clock.time())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def _enter(self, status: DiagnosticsStatus, detail: str | None = None) -> None:
        self.state = replace(self.state, status=status, detail=detail, since=self.clock.time())
        (log.warning if detail else log.info)("diagnostics %s%s", status.value.replace("_", " "),
                                              f": {detail}" if detail else "")
        for listener in list(self.listeners):
            listener(self.state)

    async def _run(self, request: DiagnosticsRequest, name: str) -> None:
        try:
            await self._upload(request, name)
        except Exception as exc:  # noqa: BLE001 - whatever no step expected, the upload ends reported
            reason = transfer.hide(f"unexpected {type(exc).__name__}: {exc}".rstrip(": "), request.location)
            self._enter(DiagnosticsStatus.UPLOAD_FAILED, reason)

    async def _upload(self, request: DiagnosticsRequest, name: str) -> None:
        self._enter(DiagnosticsStatus.UPLOADING)
        archive = self.dir / name
        try:
            if request.kind is LogKind.SECURITY:
                if self.sources.security_log is None:
                    self._enter(DiagnosticsStatus.UPLOAD_FAILED, "this station keeps no security log")
                    return
                archive.parent.mkdir(parents=True, exist_ok=True)
                count = await self.sources.security_log(archive, request.start_at, request.stop_at)
                log.info("security log upload %s: %d events", name, count)
            else:
                summary = await self.sources.summary() if self.sources.summary is not None else {}
                await asyncio.to_thread(self.build, archive, request, summary)
        except OSError as exc:
            self._enter(DiagnosticsStatus.UPLOAD_FAILED, f"cannot write the archive: {exc.strerror or exc}")
            return
        try:
            attempts = max(1, request.retries)
            for attempt in range(1, attempts + 1):
                try:
                    await transfer.upload(request.location, archive, method=self.http_method,
                                          timeout_s=self.timeout_s)
                except transfer.TransferError as exc:
                    if exc.final or attempt == attempts:
                        self._enter(DiagnosticsStatus.UPLOAD_FAILED,
                                    f"{exc.reason} (attempt {attempt} of {attempts})")
                        return
                    log.warning("diagnostics upload attempt %d of %d to %s failed: %s", attempt, attempts,
                                transfer.shown(request.location), exc.reason)
                    await self.clock.sleep(request.retry_interval_s)
                    continue
                self._enter(DiagnosticsStatus.UPLOADED)
                return
        finally:
            await asyncio.to_thread(archive.unlink, True)

    def build(self, archive: pathlib.Path, request: DiagnosticsRequest, summary: dict[str, Any]) -> None:
        """Write the archive (in a worker thread)."""
        import tarfile  # at the first upload, not at start: the daemon keeps every module it imports

        archive.parent.mkdir(parents=True, exist_ok=True)
        start, stop = request.start_at, request.stop_at
        window = {"start": _iso(start), "stop": _iso(stop)}
        logs = archive.with_suffix(".log.tmp")
        try:
            with logs.open("wb") as out:
                count = lines_in_window(self.sources.log_files(), start, stop, out)
            recent = [e for e in self.sources.recent() if (start is None or e.get("time", 0) >= start)
                      and (stop is None or e.get("time", 0) <= stop)]
            with tarfile.open(archive, "w:gz") as tar:
                tar.add(logs, "logs/chargepoint.log")
                _add(tar, "logs/recent.jsonl", "".join(json.dumps(e) + "\n" for e in recent))
                _add(tar, "configuration.json", json.dumps(self.sources.configuration(), indent=1))
                _add(tar, "store.json", json.dumps(summary, indent=1))
                _add(tar, "versions.json", json.dumps(self.sources.versions(), indent=1))
                selftest = self.sources.selftest
                if selftest is not None and selftest.is_file():
                    tar.add(selftest, "selftest.json")
                for member, make in self.sources.extra.items():
                    _add(tar, member, json.dumps(make(), indent=1))
                _add(tar, "README.txt", f"chargepoint diagnostics of {self.identity}\n"
                                        f"window: {window['start'] or 'open'} .. {window['stop'] or 'open'}\n"
                                        f"log lines: {count}, recent events and frames: {len(recent)}\n")
        finally:
            logs.unlink(missing_ok=True)


def _iso(moment: float | None) -> str | None:
    return None if moment is None else datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def _add(tar: tarfile.TarFile, name: str, text: str) -> None:
    data = text.encode("utf-8")
    info = tar.tarinfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o640
    tar.addfile(info, io.BytesIO(data))
