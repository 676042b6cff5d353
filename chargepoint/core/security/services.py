"""The station's security services in one place: certificates, the security log, renewal.

One object that every OCPP version's adapter reaches through the daemon's services
(``Services.security``, core/services.py): what a CSMS may do to the station's certificates
(install and delete roots, list them, have a signing request made and its
certificate accepted) and what the station reports (the security log). The
adapters translate words; the decisions are here. Expiry is watched on the
injected clock: ``certificate_renewal_days`` before the station's certificate
expires, a new signing request is asked for through ``renewal_listeners``
(the connected adapter sends it). A request the CSMS leaves without a certificate
is made again after ``cert_signing_wait_minimum_s``, the wait doubled each
time, at most ``cert_signing_repeat_times`` times (``signing_wait``); after that
the station waits for the CSMS to trigger one, or asks again for the renewal
``RENEWAL_RETRY_S`` after its last request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from chargepoint.core.security.certificates import CertificateStore, DeleteResult, InstallResult, RootKind
from chargepoint.core.security.firmware_signature import SignatureVerifier
from chargepoint.core.security.pki import HashData
from chargepoint.core.security.security_log import SecurityEvent, SecurityLog
from chargepoint.core.settings import Settings
from hal.clock import Clock

log = logging.getLogger(__name__)

#: How often the expiry of the station's certificate is looked at.
EXPIRY_CHECK_S = 3600.0
#: How long after the last request of an unanswered renewal the renewal is asked for again.
RENEWAL_RETRY_S = 86400.0


class Security:
    """Certificates, the security log and the signed-firmware verifier of one station."""

    def __init__(self, settings: Settings, clock: Clock, state_dir: str, identity: str) -> None:
        self.settings = settings
        self.clock = clock
        self.identity = identity
        self.certificates = CertificateStore(state_dir, clock.time)
        self.log = SecurityLog(clock.time)
        self.verifier = SignatureVerifier(self.certificates, self.log)
        #: Called with no argument when the station wants a new certificate (the adapter sends a CSR).
        self.renewal_listeners: list[Callable[[], None]] = []
        self._last_renewal: float | None = None
        #: Set when a certificate for the station's request has been accepted.
        self._signed = asyncio.Event()
        #: The installed CSMS roots as one PEM text, and whether the station has a certificate and
        #: key that belong together: kept here (``refresh``) so the link reads no file on the event loop.
        self.csms_roots = ""
        self.has_own_certificate = False
        #: Installed root certificates of every kind.
        self.root_count = 0
        settings.guards["additional_root_certificate_check"] = _no_additional_check

    async def refresh(self) -> None:
        """Read what the link needs of the certificate files (at start and after every change)."""
        self.csms_roots = await asyncio.to_thread(self.certificates.roots_pem, RootKind.CSMS)
        self.root_count = len(await asyncio.to_thread(self.certificates.installed))
        self.has_own_certificate = await asyncio.to_thread(self.certificates.client_identity) is not None

    # ------------------------------------------------------------ roots
    async def install_root(self, kind: RootKind, pem: str) -> InstallResult:
        limit = self.settings.current.certificate_store_max_length
        result, detail = await asyncio.to_thread(self.certificates.install, kind, pem, limit)
        if result is InstallResult.ACCEPTED:
            log.info("%s certificate installed: %s", kind.value, detail)
            self.log.record(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                            f"{kind.value} installed: {detail}")
            await self.refresh()
        else:
            log.warning("%s certificate not installed: %s", kind.value, detail)
        return result

    async def delete_root(self, wanted: HashData) -> DeleteResult:
        result, detail = await asyncio.to_thread(self.certificates.delete, wanted)
        if result is DeleteResult.ACCEPTED:
            log.info("certificate deleted: %s", detail)
            self.log.record(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS, f"deleted: {detail}")
            await self.refresh()
        else:
            log.info("certificate not deleted: %s", detail)
        return result

    async def pin_manufacturer(self, pem: str, by: str) -> tuple[bool, str]:
        """The owner pins a manufacturer root: from now on only pinned roots verify firmware."""
        pinned, detail = await asyncio.to_thread(self.certificates.pin, pem)
        if pinned:
            log.info("manufacturer root pinned by %s: %s", by, detail)
            self.log.record(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                            f"manufacturer root pinned by {by}: {detail}")
        else:
            log.warning("manufacturer root not pinned: %s", detail)
        return pinned, detail

    async def unpin_manufacturer(self, fingerprint: str, by: str) -> tuple[bool, str]:
        """The owner removes a pinned root (with none left, the installed manufacturer roots count again)."""
        removed, detail = await asyncio.to_thread(self.certificates.unpin, fingerprint)
        if removed:
            log.info("pinned manufacturer root removed by %s: %s", by, detail)
            self.log.record(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                            f"pinned manufacturer root removed by {by}: {detail}")
        return removed, detail

    async def installed_ids(self, kind: RootKind) -> list[HashData]:
        return [i.hash_data() for i in await asyncio.to_thread(self.certificates.installed, kind)]

    # ---------------------------------------------------- station's own
    async def signing_request(self) -> str:
        """A CSR made on the station: CN its identity, O the organization setting."""
        organization = self.settings.current.organization_name
        if not organization:
            log.warning("certificate signing request without an organization: organization_name is empty")
        csr = await asyncio.to_thread(self.certificates.new_signing_request, self.identity, organization)
        self._last_renewal = self.clock.time()
        self._signed.clear()
        log.info("certificate signing request made for CN=%s, O=%s", self.identity, organization or "-")
        return csr

    def signing_wait(self, sent: int) -> float:
        """How long to wait for the certificate after the ``sent``-th request of a series (1: the
        first): ``cert_signing_wait_minimum_s``, doubled for each request before."""
        return self.settings.current.cert_signing_wait_minimum_s * 2 ** (sent - 1)

    def may_repeat_signing(self, sent: int) -> bool:
        """Whether a request follows the ``sent``-th one left without a certificate (the first and
        ``cert_signing_repeat_times`` more)."""
        return sent <= self.settings.current.cert_signing_repeat_times

    async def certificate_within(self, seconds: float) -> bool:
        """Wait (on the injected clock) until a certificate for the last request is accepted, at most
        ``seconds``; whether it was."""
        signed = asyncio.ensure_future(self._signed.wait())
        elapsed = asyncio.ensure_future(self.clock.sleep(seconds))
        try:
            await asyncio.wait({signed, elapsed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            signed.cancel()
            elapsed.cancel()
        return self._signed.is_set()

    async def accept_certificate(self, chain_pem: str, *, check_organization: bool = False) -> bool:
        """The CSMS signed our request: take the chain if it checks, else record why not.

        The leaf must name this station (CN its identity; with ``check_organization``,
        as 2.0.1 asks, O the configured organization when one is configured), be
        no CA and be usable by a TLS client."""
        limit = self.settings.current.certificate_chain_max_bytes
        organization = self.settings.current.organization_name if check_organization else ""
        refusal = await asyncio.to_thread(self.certificates.accept_signed, chain_pem, limit, self.identity,
                                          organization or None)
        if refusal is not None:
            log.warning("station certificate refused: %s", refusal)
            self.log.record(SecurityEvent.INVALID_STATION_CERTIFICATE, refusal)
            return False
        await self.refresh()
        days = await asyncio.to_thread(self.certificates.days_left)
        log.info("station certificate accepted (valid %.0f more days); used from the next connection", days)
        self._last_renewal = None
        self._signed.set()
        return True

    # ------------------------------------------------------------ expiry
    def renewal_due(self, days_left: float | None) -> bool:
        """Whether a signing request should go out now, given the days the certificate has left."""
        if days_left is None or days_left > self.settings.current.certificate_renewal_days:
            return False
        return self._last_renewal is None or self.clock.time() - self._last_renewal >= RENEWAL_RETRY_S

    async def check_expiry(self) -> None:
        days = await asyncio.to_thread(self.certificates.days_left)
        if self.renewal_due(days) and self.renewal_listeners:  # else: at the next check, once connected
            log.info("station certificate expires in %.1f days: asking for a new one", days)
            self._last_renewal = self.clock.time()
            for listener in list(self.renewal_listeners):
                listener()

    async def watch_expiry(self) -> None:
        """Look at the certificate's expiry now and every EXPIRY_CHECK_S, for as long as the station runs."""
        while True:
            await self.check_expiry()
            await self.clock.sleep(EXPIRY_CHECK_S)


def _no_additional_check(value: object) -> str | None:
    return "the additional root certificate check is not supported" if value else None
