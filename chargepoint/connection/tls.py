"""TLS for the CSMS link: the context each security profile needs, and what a failed handshake was.

Profile 2 checks the CSMS's certificate and host name; profile 3 adds the
station's own certificate and offers only the OCPP security whitepaper's
cipher suites. A failed connection that the security log records (our
credentials refused, the CSMS's certificate untrusted, no common TLS version
or suite) is named by ``security_event``; ``tls_probe`` is the diagnostic
handshake that tells a bare connection reset apart, and ``probe_event`` names
what it found (a suite the station refuses, with any profile, is
InvalidTLSCipherSuite: a server with no suite in common often just resets).
"""

from __future__ import annotations

import functools
import socket
import ssl
from dataclasses import dataclass

import websockets

from chargepoint.core.security.pki import CertificateError, check_valid_at, parse_pem_chain
from chargepoint.core.security.security_log import SecurityEvent


@dataclass(frozen=True)
class Credentials:
    """What the station presents at connect time."""

    security_profile: int
    authorization_key: str  # the password's octets in hex, as OCPP carries it
    #: Profile 3: the file holding the station's certificate chain and its key.
    client_certificate: str = ""
    #: The installed CSMS root certificates (PEM); "" before the CSMS installed any.
    csms_roots: str = ""
    #: Wall-clock now (the station's clock), to refuse presenting an expired certificate.
    now: float | None = None


#: The OCPP security whitepaper's TLS 1.2 cipher suites (OpenSSL names), the only ones offered
#: with profile 3: ECDHE-ECDSA with AES-GCM for EC keys, RSA key exchange with AES-GCM for RSA keys.
WHITEPAPER_CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
                      "AES128-GCM-SHA256:AES256-GCM-SHA384")


class StationCertificateError(ConnectionError):
    """Profile 3 without a usable certificate of our own: nothing to present."""


def tls_context(ca_bundle: str, credentials: Credentials | None = None) -> ssl.SSLContext:
    """Verify the CSMS's certificate and host name against the installed CSMS roots, else
    ``ca_bundle``, else the system's CA store; TLS 1.2 at least, as the whitepaper asks.

    Profile 3 adds the station's certificate and key, and offers the whitepaper's
    cipher suites only (TLS 1.3, when both sides have it, has its own fixed set of
    AEAD suites, which Python cannot narrow further).
    """
    creds = credentials or Credentials(0, "")
    if creds.csms_roots:
        context = ssl.create_default_context(cadata=creds.csms_roots)
    else:
        context = ssl.create_default_context(cafile=ca_bundle or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if creds.security_profile >= 3:
        context.set_ciphers(WHITEPAPER_CIPHERS)
        _check_own_certificate(creds)
        context.load_cert_chain(creds.client_certificate)
    return context


def _check_own_certificate(creds: Credentials) -> None:
    """StationCertificateError unless the station has a certificate that is valid now."""
    if not creds.client_certificate:
        raise StationCertificateError("security profile 3 but the station has no certificate and key")
    try:
        with open(creds.client_certificate, "rb") as f:
            certificate = parse_pem_chain(f.read())[0]
        if creds.now is not None:
            check_valid_at(certificate, creds.now)
    except (OSError, CertificateError) as exc:
        raise StationCertificateError(f"the station's certificate cannot be used: {exc}") from None


#: OpenSSL reasons: no TLS version both sides accept.
_VERSION_REASONS = {"UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE"}
#: ... no cipher suite both sides accept.
_CIPHER_REASONS = {"NO_SHARED_CIPHER", "NO_CIPHERS_AVAILABLE", "SSLV3_ALERT_HANDSHAKE_FAILURE",
                   "NO_SUITABLE_SIGNATURE_ALGORITHM"}
#: ... the CSMS refused our certificate.
_CLIENT_CERT_REASONS = {"SSLV3_ALERT_BAD_CERTIFICATE", "TLSV1_ALERT_UNKNOWN_CA",
                        "SSLV3_ALERT_CERTIFICATE_EXPIRED", "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
                        "TLSV13_ALERT_CERTIFICATE_REQUIRED", "TLSV1_ALERT_ACCESS_DENIED",
                        "SSLV3_ALERT_CERTIFICATE_REVOKED"}
#: OpenSSL verify codes of a certificate that does not name the host connected to.
_NAME_MISMATCH = {62, 64}


def security_event(exc: BaseException) -> tuple[SecurityEvent, str] | None:
    """The security event a failed connection attempt is, with its detail; None for a plain failure."""
    if isinstance(exc, websockets.exceptions.InvalidStatus) and exc.response.status_code in (401, 403):
        return SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS, f"HTTP {exc.response.status_code} at connect"
    if isinstance(exc, StationCertificateError):
        return SecurityEvent.INVALID_STATION_CERTIFICATE, str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        kind = SecurityEvent.CSMS_FAILED_TO_AUTHENTICATE if exc.verify_code in _NAME_MISMATCH \
            else SecurityEvent.INVALID_CSMS_CERTIFICATE
        return kind, str(exc.verify_message)
    if isinstance(exc, ssl.SSLError):
        reason = exc.reason or ""
        if reason in _VERSION_REASONS:
            return SecurityEvent.INVALID_TLS_VERSION, reason
        if reason in _CIPHER_REASONS:
            return SecurityEvent.INVALID_TLS_CIPHER_SUITE, reason
        if reason in _CLIENT_CERT_REASONS:
            return SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS, f"TLS alert {reason}"
    return None


@functools.cache
def offered_suites(security_profile: int) -> frozenset[str]:
    """The TLS 1.2 cipher suites (OpenSSL names) the station offers with ``security_profile``:
    the whitepaper's with profile 3, the default context's otherwise."""
    if security_profile >= 3:
        return frozenset(WHITEPAPER_CIPHERS.split(":"))
    return frozenset(c["name"] for c in ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).get_ciphers())


def probe_event(version: str, cipher: str, security_profile: int) -> tuple[SecurityEvent, str] | None:
    """What a handshake the CSMS cut off was, from what the diagnostic handshake (``tls_probe``)
    got it to speak: a TLS version or a cipher suite the station does not offer, or (profile 3)
    our certificate refused; None when none of these explains it."""
    if version in ("SSLv3", "TLSv1", "TLSv1.1"):
        return SecurityEvent.INVALID_TLS_VERSION, f"the CSMS speaks {version}"
    if version == "TLSv1.2" and cipher not in offered_suites(security_profile):
        return SecurityEvent.INVALID_TLS_CIPHER_SUITE, f"the CSMS offers {cipher}, which the station does not"
    if security_profile >= 3:
        return SecurityEvent.FAILED_TO_AUTHENTICATE_AT_CSMS, "the CSMS closed TLS after our certificate"
    return None


def closed_in_handshake(exc: BaseException) -> bool:
    """Whether a connection attempt ended by the server closing during the TLS or HTTP handshake."""
    while exc is not None:
        if isinstance(exc, ConnectionResetError | EOFError | ssl.SSLEOFError | ssl.SSLZeroReturnError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


def tls_probe(host: str, port: int, timeout: float) -> tuple[str, str] | None:
    """(TLS version, cipher suite) the server at host:port negotiates when anything is allowed;
    None if even that fails. Nothing is verified and no byte of application data is sent."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    context.set_ciphers("ALL:@SECLEVEL=0")
    try:
        with socket.create_connection((host, port), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=host) as tls:
            version, cipher = tls.version(), tls.cipher()
    except (OSError, ssl.SSLError):
        return None
    return (version or "", cipher[0] if cipher else "")
