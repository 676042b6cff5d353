"""The firmware update from request to result: download, verify, wait, install, restart, report.

One update at a time. ``update`` answers at once and the work runs in a task:
at ``retrieve_at`` the package is downloaded into the state directory
(attempts and the wait between them as requested), then every verifier runs
on it (the SHA-256 one first; nothing of the package is executed before they
all pass), then, at ``install_at``, the station is held: connectors go
Unavailable (a running transaction finishes first, or is stopped when the
configuration says so) and the installer runs. An installer that needs a
restart (a new virtual environment) leaves the verdict to the new version and
the guard (``trial.py``): after the restart, ``resume`` reads the trial and
reports Installed once the new version's boot is accepted, or
InstallationFailed when the guard rolled back. Availability is given back as
it was before the update, also after a restart.

A kill may come at any instant, so ``resume`` decides from the status and the
trial record together (a pending trial of the running version is its own,
even when the old process died before saving InstallRebooting), says exactly
one final status for the update, and removes what the update left (the
download, the unpacked package, an environment nothing runs). Every final
status is saved before the trial record is removed: a kill between the two
leaves the final word, never a status without its record.

Every status is a ``FirmwareState`` handed to the listeners (the adapters
send it); the latest one is kept in ``<state_dir>/firmware/status.json`` with
whether a CSMS has received it, so the final word is not lost to a restart or
an outage: an adapter sends ``unreported`` after each accepted boot. Every
update ends with a final status, whatever goes wrong: an error no step
expected is DownloadFailed while downloading, InstallationFailed after.

A download takes at most ``max_download_mb``, and never more than leaves
``DOWNLOAD_RESERVE_MB`` free on the state directory's disk: the state database
shares that disk, and a station whose database cannot be written stops.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pathlib
import re
import shutil
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol
from urllib.parse import urlsplit

from chargepoint.config.firmware import DOWNLOAD_RESERVE_MB, FirmwareConfig
from chargepoint.core.events import StopReason
from chargepoint.core.firmware import installer as installer_module
from chargepoint.core.firmware import transfer, trial
from chargepoint.core.firmware.installer import Installer, InstallError
from chargepoint.core.firmware.model import (
    FirmwareRequest,
    FirmwareState,
    FirmwareStatus,
    PackageVerifier,
    VerificationRefused,
    refusal_status,
)
from chargepoint.core.firmware.verify import checksum_in, checksum_text
from hal.clock import Clock

log = logging.getLogger(__name__)
S = FirmwareStatus


class Station(Protocol):
    """What an update needs of the station (``core.station.Station``): hold it, then give it back."""

    connectors: dict[int, Any]

    def view(self, evse_id: int) -> Any: ...
    def active_transactions(self) -> list[Any]: ...
    def change_availability(self, evse_id: int, operative: bool) -> Any: ...
    async def stop_all(self, reason: StopReason) -> None: ...


@dataclass(frozen=True)
class UpdatePolicy:
    """The configuration's part in an update (``[firmware]``)."""

    #: Stop running transactions to install (reason Reboot) instead of waiting for them to end.
    stop_transactions: bool = False
    #: Also fetch ``<location>.sha256`` and check the package against it.
    checksum_file: bool = False
    download_timeout_s: float = 60.0
    #: The safety supervisor keeps a charging connector going while this process restarts (its
    #: orphan grace is long enough): the install need not wait for the running transactions, which
    #: carry on through the restart. Connectors without one are held Unavailable as always.
    sessions_survive_restart: bool = False
    #: The largest package downloaded (less when the state directory's disk has less free).
    max_download_mb: int = FirmwareConfig.max_download_mb


#: A ``<location>.sha256`` file is one line.
CHECKSUM_FILE_MAX = 64 * 1024


