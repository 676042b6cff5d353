"""Certificate arithmetic the station needs, as pure functions over ``cryptography`` objects.

Kept apart from the files (``certificates.py``) so each rule can be tested on
certificates made in memory: how a certificate is named to the CSMS (the hash
data both OCPP versions use), whether a chain leads to one of our roots at a
given moment, whether a certificate carries a given key, and how the station's
key pair and signing request are made. Time is a parameter: the caller's
injected clock decides what "expired" means.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from types import SimpleNamespace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.types import (
        CertificateIssuerPublicKeyTypes,
        PrivateKeyTypes,
    )

#: Hash algorithms the CSMS may name certificates with (both OCPP versions use these three).
HASHES = ("SHA256", "SHA384", "SHA512")


@functools.cache
def crypto() -> SimpleNamespace:
    """The ``cryptography`` parts, imported at first use: about 13 MiB that a station without
    certificates, CSRs or signed firmware never needs to load."""
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from cryptography.x509.oid import NameOID

    return SimpleNamespace(x509=x509, InvalidSignature=InvalidSignature, hashes=hashes,
                           serialization=serialization, ec=ec, rsa=rsa, padding=padding,
                           Prehashed=Prehashed, NameOID=NameOID)


class CertificateError(ValueError):
    """A certificate or chain that is not acceptable; the message says why."""


@dataclass(frozen=True)
class HashData:
    """How OCPP names one certificate: hashes of its issuer's name and key, and its serial number."""

    algorithm: str
    issuer_name_hash: str
    issuer_key_hash: str
    serial_number: str


