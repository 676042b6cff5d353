"""Firmware updates, diagnostics and the log file, put together for the daemon.

The core does the work (``core/firmware``, ``core/diagnostics.py``); this
module gives it what only the daemon has: the configuration (which installer,
which restart), where the log file and the last self-test report are, the
store's summary, and how to restart. The daemon hands the two services to each
OCPP adapter and the control API in its ``Services`` (core/services.py), as it
hands smart charging. More verifiers (signatures) are appended to
``firmware.verifiers`` after the SHA-256 one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pathlib
import platform
import sys
from typing import Any, Protocol

import chargepoint
from chargepoint.app.logfile import LogFile
from chargepoint.app.recorder import Recorder
from chargepoint.app.watchdog import Watchdog
from chargepoint.backends import Hardware
from chargepoint.config import Config
from chargepoint.connection import Link
from chargepoint.core.diagnostics import Diagnostics, DiagnosticsSources
from chargepoint.core.firmware import (
    FirmwareManager,
    FirmwareState,
    FirmwareStatus,
    Sha256Verifier,
    UpdatePolicy,
)
from chargepoint.core.firmware.installer import CommandInstaller, Installer, VenvInstaller
from chargepoint.core.firmware_policy import FirmwarePolicy
from chargepoint.core.security.security_log import SecurityEvent
from chargepoint.core.security.security_profile import ProfileSwitch
from chargepoint.core.security.services import Security
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Outbox
from chargepoint.core.storage.store import Store
from hal.clock import Clock

log = logging.getLogger(__name__)

#: Where ``chargepoint selftest`` leaves its last report (for diagnostics), in the state directory.
SELFTEST_REPORT = "selftest.json"
MASK = "********"
#: Configuration keys whose values are never shown, whatever section they are in.
SECRET_FIELDS = ("password", "authorization_key")


def masked(value: Any, secret: tuple[str, ...] = SECRET_FIELDS) -> Any:
    """A JSON-ready copy of a configuration (dataclasses, tuples) with secret values masked."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): (MASK if v and any(str(k).endswith(s) for s in secret) else masked(v, secret))
                for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [masked(v, secret) for v in (sorted(value) if isinstance(value, set | frozenset) else value)]
    return value if isinstance(value, str | int | float | bool | type(None)) else str(value)


#: A restart into a new version takes a few seconds; with at least this much orphan grace the
#: safety supervisor keeps the running sessions charging through it (README, firmware updates).
RESTART_FITS_GRACE_S = 30.0


class MaintenanceHost(Protocol):
    """What maintenance uses of the daemon being built (``app.daemon.Daemon``): its parts, its
    health, and the way to ask it to restart."""

    config: Config
    hardware: Hardware
    clock: Clock
    settings: Settings
    station: Station
    outbox: Outbox
    store: Store | None
    security: Security
    profile_switch: ProfileSwitch
    recorder: Recorder
    link: Link
    watchdog: Watchdog | None
    failure: str | None
    restart_requested: str | None

    def stop(self) -> None: ...


