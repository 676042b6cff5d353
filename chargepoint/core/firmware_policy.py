"""The owner's firmware policy: which packages may run at all, whatever the CSMS asks for.

A firmware package is code the station runs (its import check already executes
it), so who may hand the station a package is the owner's decision, not the
CSMS's: the two keys of ``[firmware]`` are read from the configuration file
and no OCPP message changes them.

- A signed request (one that carries a signature or a signing certificate) is
  checked by the signature verifier (``firmware_signature.py``), whatever the
  link.
- An unsigned one is refused when ``require_signature`` is set, and, unless
  ``allow_unsigned_without_tls`` is set, when the link to the CSMS is not
  TLS-authenticated (security profile 0 or 1): on a ``ws://`` link anyone on
  the path can send UpdateFirmware with a location of their own.

The profile that counts is the lowest the link had from the moment the update
began until its package is verified: an update asked for over a plain link
stays refused when the profile is raised while it downloads. The refusal is
an invalid signature (the signature the policy wants is missing), recorded as
InvalidFirmwareSignature, and it happens in the verifier list, after the
download and before anything of the package is unpacked or executed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from chargepoint.core.firmware.model import FirmwareRequest, FirmwareState
from chargepoint.core.security.firmware_signature import INVALID_SIGNATURE, Refusal, SignatureVerifier
from chargepoint.core.security.security_log import SecurityEvent, SecurityLog

log = logging.getLogger(__name__)

#: The lowest security profile whose link is TLS-authenticated (2: server certificate; 3: mutual).
TLS_AUTHENTICATED = 2


def signed(request: FirmwareRequest) -> bool:
    """Whether the request carries anything of a signature (then the signature verifier decides)."""
    return request.signature is not None or request.signing_certificate is not None


class FirmwarePolicy:
    """A ``PackageVerifier``: the signature check for signed packages, the owner's rule for unsigned ones."""

    def __init__(self, signatures: SignatureVerifier, link_profile: Callable[[], int], *,
                 require_signature: bool, allow_unsigned_without_tls: bool,
                 security_log: SecurityLog | None = None) -> None:
        """``link_profile``: the security profile the CSMS link is connected with now."""
        self.signatures = signatures
        self.link_profile = link_profile
        self.require_signature = require_signature
        self.allow_unsigned_without_tls = allow_unsigned_without_tls
        self.security_log = security_log
        #: The lowest link profile seen since the update in hand began (None: no update in hand).
        self._lowest: int | None = None

    def watch(self, state: FirmwareState) -> None:
        """A firmware manager listener: follows the link's profile over the life of each update."""
        if state.in_progress:
            now = self.link_profile()
            self._lowest = now if self._lowest is None else min(self._lowest, now)
        else:
            self._lowest = None

    def unsigned_refusal(self) -> str | None:
        """Why an unsigned package may not run now (None: it may)."""
        if self.require_signature:
            return "the firmware is not signed and this station requires signed firmware " \
                   "([firmware] require_signature)"
        profile = self.link_profile()
        if self._lowest is not None:
            profile = min(profile, self._lowest)
        if profile < TLS_AUTHENTICATED and not self.allow_unsigned_without_tls:
            return (f"the firmware is not signed and the CSMS link is not TLS-authenticated (security "
                    f"profile {profile}); unsigned firmware needs profile 2 or 3 "
                    "([firmware] allow_unsigned_without_tls)")
        return None

    async def verify(self, package: Path, request: FirmwareRequest) -> str | None:
        if signed(request):
            return await self.signatures.verify(package, request)
        reason = self.unsigned_refusal()
        if reason is None:
            return None
        if self.security_log is not None:
            self.security_log.record(SecurityEvent.INVALID_FIRMWARE_SIGNATURE, reason)
        return Refusal(reason, INVALID_SIGNATURE)
