"""Firmware updates: the neutral request and statuses, the verification hook, download, install, rollback.

The names other parts use are re-exported here: ``FirmwareRequest``,
``FirmwareStatus``, ``FirmwareState``, ``PackageVerifier`` (the hook a
verifier implements: ``async verify(package, request) -> str | None``),
``VerificationRefused`` (a refusal with a precise status), ``Sha256Verifier``
and ``FirmwareManager``. ``trial.py`` imports nothing of the package: it runs
as the guard script too.
"""

from chargepoint.core.firmware.manager import FirmwareManager, UpdatePolicy
from chargepoint.core.firmware.model import (
    FirmwareRequest,
    FirmwareState,
    FirmwareStatus,
    PackageVerifier,
    VerificationRefused,
)
from chargepoint.core.firmware.verify import Sha256Verifier

__all__ = ["FirmwareManager", "FirmwareRequest", "FirmwareState", "FirmwareStatus", "PackageVerifier",
           "Sha256Verifier", "UpdatePolicy", "VerificationRefused"]
