"""Signed firmware: the package's signature and signing certificate, checked before any of it runs.

The OCPP security whitepaper (and 2.0.1's signed firmware) sends a firmware
location together with a signing certificate (PEM) and a signature (base64)
over the package: RSA or ECDSA over the SHA-256 of the package's bytes. The
firmware manager downloads the package and, before it unpacks or runs
anything of it, asks a ``PackageVerifier``; this is the one for signed
firmware. The signing certificate must lead to a manufacturer root (the ones
the owner pinned, when any are; else those the CSMS installed) and be valid
now (the injected clock); the signature must be the certificate key's over
the package. A refusal says which of the two failed (``Refusal.status``: the
firmware status the adapters report) and is recorded as the matching
security event.

Reading and hashing a package of many megabytes runs in a worker thread.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from chargepoint.core.security import pki
from chargepoint.core.security.certificates import CertificateStore
from chargepoint.core.security.security_log import SecurityEvent, SecurityLog

if TYPE_CHECKING:
    from cryptography import x509

#: How much of the package is read at a time while hashing.
CHUNK = 1 << 20
INVALID_CERTIFICATE = "invalid_certificate"
INVALID_SIGNATURE = "invalid_signature"


class SignedRequest(Protocol):
    """What the verifier reads of a firmware request (the firmware manager's ``FirmwareRequest``)."""

    signature: str | None
    signing_certificate: str | None


class Refusal(str):
    """Why a package is refused, in words; ``status`` says whether the certificate or the signature failed."""

    status: str

    def __new__(cls, text: str, status: str) -> Refusal:
        refusal = super().__new__(cls, text)
        refusal.status = status
        return refusal


def sha256_of(package: Path) -> bytes:
    digest = hashlib.sha256()
    with package.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.digest()


class SignatureVerifier:
    """A ``PackageVerifier`` for signed firmware: None for a package that may run, else a ``Refusal``."""

    def __init__(self, certificates: CertificateStore, security_log: SecurityLog | None = None) -> None:
        self.certificates = certificates
        self.security_log = security_log

    async def verify(self, package: Path, request: SignedRequest) -> str | None:
        refusal = await asyncio.to_thread(self.check, package, request)
        if refusal is not None and self.security_log is not None:
            kind = (SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE
                    if refusal.status == INVALID_CERTIFICATE else SecurityEvent.INVALID_FIRMWARE_SIGNATURE)
            self.security_log.record(kind, refusal)
        return refusal

    async def check_certificate(self, signing_certificate: str | None) -> Refusal | None:
        """The signing certificate alone, when the request arrives: both OCPP versions answer an
        update whose certificate is not trusted with InvalidCertificate, before any download.
        A refusal is recorded as InvalidFirmwareSigningCertificate."""
        refusal = await asyncio.to_thread(self._certificate, signing_certificate)
        if isinstance(refusal, Refusal):
            if self.security_log is not None:
                self.security_log.record(SecurityEvent.INVALID_FIRMWARE_SIGNING_CERTIFICATE, refusal)
            return refusal
        return None

    def _certificate(self, signing_certificate: str | None) -> Refusal | list[x509.Certificate]:
        """The checked chain, or why it is refused (blocking: crypto work)."""
        if not signing_certificate:
            return Refusal("the firmware comes without a signing certificate", INVALID_CERTIFICATE)
        try:
            chain = pki.parse_pem_chain(signing_certificate)
            pki.check_chain(chain, self.certificates.firmware_roots(), self.certificates.now())
        except pki.CertificateError as exc:
            return Refusal(f"signing certificate refused: {exc}", INVALID_CERTIFICATE)
        return list(chain)

    def check(self, package: Path, request: SignedRequest) -> Refusal | None:
        """The verification itself (blocking: file and crypto work)."""
        chain = self._certificate(request.signing_certificate)
        if isinstance(chain, Refusal):
            return chain
        if not request.signature:
            return Refusal("the firmware comes without a signature", INVALID_SIGNATURE)
        try:
            signature = base64.b64decode(request.signature, validate=True)
        except (binascii.Error, ValueError):
            return Refusal("the signature is not base64", INVALID_SIGNATURE)
        try:
            digest = sha256_of(package)
        except OSError as exc:
            return Refusal(f"cannot read the package: {exc.strerror or exc}", INVALID_SIGNATURE)
        if not _signed(chain[0].public_key(), signature, digest):
            return Refusal("the signature does not match the package and the signing certificate",
                           INVALID_SIGNATURE)
        return None


def _signed(key: object, signature: bytes, digest: bytes) -> bool:
    """Whether ``signature`` is ``key``'s over the SHA-256 ``digest`` (ECDSA; RSA PKCS#1 v1.5 or PSS)."""
    c = pki.crypto()
    ec, rsa, padding, hashes, InvalidSignature = c.ec, c.rsa, c.padding, c.hashes, c.InvalidSignature  # noqa: N806
    prehashed = c.Prehashed(hashes.SHA256())
    attempts = []
    if isinstance(key, ec.EllipticCurvePublicKey):
        attempts.append(lambda: key.verify(signature, digest, ec.ECDSA(prehashed)))
    elif isinstance(key, rsa.RSAPublicKey):
        attempts.append(lambda: key.verify(signature, digest, padding.PKCS1v15(), prehashed))
        attempts.append(lambda: key.verify(signature, digest, padding.PSS(
            padding.MGF1(hashes.SHA256()), padding.PSS.AUTO), prehashed))
    for attempt in attempts:
        try:
            attempt()
            return True
        except InvalidSignature:
            continue
    return False
