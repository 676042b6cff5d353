"""The station's certificates and its private key, as files under the state directory.

``<state_dir>/certs/``: the root certificates the CSMS installed, one PEM file
each, in ``csms_root/`` (the CAs the CSMS's TLS certificate must lead to) and
``manufacturer_root/`` (the CAs firmware signing certificates must lead to);
the station's key and certificate for security profile 3. The owner may pin
manufacturer roots locally (``chargepoint certs pin-manufacturer``), in
``pinned_manufacturer_root/``: no OCPP message lists, installs or deletes
them, and once one is pinned only the pinned ones verify firmware, so a CSMS
that installs a ManufacturerRootCertificate of its own signs no firmware with it. The key is made on
the station and never leaves it: written with mode 0600 by the service user
that runs the daemon, never part of the configuration file, never logged.

Renewal keeps the running pair until the new one is complete: a signing
request makes a new key (``station.pending.key``); a signed certificate that
carries it, is valid at the injected clock's now and leads to an installed
CSMS root replaces the pair, and the link presents it from its next
connection on. The pair in use is one file, ``station.pem`` (the chain, then
the key; mode 0600), replaced in one rename: a power cut during a renewal
leaves the old pair or the new one, never a certificate beside a key it does
not belong to. Every method does blocking file I/O and crypto: callers on
the event loop run them through ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from chargepoint.core.security import pki
from chargepoint.core.security.pki import CertificateError, HashData

KEY_MODE = 0o600
#: The station's certificate chain followed by its private key.
PAIR_FILE = "station.pem"
PENDING_KEY_FILE = "station.pending.key"
#: The owner's manufacturer roots (beside the RootKind folders, and none of them).
PINNED_DIR = "pinned_manufacturer_root"
#: The fewest hex digits of a fingerprint that name a pinned root to remove.
FINGERPRINT_MIN = 8

if TYPE_CHECKING:
    from cryptography import x509


class RootKind(StrEnum):
    """The kinds of root certificate the CSMS manages on the station."""

    CSMS = "csms_root"
    MANUFACTURER = "manufacturer_root"


class InstallResult(StrEnum):
    ACCEPTED = "accepted"
    #: Not a usable certificate (broken, expired, not a CA) or the store is full.
    REJECTED = "rejected"
    FAILED = "failed"


class DeleteResult(StrEnum):
    ACCEPTED = "accepted"
    FAILED = "failed"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class Installed:
    """One installed certificate, for the CSMS's list and the technician's."""

    kind: str
    path: Path
    certificate: x509.Certificate

    def hash_data(self, algorithm: str = "SHA256") -> HashData:
        return pki.hash_data(self.certificate, self.certificate.public_key(), algorithm)  # type: ignore[arg-type]

    @property
    def subject(self) -> str:
        return pki.subject_text(self.certificate)

    @property
    def expires(self) -> float:
        return self.certificate.not_valid_after_utc.timestamp()


class CertificateStore:
    """Root certificates, the station's key and its certificate, in ``<state_dir>/certs``."""

    def __init__(self, state_dir: str | Path, now: Callable[[], float]) -> None:
        self.directory = Path(state_dir) / "certs"
        #: Wall-clock seconds (the station's injected clock): what "expired" is measured against.
        self.now = now

    # ------------------------------------------------------------ files
    def _dir(self, *parts: str) -> Path:
        path = self.directory.joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return path

    @property
    def pair_path(self) -> Path:
        return self.directory / PAIR_FILE

    def _write_private(self, path: Path, data: bytes) -> None:
        """Write ``data`` readable by the service user only, from the first byte on, atomically."""
        self._dir()
        temporary = path.with_name(path.name + ".tmp")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)

    def _write_public(self, path: Path, data: bytes) -> None:
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)

    # ------------------------------------------------------------ roots
    def installed(self, kind: RootKind | None = None) -> list[Installed]:
        """Installed root certificates of ``kind`` (all kinds when None), by file name."""
        found = []
        for k in [kind] if kind else list(RootKind):
            folder = self.directory / k.value
            for path in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
                try:
                    found.append(Installed(k.value, path, pki.parse_pem_chain(path.read_bytes())[0]))
                except (CertificateError, OSError):
                    continue  # a damaged file is not a trusted root
        return found

    def roots(self, kind: RootKind) -> list[x509.Certificate]:
        return [i.certificate for i in self.installed(kind)]

    def roots_pem(self, kind: RootKind) -> str:
        """The installed roots of ``kind`` as one PEM text ("" when none): a TLS trust store."""
        return "".join(pki.pem_of(c) for c in self.roots(kind))

    def install(self, kind: RootKind, pem: str, max_total: int) -> tuple[InstallResult, str]:
        """Install a root certificate; the result and, when refused, why."""
        try:
            certificate = pki.parse_pem_chain(pem)[0]
            pki.check_valid_at(certificate, self.now())
        except CertificateError as exc:
            return InstallResult.REJECTED, str(exc)
        if not pki.is_ca(certificate):
            return InstallResult.REJECTED, f"{pki.subject_text(certificate)} is not a CA certificate"
        hashes = pki.crypto().hashes
        fingerprint = certificate.fingerprint(hashes.SHA256()).hex()
        present = self.installed()
        if any(i.certificate.fingerprint(hashes.SHA256()).hex() == fingerprint and i.kind == kind.value
               for i in present):
            return InstallResult.ACCEPTED, "already installed"
        if len(present) >= max_total:
            return InstallResult.REJECTED, f"the certificate store is full ({max_total} certificates)"
        try:
            self._write_public(self._dir(kind.value) / f"{fingerprint[:16]}.pem",
                               pki.pem_of(certificate).encode("ascii"))
        except OSError as exc:
            return InstallResult.FAILED, f"cannot write the certificate: {exc}"
        return InstallResult.ACCEPTED, pki.subject_text(certificate)

    # ------------------------------------------------- pinned by the owner
    def pinned(self) -> list[Installed]:
        """The manufacturer roots the owner pinned, by file name."""
        folder = self.directory / PINNED_DIR
        found = []
        for path in sorted(folder.glob("*.pem")) if folder.is_dir() else []:
            try:
                found.append(Installed(PINNED_DIR, path, pki.parse_pem_chain(path.read_bytes())[0]))
            except (CertificateError, OSError):
                continue
        return found

    def firmware_roots(self) -> list[x509.Certificate]:
        """The roots a firmware signing certificate must lead to: the pinned ones when there are
        any (then a root the CSMS installed signs no firmware), else the installed manufacturer roots."""
        pinned = [i.certificate for i in self.pinned()]
        return pinned or self.roots(RootKind.MANUFACTURER)

    def pin(self, pem: str) -> tuple[bool, str]:
        """Pin a manufacturer root (a CA certificate valid now); whether it is pinned, and what or why not."""
        try:
            certificate = pki.parse_pem_chain(pem)[0]
            pki.check_valid_at(certificate, self.now())
        except CertificateError as exc:
            return False, str(exc)
        if not pki.is_ca(certificate):
            return False, f"{pki.subject_text(certificate)} is not a CA certificate"
        fingerprint = pki.fingerprint(certificate)
        try:
            self._write_public(self._dir(PINNED_DIR) / f"{fingerprint[:16]}.pem",
                               pki.pem_of(certificate).encode("ascii"))
        except OSError as exc:
            return False, f"cannot write the certificate: {exc}"
        return True, f"{pki.subject_text(certificate)} (SHA-256 {fingerprint[:16]})"

    def unpin(self, fingerprint: str) -> tuple[bool, str]:
        """Remove the pinned root whose SHA-256 fingerprint begins with ``fingerprint``."""
        wanted = fingerprint.lower().replace(":", "")
        if len(wanted) < FINGERPRINT_MIN or any(c not in "0123456789abcdef" for c in wanted):
            return False, f"give at least {FINGERPRINT_MIN} hex digits of the fingerprint"
        matches = [i for i in self.pinned() if pki.fingerprint(i.certificate).startswith(wanted)]
        if len(matches) != 1:
            return False, "no pinned root has that fingerprint" if not matches else \
                "more than one pinned root has a fingerprint beginning so: give more digits"
        try:
            matches[0].path.unlink()
        except OSError as exc:
            return False, f"cannot delete {matches[0].path.name}: {exc}"
        return True, matches[0].subject

    def delete(self, wanted: HashData) -> tuple[DeleteResult, str]:
        """Delete the installed root that ``wanted`` names; the result and what was (not) deleted.

        The station's own certificate is not the CSMS's to delete (the station
        could no longer connect with profile 3): Failed, as OCPP 2.0.1 M04 asks."""
        if wanted.algorithm not in pki.HASHES:
            return DeleteResult.FAILED, f"unknown hash algorithm {wanted.algorithm}"
        own = self.station_certificate()
        if own is not None and _names(own, wanted):
            return DeleteResult.FAILED, "the station's own certificate cannot be deleted"
        for item in self.installed():
            have = item.hash_data(wanted.algorithm)
            if (have.issuer_name_hash.lower(), have.issuer_key_hash.lower(), have.serial_number) == \
                    (wanted.issuer_name_hash.lower(), wanted.issuer_key_hash.lower(),
                     wanted.serial_number.lower().lstrip("0") or "0"):
                try:
                    item.path.unlink()
                except OSError as exc:
                    return DeleteResult.FAILED, f"cannot delete {item.path.name}: {exc}"
                return DeleteResult.ACCEPTED, item.subject
        return DeleteResult.NOT_FOUND, "no installed certificate has that hash data"

    # ------------------------------------------------------ station pair
    def station_certificate(self) -> x509.Certificate | None:
        """The station's own certificate (the leaf of its chain), or None."""
        try:
            return pki.parse_pem_chain(self.pair_path.read_bytes())[0]
        except (OSError, CertificateError):
            return None

    def client_identity(self) -> Path | None:
        """The file to present in TLS (chain and key), when it holds a certificate and its key."""
        try:
            data = self.pair_path.read_bytes()
            certificate, key = pki.parse_pem_chain(data)[0], pki.load_key(data)
        except (OSError, ValueError):
            return None
        return self.pair_path if pki.same_key(certificate, key) else None

    def new_signing_request(self, identity: str, organization: str) -> str:
        """A CSR over a new key pair made here; the running pair stays until a certificate for it arrives."""
        key = pki.new_private_key()
        self._write_private(self.directory / PENDING_KEY_FILE, pki.key_pem(key))
        return pki.signing_request(key, identity, organization)

    def accept_signed(self, chain_pem: str, max_bytes: int, identity: str | None = None,
                      organization: str | None = None) -> str | None:
        """Take the station's certificate chain from the CSMS; None if taken, else why it was refused.

        Checked: the size limit, every certificate valid now and signed by the
        next, the chain ending at an installed CSMS root, the leaf fit to be
        this station's TLS client certificate (``pki.check_station_leaf``: CN
        ``identity`` when given, O ``organization`` when given, no CA, usable
        by a TLS client), and the leaf carrying the key of our latest signing
        request (or the key in use, for a certificate re-issued over the same key).
        """
        if len(chain_pem.encode()) > max_bytes:
            return f"the chain has {len(chain_pem.encode())} bytes, more than the {max_bytes} allowed"
        try:
            chain = pki.parse_pem_chain(chain_pem)
            pki.check_chain(chain, self.roots(RootKind.CSMS), self.now())
            if identity is not None:
                pki.check_station_leaf(chain[0], identity, organization)
        except CertificateError as exc:
            return str(exc)
        pending = self.directory / PENDING_KEY_FILE
        for key_file in (pending, self.pair_path):
            try:
                key_text = key_file.read_bytes()
                key = pki.load_key(key_text)
            except (OSError, ValueError):
                continue
            if pki.same_key(chain[0], key):
                pair = "".join(pki.pem_of(c) for c in chain).encode("ascii") + pki.key_pem(key)
                self._write_private(self.pair_path, pair)
                with contextlib.suppress(FileNotFoundError):
                    pending.unlink()
                return None
        return "the certificate does not carry the key of the station's signing request"

    def days_left(self) -> float | None:
        """Days until the station's certificate expires (negative: expired); None without one."""
        certificate = self.station_certificate()
        if certificate is None:
            return None
        return (certificate.not_valid_after_utc.timestamp() - self.now()) / 86400.0


def _names(certificate: x509.Certificate, wanted: HashData) -> bool:
    """Whether ``wanted`` names ``certificate`` by its issuer's name and its serial number (which
    identify a certificate; the issuer's key hash needs the issuer, which the station may not keep)."""
    have = pki.hash_data(certificate, certificate.public_key(), wanted.algorithm)  # type: ignore[arg-type]
    return (have.issuer_name_hash, have.serial_number) == \
        (wanted.issuer_name_hash.lower(), wanted.serial_number.lower().lstrip("0") or "0")
