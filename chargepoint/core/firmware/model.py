"""Firmware updates in the station's own words: the request, the statuses, the verification hook.

An update request is the same whichever OCPP version carried it: where the
package is, when to fetch it and when to install it, how often to retry, and
what proves it genuine (a SHA-256 checksum, a signature with its signing
certificate). The adapters translate their messages into a ``FirmwareRequest``
and the neutral ``FirmwareStatus`` values back into their statuses; 1.6 has
fewer words and sends the nearest one or none (``protocol/v16/firmware.py``).

Verification is a list of ``PackageVerifier`` objects run, all of them, on the
downloaded file before any byte of it is installed or executed. A verifier
refuses in one of three ways, each with the reason in words:

- return the reason (a ``str``): the status is ``install_verification_failed``;
- return a ``str`` subclass with a ``status`` attribute, one of the refusal
  statuses below or its value (``"invalid_signature"``,
  ``"invalid_certificate"``, ``"revoked_certificate"``): that status;
- raise ``VerificationRefused(status, reason)``: that status.

The status says what failed precisely, so an adapter can say it in its
version's words (1.6 SignedFirmwareStatusNotification, 2.0.1
FirmwareStatusNotification).
"""

from __future__ import annotations

import enum
import pathlib
from dataclasses import dataclass
from typing import Protocol


class FirmwareStatus(enum.Enum):
    """Where a firmware update stands: the union of what the OCPP versions can say."""

    IDLE = "idle"
    DOWNLOAD_SCHEDULED = "download_scheduled"
    DOWNLOADING = "downloading"
    DOWNLOADED = "downloaded"
    DOWNLOAD_FAILED = "download_failed"
    SIGNATURE_VERIFIED = "signature_verified"
    INSTALL_VERIFICATION_FAILED = "install_verification_failed"
    INVALID_SIGNATURE = "invalid_signature"
    INVALID_CERTIFICATE = "invalid_certificate"
    REVOKED_CERTIFICATE = "revoked_certificate"
    INSTALL_SCHEDULED = "install_scheduled"
    INSTALLING = "installing"
    INSTALL_REBOOTING = "install_rebooting"
    INSTALLED = "installed"
    INSTALLATION_FAILED = "installation_failed"

    @property
    def final(self) -> bool:
        """The update has ended (well or not): nothing more will follow for it."""
        return self in FINAL


FINAL = frozenset({FirmwareStatus.DOWNLOAD_FAILED, FirmwareStatus.INSTALL_VERIFICATION_FAILED,
                   FirmwareStatus.INVALID_SIGNATURE, FirmwareStatus.INVALID_CERTIFICATE,
                   FirmwareStatus.REVOKED_CERTIFICATE, FirmwareStatus.INSTALLED,
                   FirmwareStatus.INSTALLATION_FAILED})
#: What a verifier may refuse with (``VerificationRefused.status``).
REFUSALS = frozenset({FirmwareStatus.INSTALL_VERIFICATION_FAILED, FirmwareStatus.INVALID_SIGNATURE,
                      FirmwareStatus.INVALID_CERTIFICATE, FirmwareStatus.REVOKED_CERTIFICATE})


@dataclass(frozen=True)
class FirmwareRequest:
    """One update as the CSMS asked for it, in neutral terms (times are epoch seconds)."""

    #: Where the package is: http://, https:// or ftp:// (a ``#sha256=<hex>`` fragment is its checksum).
    location: str
    #: Not before this moment is it downloaded.
    retrieve_at: float
    #: Not before this moment is it installed (None: as soon as it is downloaded and verified).
    install_at: float | None = None
    #: Download attempts before giving up (at least one is made).
    retries: int = 1
    #: Wait between two download attempts.
    retry_interval_s: float = 60.0
    #: The CSMS's number for this request (2.0.1 requestId; None in 1.6).
    request_id: int | None = None
    #: Lowercase hex SHA-256 of the package, when configured or given.
    checksum_sha256: str | None = None
    #: Base64 signature of the package and the PEM certificate that signed it, when given.
    signature: str | None = None
    signing_certificate: str | None = None


class VerificationRefused(Exception):  # noqa: N818 - a refusal, not an error of the station
    """Raised by a verifier to refuse a package with a precise status (one of ``REFUSALS``)."""

    def __init__(self, status: FirmwareStatus, reason: str) -> None:
        if status not in REFUSALS:
            raise ValueError(f"{status} is not a verification refusal")
        super().__init__(reason)
        self.status = status
        self.reason = reason


def refusal_status(reason: str) -> FirmwareStatus:
    """The status of a verifier's returned refusal: its ``status`` attribute when it names a refusal."""
    named = getattr(reason, "status", None)
    for status in REFUSALS:
        if named is status or named == status.value:
            return status
    return FirmwareStatus.INSTALL_VERIFICATION_FAILED


class InstallError(Exception):
    """The package could not be installed; the running version is untouched."""


class PackageVerifier(Protocol):
    """One check of a downloaded package, run before anything of it is installed or executed."""

    async def verify(self, package: pathlib.Path, request: FirmwareRequest) -> str | None:
        """None when the package passes; else the reason in words (or raise ``VerificationRefused``)."""
        ...


@dataclass(frozen=True)
class FirmwareState:
    """What the update in hand is doing, for the adapters, the status and the triggered reports."""

    status: FirmwareStatus
    request_id: int | None = None
    #: The package's location (without credentials) and, once known, the version it installs.
    location: str | None = None
    version: str | None = None
    #: Why it failed, in words (None unless it did).
    detail: str | None = None
    #: When the status was reached (station clock).
    since: float = 0.0

    @property
    def in_progress(self) -> bool:
        return self.status is not FirmwareStatus.IDLE and not self.status.final
