"""A firmware update and a log upload asked for by the CSMS, done once for every version.

1.6's SignedUpdateFirmware and 2.0.1's UpdateFirmware, and GetLog in both,
carry the same fields and need the same steps: the services must be set up
(NotSupported otherwise), the signing certificate is checked for the answer
(InvalidCertificate when the station does not trust it), the answer is what
the firmware manager would say now, and after the answer has gone the update
or upload starts, unless the answer refused it. A location the station will
not fetch from is refused for GetLog and reported for an update (the
download fails and says why). Each version's block only words the answers.
"""

from __future__ import annotations

import logging
from typing import Any

from ocpp.exceptions import NotSupportedError

from chargepoint.core.diagnostics import Diagnostics
from chargepoint.core.firmware import FirmwareManager
from chargepoint.core.firmware.transfer import check_url
from chargepoint.protocol.common.block import BlockContext
from chargepoint.protocol.common.requests import firmware_request, log_request

log = logging.getLogger(__name__)

#: The answer to an update whose signing certificate the station does not trust (beside the
#: firmware manager's own: accepted, accepted_canceled, rejected).
INVALID_CERTIFICATE = "invalid_certificate"
#: GetLog's answers: the upload starts (cancelling one under way), or it is refused.
LOG_ACCEPTED, LOG_ACCEPTED_CANCELED, LOG_REJECTED = "accepted", "accepted_canceled", "rejected"


class FirmwareIntake:
    """One connection's firmware updates and log uploads from the CSMS (``action``: the update's name,
    for log lines)."""

    def __init__(self, context: BlockContext, action: str) -> None:
        self.context = context
        self.action = action
        #: The last update was answered InvalidCertificate: its after-answer step does nothing (the
        #: library runs that step right after the answer, before the next frame).
        self._untrusted_signer = False

    def manager(self) -> FirmwareManager:
        manager = self.context.services.firmware
        if manager is None:
            raise NotSupportedError(description="firmware updates are not set up on this station", details={})
        return manager

    def uploads(self) -> Diagnostics:
        uploads = self.context.services.diagnostics
        if uploads is None:
            raise NotSupportedError(description="log uploads are not set up here", details={})
        return uploads

    # -------------------------------------------------------------- update
    async def answer_update(self, request_id: int, firmware: dict[str, Any], retries: int | None,
                            retry_interval: int | None, *, always_signed: bool) -> str:
        """The update's answer: ``INVALID_CERTIFICATE`` or the firmware manager's. ``always_signed``:
        the certificate is checked even when the request names none (1.6's signed update)."""
        manager = self.manager()
        firmware_request(request_id, firmware, retries, retry_interval, self.context.config.firmware)
        self._untrusted_signer = False
        if always_signed or firmware.get("signing_certificate") or firmware.get("signature"):
            security = self.context.services.security
            if security is None:
                raise NotSupportedError(description="signed firmware needs the security services", details={})
            refusal = await security.verifier.check_certificate(firmware.get("signing_certificate"))
            if refusal is not None:
                self._untrusted_signer = True
                log.warning("%s %s refused: %s", self.action, request_id, refusal)
                return INVALID_CERTIFICATE
        return manager.answer()

    def start_update(self, request_id: int, firmware: dict[str, Any], retries: int | None,
                     retry_interval: int | None) -> None:
        """After the answer: start the update unless the answer refused it (the certificate was
        checked for the answer; the verifier checks it again, with the signature)."""
        manager = self.manager()
        if self._untrusted_signer or manager.answer() == "rejected":
            return
        defaults = self.context.config.firmware
        request = firmware_request(request_id, firmware, retries, retry_interval, defaults)
        problem = check_url(request.location)
        if problem is not None:
            log.warning("%s: %s", self.action, problem)
        manager.update(request)

    # -------------------------------------------------------------- GetLog
    def answer_log(self, parameters: dict[str, Any], log_type: str, request_id: int, retries: int | None,
                   retry_interval: int | None) -> tuple[str, str | None, str | None]:
        """GetLog's answer, the file name the upload will have, and why it was refused (if it was)."""
        uploads = self.uploads()
        request = log_request(log_type, request_id, parameters, retries, retry_interval,
                              self.context.config.diagnostics)
        problem = check_url(request.location)
        if problem is not None:
            log.warning("GetLog %s refused: %s", request_id, problem)
            return LOG_REJECTED, None, problem
        status = LOG_ACCEPTED_CANCELED if uploads.state.in_progress else LOG_ACCEPTED
        return status, uploads.next_name(request.kind), None

    def start_log(self, parameters: dict[str, Any], log_type: str, request_id: int, retries: int | None,
                  retry_interval: int | None) -> None:
        request = log_request(log_type, request_id, parameters, retries, retry_interval,
                              self.context.config.diagnostics)
        if check_url(request.location) is None:
            self.uploads().request(request)
