"""The link to the CSMS: connect, authenticate, keep alive, reconnect.

The ``ocpp`` library has no reconnect; this module owns it. A connection that
closes, fails to open, or goes silent (no pong within the ping timeout, or the
session reports CALLs left unanswered) is replaced after an exponential backoff
with jitter, so a fleet of stations does not reconnect in lockstep after a CSMS
outage. What happens on an open connection is the protocol adapter's business.

An outage is told once: "connection lost" (or "cannot connect" at start) with
the error, then each failed retry as a retry, the error only when it changes
(an identical one is counted), and "connected again" with how long it lasted.
:class:`Outage` keeps the record the status shows: offline since when, the
last error and how often it came, when the next attempt is. ``retry_now``
skips the wait for a technician who fixed the cause.

Security profiles (OCPP 1.6 security whitepaper): 0 no authentication, 1 HTTP
Basic auth over ws://, 2 Basic auth over TLS with the CSMS's certificate and
host name checked, 3 TLS with the station's client certificate (no Basic auth)
and only the whitepaper's cipher suites. The CSMS's certificate must lead to
an installed CSMS root certificate (or, before the CSMS has installed one, to
``ca_bundle`` or the system's CA store). The Basic password and the client
certificate are read at every connect, so a key or a certificate the CSMS
changed is used from the next connection on.

A connection that fails for a reason the security log records (the CSMS
refused our credentials, its certificate is not trusted, no common TLS
version or cipher suite) is reported through ``on_failure`` with the
exception and the event (``security_event``). A TLS server that refuses a
handshake often just resets the connection, without saying why; then a
diagnostic handshake (``tls_probe``: any version, any cipher suite, nothing
verified, nothing sent) finds out what the server would have spoken: a TLS
version below 1.2, or under TLS 1.2 a suite outside the whitepaper's; if it
would speak what we offer, a profile 3 connection was refused for our
certificate.
"""

from chargepoint.config.csms_url import endpoint
from chargepoint.connection.link import (
    KEEPALIVE_CHECK_S,
    READ_MAX_BYTES,
    FailureHook,
    Link,
    Pinger,
    Session,
    SessionFactory,
)
from chargepoint.connection.settings import Backoff, LinkSettings, NoCommonVersion, Outage, basic_auth_header
from chargepoint.connection.tls import (
    WHITEPAPER_CIPHERS,
    Credentials,
    StationCertificateError,
    closed_in_handshake,
    probe_event,
    security_event,
    tls_context,
    tls_probe,
)

__all__ = ["KEEPALIVE_CHECK_S", "READ_MAX_BYTES", "WHITEPAPER_CIPHERS", "Backoff", "Credentials",
           "FailureHook", "Link", "LinkSettings", "NoCommonVersion", "Outage", "Pinger", "Session",
           "SessionFactory", "StationCertificateError", "basic_auth_header", "closed_in_handshake",
           "endpoint", "probe_event", "security_event", "tls_context", "tls_probe"]
