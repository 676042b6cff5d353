"""The control protocol's security commands: certificates for the technician, the security log.

``certs`` lists the installed root certificates and the station's own with
their expiry; ``certs_csr`` makes a signing request on the station (a new key
there; the request can then be signed by hand and the certificate handed to
the station by the CSMS); ``certs_pin`` and ``certs_unpin`` pin and unpin
the owner's manufacturer roots (once one is pinned, only pinned roots verify
firmware signatures); ``security_log`` shows the persistent security log
and, with ``clear``, empties it (recorded as SecurityLogWasCleared).
``certificate_check`` is the selftest's look at the certificates. All the
file work runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from chargepoint.control.errors import ControlError
from chargepoint.control.output_tests import FAIL, PASS, SKIP
from chargepoint.control.service import StationService
from chargepoint.core.security import pki
from chargepoint.core.security.services import Security

#: The selftest's status for "works, but look at it" (selftest.WARN; selftest imports this module).
WARN = "warn"
Handler = Callable[[StationService, dict[str, Any]], Awaitable[Any]]
DAY = 86400.0


def _security(s: StationService) -> Security:
    security = s.services.security
    if security is None:
        raise ControlError("refused", "the station's security services are not running")
    return security


def _certificates(security: Security) -> dict[str, Any]:
    """Blocking: read every certificate file."""
    store, now = security.certificates, security.certificates.now()
    roots = [
        {
            "kind": i.kind,
            "subject": i.subject,
            "expires": i.expires,
            "days_left": round((i.expires - now) / DAY, 1),
            "serial_number": i.hash_data().serial_number,
        }
        for i in store.installed()
    ]
    pinned = [
        {
            "subject": i.subject,
            "expires": i.expires,
            "days_left": round((i.expires - now) / DAY, 1),
            "fingerprint": pki.fingerprint(i.certificate),
        }
        for i in store.pinned()
    ]
    own = store.station_certificate()
    station = None
    if own is not None:
        expires = own.not_valid_after_utc.timestamp()
        station = {
            "subject": pki.subject_text(own),
            "issuer": own.issuer.rfc4514_string(),
            "expires": expires,
            "days_left": round((expires - now) / DAY, 1),
            "in_use": store.client_identity() is not None,
        }
    return {
        "roots": roots,
        "pinned": pinned,
        "station": station,
        "renewal_days": security.settings.current.certificate_renewal_days,
    }


async def _certs(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    return await asyncio.to_thread(_certificates, _security(s))


async def _certs_csr(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    security = _security(s)
    return {
        "csr": await security.signing_request(),
        "identity": security.identity,
        "organization": security.settings.current.organization_name,
    }


def _text(args: dict[str, Any], name: str) -> str:
    value = args.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError("bad_request", f"{name} must be a non-empty string")
    return value


async def _certs_pin(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    pinned, detail = await _security(s).pin_manufacturer(_text(args, "pem"), "the technician")
    if not pinned:
        raise ControlError("refused", f"not pinned: {detail}")
    return {"pinned": detail}


async def _certs_unpin(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    removed, detail = await _security(s).unpin_manufacturer(_text(args, "fingerprint"), "the technician")
    if not removed:
        raise ControlError("refused", f"not removed: {detail}")
    return {"unpinned": detail}


async def _security_log(s: StationService, args: dict[str, Any]) -> dict[str, Any]:
    security = _security(s)
    if args.get("clear"):
        await security.log.clear(f"the technician ({args.get('by', 'control socket')})")
    limit = args.get("limit", 100)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ControlError("bad_request", "limit must be a whole number")
    entries = await security.log.entries()
    return {
        "entries": [
            {
                "seq": e.seq,
                "time": e.at,
                "kind": e.kind.value,
                "info": e.info,
                "critical": e.critical,
                "sent": e.sent,
            }
            for e in entries[-limit:]
            if limit
        ]
    }


COMMANDS: dict[str, Handler] = {"certs": _certs, "certs_csr": _certs_csr, "certs_pin": _certs_pin,
                                "certs_unpin": _certs_unpin, "security_log": _security_log}
#: Of these, the ones that change something (logged with who asked).
AUDITED = {"certs_csr", "certs_pin", "certs_unpin", "security_log"}


async def certificate_check(security: Security | None) -> tuple[str, str]:
    """The selftest's (status, detail) for the station's certificate and the installed roots."""
    if security is None:
        return SKIP, "the security services are not running"
    found = await asyncio.to_thread(_certificates, security)
    expired = [r["subject"] for r in found["roots"] if r["days_left"] < 0]
    station = found["station"]
    if station is None:
        roots = f"{len(found['roots'])} root certificate(s)"
        return (
            (WARN, f"{roots}, {len(expired)} expired")
            if expired
            else (PASS, f"{roots}; no station certificate")
        )
    if station["days_left"] < 0:
        return (
            FAIL,
            f"the station certificate {station['subject']} expired {-station['days_left']:.0f} days ago",
        )
    if not station["in_use"]:
        return FAIL, "the station certificate does not belong to the station's key"
    detail = f"station certificate {station['subject']}: {station['days_left']:.0f} days left"
    if expired:
        return WARN, f"{detail}; expired root(s): {', '.join(expired)}"
    if station["days_left"] <= found["renewal_days"]:
        return WARN, f"{detail} (renewal due)"
    return PASS, detail
