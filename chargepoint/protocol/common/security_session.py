"""The security senders of one connection, whatever the OCPP version: events out, signing requests out.

Both versions drain the same security log (``core/security/security_log.py``): an
event is marked sent only once the CSMS has answered its notification, and
only one connection (of one version) runs at a time, so an event recorded
under 1.6 and not yet delivered is delivered by the 2.0.1 connection that
follows, and never twice by design (a connection lost between the CALL and
its answer sends it again: at least once, as the whitepaper asks). A version
subclass says how a log entry and a CSR become its CALLs
(``event_request``, ``csr_request``) and whether the CSMS took the CSR
(``csr_accepted``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from ocpp.exceptions import OCPPError

from chargepoint.core.security.security_log import Entry, SecurityEvent
from chargepoint.core.security.services import Security
from chargepoint.protocol.common.block import BlockContext
from chargepoint.protocol.common.peer import RobustPeer

log = logging.getLogger(__name__)

#: Wait before an unanswered security event is sent again.
RETRY_S = 30.0
#: CALLERROR codes that say the CSMS does not take security events at all (a 1.6 CSMS without the
#: security extension): NotImplemented (unknown action) and NotSupported (known, not supported).
NOT_TAKEN = frozenset({"NotImplemented", "NotSupported"})


class SecurityContext(BlockContext, Protocol):
    """A block's context and the connection's peer, whose invalid frames the security log counts."""

    peer: RobustPeer


class SecuritySession:
    """Delivers the security log's unsent events (oldest first) and sends signing requests."""

    def __init__(self, adapter: SecurityContext) -> None:
        self.adapter = adapter
        self._csr_wanted = asyncio.Event()

    # -------------------------------------------------- version's words
    def event_request(self, entry: Entry) -> Any:
        """The version's SecurityEventNotification CALL for one log entry."""
        raise NotImplementedError

    def csr_request(self, csr: str) -> Any:
        """The version's SignCertificate CALL for a CSR made on the station."""
        raise NotImplementedError

    def csr_accepted(self, result: Any) -> bool:
        """Whether the CSMS's answer to SignCertificate accepted the request."""
        raise NotImplementedError

    # ------------------------------------------------------------ running
    def want_certificate(self) -> None:
        """Send a new signing request (from the CSMS's trigger or the expiry watch)."""
        self._csr_wanted.set()

    async def run(self) -> None:
        security: Security | None = self.adapter.services.security
        if security is None:
            await asyncio.Event().wait()  # nothing to send, for as long as the session lasts
            return
        self.adapter.peer.on_invalid = lambda why: security.log.record(SecurityEvent.INVALID_MESSAGES, why)
        security.renewal_listeners.append(self.want_certificate)
        try:
            await asyncio.gather(self._send_events(security), self._send_requests(security))
        finally:
            security.renewal_listeners.remove(self.want_certificate)

    async def _send_events(self, security: Security) -> None:
        """Send the unsent events in order; a CSMS that does not take them is asked once per connection.

        Its refusal leaves the event unsent (a later connection, or a CSMS of the other version,
        may take it) and ends the sending on this connection: no event is offered again to a
        CSMS that said it does not implement them, and none is lost from the log.
        """
        security.log.declined = False
        try:
            await self._send_until_declined(security)
            await asyncio.Event().wait()  # nothing more for this connection (signing requests go on)
        finally:
            security.log.declined = False

    async def _send_until_declined(self, security: Security) -> None:
        while True:
            security.log.recorded.clear()
            retry = False
            for entry in await security.log.unsent():
                request = self.event_request(entry)
                try:
                    await self.adapter.call(request)
                except TimeoutError:
                    retry = True
                    break
                except OCPPError as exc:
                    if exc.code in NOT_TAKEN:
                        security.log.declined = True
                        log.warning("the CSMS does not take SecurityEventNotification (%s): security events "
                                    "stay in the security log and are not sent on this connection", exc.code)
                        return
                    log.warning("SecurityEventNotification %s refused: %s; kept in the security log only",
                                request.type, exc)
                # Answered: the mark must outlive a connection cancelled right now (a reset's
                # shutdown), else the event would be sent again after the restart.
                await asyncio.shield(security.log.mark_sent(entry))
            if retry:
                await self.adapter.clock.sleep(RETRY_S)
                continue
            await security.log.recorded.wait()

    async def _send_requests(self, security: Security) -> None:
        await security.check_expiry()  # a renewal that fell due while offline goes out now
        while True:
            await self._csr_wanted.wait()
            self._csr_wanted.clear()
            await self._request_until_signed(security)

    async def _request_until_signed(self, security: Security) -> None:
        """Signing requests until a certificate comes, as often and as far apart as the core says
        (``Security.signing_wait``); a refusal or a new trigger ends the series."""
        sent = 0
        while True:
            csr = await security.signing_request()
            sent += 1
            try:
                result = await self.adapter.call(self.csr_request(csr))
            except (TimeoutError, OCPPError) as exc:
                log.warning("SignCertificate not answered: %s", exc or "timeout")
            else:
                if not self.csr_accepted(result):
                    log.warning("the CSMS rejected the certificate signing request")
                    return
            wait = security.signing_wait(sent)
            if await security.certificate_within(wait) or self._csr_wanted.is_set():
                return
            if not security.may_repeat_signing(sent):
                log.warning("no certificate after %d signing request(s); none made again until the CSMS "
                            "asks or the renewal falls due", sent)
                return
            log.info("no certificate %.0f s after signing request %d: making a new one", wait, sent)