class FirmwareManager:
    """One station's firmware updates (see the module's description)."""

    def __init__(self, station: Station, clock: Clock, state_dir: str, installer: Installer,
                 verifiers: list[PackageVerifier], *, running_version: str, restart: Callable[[], None],
                 policy: UpdatePolicy | None = None, healthy: Callable[[], bool] = lambda: True) -> None:
        self.station = station
        self.clock = clock
        self.dir = pathlib.Path(state_dir) / "firmware"
        self.state_dir = state_dir
        self.installer = installer
        self.verifiers = verifiers
        self.running_version = running_version
        self.restart = restart
        self.policy = policy or UpdatePolicy()
        #: The watchdog is fed and no safety loop hangs (a version on trial is confirmed only then).
        self.healthy = healthy
        self.listeners: list[Callable[[FirmwareState], None]] = []
        self.state = FirmwareState(FirmwareStatus.IDLE)
        #: The latest state has not reached a CSMS yet.
        self.unreported = False
        #: Per connector: operative before the update held the station (None: not held).
        self._held: dict[int, bool] | None = None
        self._task: asyncio.Task[None] | None = None
        #: The running version is on trial: confirmed at its first accepted boot.
        self._on_trial = False
        self._saving = threading.Lock()
        self._noting: asyncio.Future[None] | None = None

    # ------------------------------------------------------------ requests
    def update(self, request: FirmwareRequest) -> str:
        """Take an update request: "accepted", "accepted_canceled" (the one before is dropped) or
        "rejected" (one is installing and cannot be stopped)."""
        canceled = False
        if self._task is not None and not self._task.done():
            if self.state.status in (S.INSTALLING, S.INSTALL_REBOOTING):
                log.warning("firmware update from %s refused: version %s is being installed",
                            transfer.shown(request.location), self.state.version)
                return "rejected"
            self._task.cancel()
            canceled = True
            log.info("firmware update %s canceled by a newer request", self.state.request_id)
        if self._on_trial:
            return "rejected"
        self._task = asyncio.ensure_future(self._run(request))
        self._task.add_done_callback(self._done)
        return "accepted_canceled" if canceled else "accepted"

    def answer(self) -> str:
        """What ``update`` would answer now, without acting: a handler answers before the work starts."""
        busy = self._task is not None and not self._task.done()
        if self._on_trial or (busy and self.state.status in (S.INSTALLING, S.INSTALL_REBOOTING)):
            return "rejected"
        return "accepted_canceled" if busy else "accepted"

    def activity(self) -> FirmwareState:
        """The state a triggered report says: the update in hand, else idle."""
        return self.state if self.state.in_progress else FirmwareState(S.IDLE, since=self.clock.time())

    def reported(self, state: FirmwareState) -> None:
        """A CSMS has received ``state``: when it is the latest, nothing is left to send."""
        if state == self.state and self.unreported:
            self.unreported = False
            self._save_soon()

    def _done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("firmware update failed", exc_info=task.exception())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # ------------------------------------------------------------- states
    async def _enter(self, status: FirmwareStatus, detail: str | None = None, **changes: Any) -> None:
        self.state = replace(self.state, status=status, detail=detail, since=self.clock.time(), **changes)
        self.unreported = True
        (log.warning if detail else log.info)("firmware %s%s", status.value.replace("_", " "),
                                              f": {detail}" if detail else "")
        try:
            await asyncio.to_thread(self._save)
        except OSError as exc:  # a full or read-only disk: the listeners still hear it
            log.warning("firmware status not saved: %s", exc.strerror or exc)
        for listener in list(self.listeners):
            listener(self.state)

    def _save(self) -> None:
        """Write the latest state (in a worker thread; saves from several threads take turns)."""
        with self._saving:
            s = self.state
            record = {"status": s.status.value, "request_id": s.request_id, "location": s.location,
                      "version": s.version, "detail": s.detail, "since": s.since,
                      "unreported": self.unreported, "held": self._held}
            self.dir.mkdir(parents=True, exist_ok=True)
            tmp = self.dir / "status.json.tmp"
            tmp.write_text(json.dumps(record), encoding="utf-8")
            os.replace(tmp, self.dir / "status.json")

    def _save_soon(self) -> None:
        asyncio.ensure_future(asyncio.to_thread(self._save))

    # ------------------------------------------------------------ the work
    async def _run(self, request: FirmwareRequest) -> None:
        try:
            await self._update(request)
        except asyncio.CancelledError:
            if self._held is not None:  # a newer request, or the daemon stops: the connectors come back
                self._release()
                await asyncio.shield(asyncio.to_thread(self._save))
            raise
        except Exception as exc:  # noqa: BLE001 - whatever no step expected, the update ends reported
            await self._failed(exc, request)

    async def _failed(self, exc: Exception, request: FirmwareRequest) -> None:
        """A final status for an error no step expected (its words without the URL's password)."""
        downloading = self.state.status in (S.IDLE, S.DOWNLOAD_SCHEDULED, S.DOWNLOADING)
        if self._held is not None:
            self._release()
        reason = transfer.hide(f"unexpected {type(exc).__name__}: {exc}".rstrip(": "), request.location)
        await self._enter(S.DOWNLOAD_FAILED if downloading else S.INSTALLATION_FAILED, reason)

    async def _update(self, request: FirmwareRequest) -> None:
        self.state = FirmwareState(S.IDLE, request.request_id, transfer.shown(request.location))
        wait = request.retrieve_at - self.clock.time()
        if wait > 0:
            await self._enter(S.DOWNLOAD_SCHEDULED)
            await self.clock.sleep(wait)
        package = await self._download(request)
        if package is None:
            return
        try:
            request = await self._checksum_file(request)
            refusal = await self._verify(package, request)
            if refusal is not None:
                await self._enter(*refusal)
                return
            if request.signature is not None:
                await self._enter(S.SIGNATURE_VERIFIED)
            if request.install_at is not None and request.install_at > self.clock.time():
                await self._enter(S.INSTALL_SCHEDULED)
                await self.clock.sleep(request.install_at - self.clock.time())
            await self._install(package, request)
        finally:
            await asyncio.to_thread(package.unlink, True)

    async def _download(self, request: FirmwareRequest) -> pathlib.Path | None:
        name = re.sub(r"[^A-Za-z0-9._+-]", "_", os.path.basename(urlsplit(request.location).path))
        if name.strip(".") == "":  # "", ".", "..": no name of its own
            name = "package"
        dest = self.dir / "download" / name
        attempts = max(1, request.retries)
        await self._enter(S.DOWNLOADING)
        for attempt in range(1, attempts + 1):
            limit = await asyncio.to_thread(self._download_limit)
            try:
                size = await transfer.download(request.location, dest,
                                               timeout_s=self.policy.download_timeout_s, max_bytes=limit)
            except transfer.TransferError as exc:
                if exc.final or attempt == attempts:
                    reason = self._too_big(limit) if exc.too_big else exc.reason
                    await self._enter(S.DOWNLOAD_FAILED, f"{reason} (attempt {attempt} of {attempts})")
                    return None
                log.warning("firmware download attempt %d of %d failed: %s; again in %g s",
                            attempt, attempts, exc.reason, request.retry_interval_s)
                await self.clock.sleep(request.retry_interval_s)
                continue
            log.info("firmware package %s downloaded: %d bytes", name, size)
            await self._enter(S.DOWNLOADED)
            return dest
        return None

    def _download_limit(self) -> int:
        """Bytes a download may take: ``max_download_mb``, or what leaves ``DOWNLOAD_RESERVE_MB`` free."""
        self.dir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(self.dir).free - DOWNLOAD_RESERVE_MB * transfer.MB
        return max(0, min(self.policy.max_download_mb * transfer.MB, free))

    def _too_big(self, limit: int) -> str:
        """Why a package bigger than ``limit`` is refused: the configured cap, or a disk nearly full."""
        if limit < self.policy.max_download_mb * transfer.MB:
            return (f"the disk is full: the package would leave less than {DOWNLOAD_RESERVE_MB} MB free on "
                    f"the state directory's disk (room for {limit / transfer.MB:.3g} MB)")
        return f"the package is bigger than the {self.policy.max_download_mb} MB allowed (max_download_mb)"

    async def _checksum_file(self, request: FirmwareRequest) -> FirmwareRequest:
        """The checksum of the location's fragment, or of ``<location>.sha256`` when configured."""
        given = request.checksum_sha256 or checksum_in(request.location)
        if given is None and self.policy.checksum_file:
            parts = urlsplit(request.location)
            sidecar = parts._replace(path=parts.path + ".sha256", fragment="").geturl()
            dest = self.dir / "download" / "package.sha256"
            try:
                await transfer.download(sidecar, dest, timeout_s=self.policy.download_timeout_s,
                                        max_bytes=CHECKSUM_FILE_MAX)
                given = checksum_text(await asyncio.to_thread(dest.read_text, "utf-8", "replace"))
            except transfer.TransferError as exc:
                log.warning("firmware checksum file %s not fetched: %s", transfer.shown(sidecar), exc.reason)
            finally:
                await asyncio.to_thread(dest.unlink, True)
        return replace(request, checksum_sha256=given)

    async def _verify(self, package: pathlib.Path,
                      request: FirmwareRequest) -> tuple[FirmwareStatus, str] | None:
        """Every verifier, in order; the first refusal as (status, reason)."""
        for verifier in self.verifiers:
            try:
                reason = await verifier.verify(package, request)
            except VerificationRefused as exc:
                return exc.status, exc.reason
            if reason is not None:
                return refusal_status(reason), str(reason)
        return None

    async def _install(self, package: pathlib.Path, request: FirmwareRequest) -> None:
        await self._hold()
        await self._enter(S.INSTALLING)
        try:
            installed = await self.installer.install(package, request)
        except InstallError as exc:
            self._release()
            await self._enter(S.INSTALLATION_FAILED, str(exc))
            return
        if not installed.restart:
            self._release()
            await self._enter(S.INSTALLED, version=installed.version)
            return
        await self._enter(S.INSTALL_REBOOTING, version=installed.version)
        log.info("restarting into version %s", installed.version)
        self.restart()

    # ------------------------------------------------------ station hold
    async def _hold(self) -> None:
        """Connectors Unavailable, no transaction running: ready to install."""
        self._held = {e: self.station.view(e).operative for e in self.station.connectors}
        await asyncio.to_thread(self._save)  # a restart from here on gives the connectors back
        if self.policy.stop_transactions and self.station.active_transactions():
            log.info("firmware update: stopping the running transactions")
            await self.station.stop_all(StopReason.REBOOT)
        self.station.change_availability(0, False)
        if self.policy.sessions_survive_restart and self.station.active_transactions():
            log.info("firmware update: the running transactions go on through the restart "
                     "(the safety supervisor keeps them charging)")
            return
        if self.station.active_transactions():
            log.info("firmware update: waiting for the running transactions to end")
        while self.station.active_transactions():
            await self.clock.sleep(1.0)

    def _release(self) -> None:
        """Availability as it was before the hold."""
        held, self._held = self._held, None
        for evse_id, operative in (held or {}).items():
            if operative and int(evse_id) in self.station.connectors:
                self.station.change_availability(int(evse_id), True)

    # ------------------------------------------------------- after restart
    async def resume(self) -> None:
        """At start: take up what the last process left, whatever instant it was killed at (its
        status, a trial, a held station), then remove what an ended update left behind.

        The trial record is read with the status: the old process may have switched the link and
        been killed before it could save InstallRebooting, so a pending trial of the running
        version is this version's trial, whatever the status says."""
        record = await asyncio.to_thread(self._load)
        verdict = await asyncio.to_thread(trial.read, self.state_dir)
        if record is not None:
            self._held = {int(k): bool(v) for k, v in (record.get("held") or {}).items()} or None
            self.state = FirmwareState(FirmwareStatus(record["status"]), record.get("request_id"),
                                       record.get("location"), record.get("version"), record.get("detail"),
                                       float(record.get("since") or 0.0))
            self.unreported = bool(record.get("unreported"))
        await self._take_up(verdict or {})
        if not self._on_trial:
            await asyncio.to_thread(self._clean, verdict)

    async def _take_up(self, verdict: dict[str, Any]) -> None:
        """One final status for the update the last process left, or this version's trial goes on."""
        mine, state = verdict.get("version") == self.running_version, verdict.get("state")
        if state == trial.PENDING and mine:
            if self.state.status is not S.INSTALL_REBOOTING:  # killed at the switch: say where it stands
                self.state = replace(self.state, status=S.INSTALL_REBOOTING, version=self.running_version)
                await asyncio.to_thread(self._save)
            self._on_trial = True
            log.info("version %s on trial: confirmed at its first accepted BootNotification",
                     self.running_version)
            return
        if not self.state.in_progress:
            return
        installing = self.state.status in (S.INSTALLING, S.INSTALL_REBOOTING)
        if installing and state == trial.CONFIRMED and mine:
            await self._installed()
        elif installing and state == trial.PENDING:
            await self._not_switched(verdict)
        elif installing and state == trial.ROLLED_BACK:
            await self._failed_trial(str(verdict.get("reason") or "the new version was rolled back"))
        elif self.state.status is S.INSTALL_REBOOTING and self.state.version == self.running_version:
            await self._installed()  # confirmed, record removed, killed before Installed was saved
        elif self.state.status is S.INSTALL_REBOOTING:
            await self._failed_trial("the trial record is missing")
        elif self.state.status in (S.DOWNLOAD_SCHEDULED, S.DOWNLOADING):
            self._release()
            await self._enter(S.DOWNLOAD_FAILED, "the station restarted during the download")
        else:
            self._release()
            await self._enter(S.INSTALLATION_FAILED, (
                f"the station restarted while installing; version {self.running_version} runs as before"
                if self.state.status is S.INSTALLING else
                "the station restarted before installing: nothing was installed"))

    async def _not_switched(self, verdict: dict[str, Any]) -> None:
        """A pending trial of another version: this one runs, so the trial ends here."""
        if trial.current(self._venvs_dir()) == verdict.get("target"):
            reason = (f"version {self.running_version} started instead of {verdict.get('version')} "
                      "(the service does not start through the current link?)")
        else:
            reason = (f"the station stopped before switching to version {verdict.get('version')}; "
                      f"version {self.running_version} runs as before")
        try:
            await asyncio.to_thread(trial.rollback, self.state_dir, self._venvs_dir(), verdict, reason)
        except ValueError as exc:  # a record no daemon wrote: nothing is switched by it
            reason = str(exc)
        await self._failed_trial(reason)

    async def _failed_trial(self, reason: str) -> None:
        """InstallationFailed, saved before the record goes (a kill between leaves a final status)."""
        self._release()
        await self._enter(S.INSTALLATION_FAILED, reason)
        await asyncio.to_thread(trial.remove, self.state_dir)

    def _clean(self, verdict: dict[str, Any] | None) -> None:
        """What an ended or killed update left: the download, a finished trial's record, a status
        half-saved, and the installer's (its unpacked files, an environment nothing runs)."""
        removed = [str(p) for p in [installer_module.remove_inside(self.dir, "download")] if p]
        (self.dir / "status.json.tmp").unlink(missing_ok=True)
        if verdict is not None and verdict.get("state") in (trial.CONFIRMED, trial.ROLLED_BACK):
            trial.remove(self.state_dir)
            removed.append(str(trial.record_path(self.state_dir)))
        clean = getattr(self.installer, "clean", None)
        if callable(clean):
            removed += clean()
        if removed:
            log.info("firmware: removed what an unfinished update left: %s", ", ".join(removed))

    def _venvs_dir(self) -> str:
        return str(getattr(self.installer, "venvs_dir", ""))

    def boot_accepted(self) -> None:
        """The CSMS accepted a BootNotification: a version on trial is confirmed if it is healthy."""
        if not self._on_trial:
            return
        if not self.healthy():
            log.warning("version %s on trial: boot accepted but the watchdog is not fed; not confirmed",
                        self.running_version)
            self._noting = asyncio.ensure_future(self._note_unhealthy())
            return
        self._on_trial = False
        self._task = asyncio.ensure_future(self._confirm())

    async def _note_unhealthy(self) -> None:
        """Tell the guard why this version is not confirmed, for the reason of its rollback."""
        try:
            await asyncio.to_thread(trial.unhealthy_boot, self.state_dir, self.running_version)
        except OSError as exc:
            log.warning("trial record not updated: %s", exc.strerror or exc)

    async def _confirm(self) -> None:
        if await asyncio.to_thread(trial.confirm, self.state_dir, self.running_version):
            log.info("version %s confirmed: its BootNotification was accepted", self.running_version)
            await self._installed()
        else:  # the guard decided first (the deadline passed): the restart brings the old version
            log.warning("version %s could not be confirmed: its trial has ended", self.running_version)

    async def _installed(self) -> None:
        """Installed, saved before the record goes (a kill between leaves a final status)."""
        self._release()
        await self._enter(S.INSTALLED, version=self.running_version)
        await asyncio.to_thread(trial.remove, self.state_dir)
        await asyncio.to_thread(self._clean, None)

    def _load(self) -> dict[str, Any] | None:
        try:
            data = json.loads((self.dir / "status.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        try:
            FirmwareStatus(data["status"])
        except (KeyError, ValueError, TypeError):
            return None
        return data if isinstance(data, dict) else None
