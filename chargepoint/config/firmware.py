"""The ``[firmware]`` and ``[diagnostics]`` sections: how updates install, how diagnostics upload.

Apart from the other sections because their rules are about the machine's
layout (where versions live, what restarts the service, which commands an
operator's own update system provides) rather than about charging.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from chargepoint.config.reader import Reader, table

HTTP_METHODS = ("PUT", "POST")
#: Free space a firmware download always leaves on the state directory's file system, in MB.
DOWNLOAD_RESERVE_MB = 50


@dataclass(frozen=True)
class FirmwareConfig:
    """Firmware updates (``chargepoint.core.firmware``)."""

    #: Where each installed version gets its virtual environment, beside the ``current`` link
    #: the service starts through (systemd/install.sh makes it).
    venvs_dir: str = "/opt/chargepoint/venvs"
    #: Seconds a new version has, from its first start, to get an accepted BootNotification
    #: with its watchdog fed; else the guard switches back to the previous version.
    boot_deadline_s: float = 600.0
    #: Download attempts and the wait between them when the CSMS does not say.
    retries: int = 3
    retry_interval_s: float = 60.0
    download_timeout_s: float = 60.0
    #: A package without a SHA-256 checksum (URL fragment ``#sha256=...`` or checksum file) is refused.
    require_checksum: bool = False
    #: Also fetch ``<location>.sha256`` (as ``sha256sum`` writes it) and check the package against it.
    checksum_file: bool = False
    #: Every package must carry a valid signature (signed firmware); an unsigned one is refused
    #: whatever the link. The owner sets it; no CSMS can lower it.
    require_signature: bool = False
    #: Accept unsigned packages over a link that is not TLS-authenticated (security profile 0 or 1).
    #: Off by default: anyone on the path of a ``ws://`` link could hand the station code to run.
    allow_unsigned_without_tls: bool = False
    #: The largest package downloaded, in MB; a download also stops before it would leave the state
    #: directory's file system with less than ``DOWNLOAD_RESERVE_MB`` free.
    max_download_mb: int = 200
    #: Stop running transactions to install (reason Reboot) instead of waiting for them to end.
    stop_transactions: bool = False
    #: The operator's own installer (shell words; the package's path is added): replaces the
    #: virtual environments, the restart and the rollback. Exit status 0 = installed.
    installer_command: tuple[str, ...] = ()
    #: What restarts the service into the new version (shell words); empty: the daemon exits with
    #: status 75 and the service manager (systemd's Restart=on-failure) starts it again.
    restart_command: tuple[str, ...] = ()
    #: Extra ``pip install`` arguments (shell words), e.g. "--no-deps" or "--index-url ...".
    pip_args: tuple[str, ...] = ()
    #: New environments see the system's packages (Raspberry Pi OS's python3-lgpio), as install.sh's.
    system_site_packages: bool = True
    #: Environments kept in venvs_dir, the running one and the one before it included.
    keep_versions: int = 3
    #: New environments get their own pip, which installs the next update; false: faster, but only
    #: where the running environment's pip stays available to install into them.
    venv_with_pip: bool = True


@dataclass(frozen=True)
class DiagnosticsConfig:
    """Diagnostics uploads and the daemon's own log file (``core/diagnostics.py``, ``app/logfile.py``)."""

    #: Write the log to ``<state_dir>/logs/chargepoint.log`` too (what diagnostics uploads).
    log_file: bool = True
    log_file_max_bytes: int = 1_000_000
    log_file_backups: int = 4
    #: Upload attempts and the wait between them when the CSMS does not say.
    retries: int = 3
    retry_interval_s: float = 60.0
    #: HTTP(S) uploads: PUT the file to <location>/<name>, or POST it as a form field "file".
    http_method: str = "PUT"
    upload_timeout_s: float = 60.0


def _words(r: Reader, name: str) -> tuple[str, ...]:
    text = r.string(name, "")
    try:
        return tuple(shlex.split(text))
    except ValueError as exc:
        return r.problem(name, f"cannot be split into words: {exc}", ())


def parse_firmware(file: str, data: dict[str, Any]) -> FirmwareConfig:
    r = Reader(file, table(file, data, "firmware"), "firmware")
    d = FirmwareConfig()
    cfg = FirmwareConfig(
        venvs_dir=r.string("venvs_dir", d.venvs_dir),
        boot_deadline_s=r.number("boot_deadline_s", d.boot_deadline_s, low=1, high=86400),
        retries=r.number("retries", d.retries, low=1, high=100, integer=True),
        retry_interval_s=r.number("retry_interval_s", d.retry_interval_s, low=0, high=86400),
        download_timeout_s=r.number("download_timeout_s", d.download_timeout_s, low=1, high=3600),
        require_checksum=r.boolean("require_checksum", d.require_checksum),
        checksum_file=r.boolean("checksum_file", d.checksum_file),
        require_signature=r.boolean("require_signature", d.require_signature),
        allow_unsigned_without_tls=r.boolean("allow_unsigned_without_tls", d.allow_unsigned_without_tls),
        max_download_mb=r.number("max_download_mb", d.max_download_mb, low=1, high=100_000, integer=True),
        stop_transactions=r.boolean("stop_transactions", d.stop_transactions),
        installer_command=_words(r, "installer_command"),
        restart_command=_words(r, "restart_command"),
        pip_args=_words(r, "pip_args"),
        system_site_packages=r.boolean("system_site_packages", d.system_site_packages),
        keep_versions=r.number("keep_versions", d.keep_versions, low=2, high=20, integer=True),
        venv_with_pip=r.boolean("venv_with_pip", d.venv_with_pip),
    )
    if not cfg.venvs_dir.startswith("/"):
        r.refuse("venvs_dir", f"must be an absolute path, not {cfg.venvs_dir!r}")
    r.finish()
    return cfg


def parse_diagnostics(file: str, data: dict[str, Any]) -> DiagnosticsConfig:
    r = Reader(file, table(file, data, "diagnostics"), "diagnostics")
    d = DiagnosticsConfig()
    cfg = DiagnosticsConfig(
        log_file=r.boolean("log_file", d.log_file),
        log_file_max_bytes=r.number("log_file_max_bytes", d.log_file_max_bytes, low=10_000,
                                    high=1_000_000_000, integer=True),
        log_file_backups=r.number("log_file_backups", d.log_file_backups, low=0, high=100, integer=True),
        retries=r.number("retries", d.retries, low=1, high=100, integer=True),
        retry_interval_s=r.number("retry_interval_s", d.retry_interval_s, low=0, high=86400),
        http_method=r.string("http_method", d.http_method).upper(),
        upload_timeout_s=r.number("upload_timeout_s", d.upload_timeout_s, low=1, high=3600),
    )
    if cfg.http_method not in HTTP_METHODS:
        r.refuse("http_method", f"must be one of {', '.join(HTTP_METHODS)}, not {cfg.http_method!r}")
    r.finish()
    return cfg
