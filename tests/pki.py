"""Certificates made in the tests: roots, intermediates, station and signing certificates.

Everything is real X.509 made with ``cryptography``; validity is relative to a
given moment so a test can make a certificate that expired yesterday or one
that runs out in twenty days.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DAY = 86400.0


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _validity(builder: x509.CertificateBuilder, start: float, days: float) -> x509.CertificateBuilder:
    begin = dt.datetime.fromtimestamp(start, dt.UTC)
    return builder.not_valid_before(begin).not_valid_after(begin + dt.timedelta(seconds=days * DAY))


@dataclass
class Ca:
    """A certificate authority; ``parent`` None for a root."""

    name: str
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    certificate: x509.Certificate
    parent: Ca | None = None

    @classmethod
    def root(cls, name: str, *, start: float | None = None, days: float = 30, rsa_key: bool = False) -> Ca:
        key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
        start = time.time() - 3600 if start is None else start
        builder = _validity(x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                            .public_key(key.public_key()).serial_number(x509.random_serial_number()),
                            start, days)
        certificate = (builder
                       .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                       .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                                      critical=False)
                       .sign(key, hashes.SHA256()))
        return cls(name, key, certificate)

    def intermediate(self, name: str, days: float = 30) -> Ca:
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = self._issue(_name(name), key.public_key(), days, ca=True)
        return Ca(name, key, certificate, self)

    def _issue(self, subject: x509.Name, public_key: object, days: float, *, ca: bool = False,
               start: float | None = None, extended: list[x509.ObjectIdentifier] | None = None,
               names: list[x509.GeneralName] | None = None) -> x509.Certificate:
        start = time.time() - 3600 if start is None else start
        builder = x509.CertificateBuilder().subject_name(subject).issuer_name(self.certificate.subject)
        builder = _validity(builder.public_key(public_key)  # type: ignore[arg-type]
                            .serial_number(x509.random_serial_number()), start, days)
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        issuer_key = self.key.public_key()
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key), critical=False)  # type: ignore[arg-type]
        if extended:
            builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(self.key, hashes.SHA256())  # type: ignore[arg-type]

    def chain_pem(self) -> str:
        """This CA's certificate and those above it up to (not including) the root."""
        out, ca = "", self
        while ca.parent is not None:
            out += pem(ca.certificate)
            ca = ca.parent
        return out

    def sign_csr(self, csr_pem: str, *, days: float = 30, start: float | None = None) -> str:
        """The chain the CSMS returns for a station's CSR: leaf, then intermediates."""
        csr = x509.load_pem_x509_csr(csr_pem.encode())
        leaf = self._issue(csr.subject, csr.public_key(), days, start=start,
                           extended=[ExtendedKeyUsageOID.CLIENT_AUTH])
        return pem(leaf) + self.chain_pem()

    def leaf(self, common_name: str, *, days: float = 30, start: float | None = None,
             key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | None = None,
             ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
        key = key or ec.generate_private_key(ec.SECP256R1())
        return self._issue(_name(common_name), key.public_key(), days, start=start), key

    def server(self, directory: Path, host: str = "127.0.0.1", *, days: float = 30) -> tuple[str, str]:
        """(certfile with chain, keyfile) for a TLS server named ``host``."""
        key = ec.generate_private_key(ec.SECP256R1())
        try:
            names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(host))]
        except ValueError:
            names = [x509.DNSName(host)]
        certificate = self._issue(_name(host), key.public_key(), days,
                                  extended=[ExtendedKeyUsageOID.SERVER_AUTH], names=names)
        directory.mkdir(parents=True, exist_ok=True)
        certfile, keyfile = directory / f"{self.name}-{host}.crt", directory / f"{self.name}-{host}.key"
        certfile.write_text(pem(certificate) + self.chain_pem())
        keyfile.write_bytes(key_pem(key))
        return str(certfile), str(keyfile)

    def write(self, path: Path) -> str:
        path.write_text(pem(self.certificate))
        return str(path)


def sign_package(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey, data: bytes) -> str:
    """The whitepaper's firmware signature: over the SHA-256 of the package, base64."""
    if isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = key.sign(data, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(raw).decode("ascii")


def server_context(certfile: str, keyfile: str, *, client_ca: str | None = None,
                   require: bool = True) -> ssl.SSLContext:
    """A TLS server context; with ``client_ca`` it asks for (``require``: demands) a client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certfile, keyfile)
    if client_ca is not None:
        context.load_verify_locations(cadata=client_ca)
        context.verify_mode = ssl.CERT_REQUIRED if require else ssl.CERT_OPTIONAL
    return context