class Maintenance:
    """The daemon's firmware manager, diagnostics service and log file."""

    def __init__(self, daemon: MaintenanceHost) -> None:
        """``daemon``: the ``app.daemon.Daemon`` being built (its config, station, clock, recorder)."""
        self.daemon = daemon
        config = daemon.config
        fw, state_dir = config.firmware, config.station.state_dir
        installer: Installer = CommandInstaller(fw.installer_command)
        if not fw.installer_command:
            installer = VenvInstaller(
                fw.venvs_dir, state_dir, running_version=chargepoint.__version__,
                deadline_s=fw.boot_deadline_s,
                system_site_packages=fw.system_site_packages, pip_args=fw.pip_args, keep=fw.keep_versions,
                with_pip=fw.venv_with_pip)
        #: What may run: signed packages checked, unsigned ones as the owner allows for the link.
        self.policy = FirmwarePolicy(daemon.security.verifier, daemon.profile_switch.in_use,
                                     require_signature=fw.require_signature,
                                     allow_unsigned_without_tls=fw.allow_unsigned_without_tls,
                                     security_log=daemon.security.log)
        self.firmware = FirmwareManager(
            daemon.station, daemon.clock, state_dir, installer,
            [Sha256Verifier(required=fw.require_checksum), self.policy],
            running_version=chargepoint.__version__, restart=self._restart,
            policy=UpdatePolicy(fw.stop_transactions, fw.checksum_file, fw.download_timeout_s,
                                sessions_survive_restart=daemon.hardware.supervisor is not None
                                and config.safety.orphan_grace_s >= RESTART_FITS_GRACE_S,
                                max_download_mb=fw.max_download_mb),
            healthy=self._healthy)
        diag = config.diagnostics
        self.logfile = LogFile(state_dir, max_bytes=diag.log_file_max_bytes, backups=diag.log_file_backups,
                               secret_names=daemon.recorder.secret_names) if diag.log_file else None
        self.diagnostics = Diagnostics(DiagnosticsSources(
            log_files=self.logfile.files if self.logfile else list,
            recent=lambda: list(daemon.recorder.entries),
            configuration=self.configuration, summary=self.summary, versions=versions,
            selftest=pathlib.Path(state_dir) / SELFTEST_REPORT,
            security_log=daemon.security.log.export),
            daemon.clock, state_dir, config.station.identity, http_method=diag.http_method,
            timeout_s=diag.upload_timeout_s)
        self.firmware.listeners.append(self.policy.watch)
        self.firmware.listeners.append(self._record_installed)

    def attach_log(self) -> None:
        if self.logfile is not None:
            self.logfile.attach()

    async def start(self) -> None:
        """After the store is restored: take up an update the last process left."""
        await self.firmware.resume()

    async def close(self) -> None:
        await self.firmware.close()
        await self.diagnostics.close()

    def detach_log(self) -> None:
        if self.logfile is not None:
            self.logfile.detach()

    def _record_installed(self, state: FirmwareState) -> None:
        """The security log's FirmwareUpdated: a new version runs (the whitepaper's event)."""
        if state.status is FirmwareStatus.INSTALLED:
            self.daemon.security.log.record(SecurityEvent.FIRMWARE_UPDATED, f"version {state.version}")

    def _healthy(self) -> bool:
        watchdog = self.daemon.watchdog
        return watchdog is not None and watchdog.failed is None and self.daemon.failure is None

    def _restart(self) -> None:
        command = self.daemon.config.firmware.restart_command
        if command:
            asyncio.ensure_future(self._run_restart(command))
            return
        self.daemon.restart_requested = "firmware"
        self.daemon.stop()

    async def _run_restart(self, command: tuple[str, ...]) -> None:
        try:
            process = await asyncio.create_subprocess_exec(*command, stdin=asyncio.subprocess.DEVNULL)
            code = await process.wait()
        except OSError as exc:
            code, reason = -1, str(exc)
        else:
            reason = f"exit status {code}"
        if code != 0:
            log.error("restart command failed (%s): exiting for the service manager to restart", reason)
            self.daemon.restart_requested = "firmware"
            self.daemon.stop()

    # ------------------------------------------------------- diagnostics parts
    def configuration(self) -> dict[str, Any]:
        config, settings = self.daemon.config, self.daemon.settings
        shown = {name: (MASK if d.secret and settings.as_text(name) else settings.as_text(name))
                 for name, d in settings.definitions.items()}
        return {"file": config.source, "config": masked(config), "settings": shown,
                "overridden": sorted(settings.overridden)}

    async def summary(self) -> dict[str, Any]:
        daemon = self.daemon
        store = daemon.store
        open_transactions = [masked(t) for t in await daemon.outbox.open_transactions()] if store else []
        return {"store": str(store.path) if store else None, "outbox_length": len(daemon.outbox),
                "outbox_thinned": daemon.outbox.thinned,
                "open_transactions": open_transactions,
                "running_transactions": [{"connector": e, "local_id": t.local_id}
                                         for e, t in daemon.station.active_transactions()],
                "connected": daemon.link.connected.is_set()}


def versions() -> dict[str, Any]:
    import importlib.metadata  # here: it loads zipfile, email and csv, which nothing else in the daemon needs

    def version_of(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {"chargepoint": chargepoint.__version__, "python": sys.version.split()[0],
            "platform": platform.platform(), "executable": sys.executable,
            **{name: version_of(name) for name in ("ocpp", "websockets", "aiohttp", "pymodbus", "gpiozero")}}