def parse_pem_chain(pem: str | bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM text, in order; CertificateError if there is none or one is broken."""
    x509 = crypto().x509
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        chain = x509.load_pem_x509_certificates(data)
    except ValueError as exc:
        raise CertificateError(f"not a PEM certificate: {exc}") from None
    if not chain:
        raise CertificateError("no certificate in the text")
    return chain


def pem_of(certificate: x509.Certificate) -> str:
    serialization = crypto().serialization
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _key_bits(key: CertificateIssuerPublicKeyTypes) -> bytes:
    """The subjectPublicKey BIT STRING's contents, which OCPP's issuerKeyHash is taken over."""
    serialization, ec, rsa = ((c := crypto()).serialization, c.ec, c.rsa)
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    if isinstance(key, rsa.RSAPublicKey):
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)  # type: ignore[call-arg]


def _digest(algorithm: str, data: bytes) -> str:
    hashes = crypto().hashes
    h = hashes.Hash(getattr(hashes, algorithm)())
    h.update(data)
    return h.finalize().hex()


def hash_data(certificate: x509.Certificate, issuer_key: CertificateIssuerPublicKeyTypes,
              algorithm: str = "SHA256") -> HashData:
    """``certificate``'s OCPP hash data; ``issuer_key`` is its issuer's public key (its own for a root)."""
    return HashData(algorithm, _digest(algorithm, certificate.issuer.public_bytes()),
                    _digest(algorithm, _key_bits(issuer_key)), format(certificate.serial_number, "x"))


def same_key(certificate: x509.Certificate, key: PrivateKeyTypes) -> bool:
    """Whether ``certificate`` carries the public half of ``key``."""
    serialization = crypto().serialization
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return certificate.public_key().public_bytes(*fmt) == key.public_key().public_bytes(*fmt)


def _moment(now: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(now, dt.UTC)


def check_valid_at(certificate: x509.Certificate, now: float) -> None:
    """CertificateError unless ``now`` lies in the certificate's validity period."""
    at = _moment(now)
    if at < certificate.not_valid_before_utc:
        raise CertificateError(f"{_subject(certificate)} is not valid before "
                               f"{certificate.not_valid_before_utc:%Y-%m-%d %H:%M}Z")
    if at > certificate.not_valid_after_utc:
        raise CertificateError(f"{_subject(certificate)} expired "
                               f"{certificate.not_valid_after_utc:%Y-%m-%d %H:%M}Z")


def fingerprint(certificate: x509.Certificate) -> str:
    """The SHA-256 fingerprint in lowercase hex (how a technician tells certificates apart)."""
    return certificate.fingerprint(crypto().hashes.SHA256()).hex()


def is_ca(certificate: x509.Certificate) -> bool:
    x509 = crypto().x509
    try:
        return bool(certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    """Whether ``issuer`` names and signed ``certificate``."""
    InvalidSignature = crypto().InvalidSignature
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def check_chain(chain: list[x509.Certificate], roots: list[x509.Certificate], now: float) -> x509.Certificate:
    """Follow ``chain`` (leaf first, then intermediates) up to one of ``roots``.

    Every certificate must be valid at ``now``, each one issued by the next,
    every issuer a CA, and the last one issued by (or be) an installed root.
    Returns the root it ends at; CertificateError says where it breaks.
    """
    hashes = crypto().hashes
    if not roots:
        raise CertificateError("no root certificate of this kind is installed")
    for certificate in chain:
        check_valid_at(certificate, now)
    for lower, upper in zip(chain, chain[1:], strict=False):
        if not is_ca(upper):
            raise CertificateError(f"{_subject(upper)} is not a CA but is given as the issuer of "
                                   f"{_subject(lower)}")
        if not issued_by(lower, upper):
            raise CertificateError(f"{_subject(lower)} is not signed by {_subject(upper)}")
    top = chain[-1]
    for root in roots:
        if top.fingerprint(hashes.SHA256()) == root.fingerprint(hashes.SHA256()) or issued_by(top, root):
            check_valid_at(root, now)
            return root
    raise CertificateError(f"{_subject(top)} is not issued by an installed root "
                           f"(issuer {top.issuer.rfc4514_string()})")


def check_station_leaf(certificate: x509.Certificate, identity: str, organization: str | None) -> None:
    """CertificateError unless ``certificate`` can be this station's own TLS client certificate.

    It must name the station (subject CN = ``identity``; O = ``organization``
    when one is given), be no CA (a CA certificate in the station's hands could
    issue certificates for anyone), and, where it limits its use, allow a TLS
    client: ExtendedKeyUsage with clientAuth, KeyUsage with digitalSignature
    (the ECDHE suites sign the handshake with it).
    """
    x509, oid = crypto().x509, crypto().NameOID
    subject = certificate.subject
    names = [str(a.value) for a in subject.get_attributes_for_oid(oid.COMMON_NAME)]
    if names != [identity]:
        raise CertificateError(f"the certificate is for {_subject(certificate)}, not for CN={identity}")
    if organization is not None:
        orgs = [str(a.value) for a in subject.get_attributes_for_oid(oid.ORGANIZATION_NAME)]
        if orgs != [organization]:
            raise CertificateError(f"the certificate is for {_subject(certificate)}, "
                                   f"not for O={organization}")
    if is_ca(certificate):
        raise CertificateError(f"{_subject(certificate)} is a CA certificate (BasicConstraints CA:TRUE), "
                               "not a station's")
    extensions = certificate.extensions
    try:
        usages = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        pass
    else:
        if x509.ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
            raise CertificateError(f"{_subject(certificate)} is not for TLS clients "
                                   "(its ExtendedKeyUsage lacks clientAuth)")
    try:
        key_usage = extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not key_usage.digital_signature:
        raise CertificateError(f"{_subject(certificate)} may not sign (its KeyUsage lacks digitalSignature)")


def new_private_key() -> ec.EllipticCurvePrivateKey:
    """The station's key pair: EC P-256, which the whitepaper's ECDSA cipher suites use."""
    ec = crypto().ec
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: PrivateKeyTypes) -> bytes:
    serialization = crypto().serialization
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(data: bytes) -> PrivateKeyTypes:
    serialization = crypto().serialization
    return serialization.load_pem_private_key(data, password=None)


def signing_request(key: ec.EllipticCurvePrivateKey, identity: str, organization: str) -> str:
    """A PKCS#10 request for the station's certificate: CN the identity, O the organization."""
    x509, hashes, serialization, NameOID = ((c := crypto()).x509, c.hashes, c.serialization, c.NameOID)
    names = [x509.NameAttribute(NameOID.COMMON_NAME, identity)]
    if organization:
        names.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(names)).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _subject(certificate: x509.Certificate) -> str:
    return repr(certificate.subject.rfc4514_string() or f"serial {certificate.serial_number:x}")


def subject_text(certificate: x509.Certificate) -> str:
    """The subject for people (``CN=...,O=...``)."""
    return certificate.subject.rfc4514_string()
