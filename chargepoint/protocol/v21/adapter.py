"""OCPP 2.1 adapter: one connected session of the station core spoken in 2.1.

The 2.0.1 adapter (``protocol.v201.adapter.V201Adapter``: boot, heartbeat,
status, transactions, remote control, availability, smart charging,
reservations, triggers, firmware and logs, security, display messages) with
2.1's peer and transaction messages; what 2.1 adds is in its blocks,
the pulls of dynamic limits run as a task of the connection, and a tariff
given with an authorization prices the identifier's next session.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v21 import call, call_result
from ocpp.v21.enums import ResetEnumType, ResetStatusEnumType

from chargepoint.core.events import AuthResult, AuthStatus, IdToken
from chargepoint.protocol.v21 import VERSION
from chargepoint.protocol.v21.device_model import DeviceModel21
from chargepoint.protocol.v21.dynamic import DynamicHandlers, DynamicPuller
from chargepoint.protocol.v21.peer import V21Peer
from chargepoint.protocol.v21.tariff_words import TariffRefused, tariff_of
from chargepoint.protocol.v21.tariffs import TariffHandlers
from chargepoint.protocol.v21.transaction_status import TransactionStatusHandlers
from chargepoint.protocol.v21.tx_events import V21TransactionEvents
from chargepoint.protocol.v201 import translate
from chargepoint.protocol.v201.adapter import V201Adapter
from chargepoint.protocol.v201.smart_charging import SmartChargingHandlers

log = logging.getLogger(__name__)


class V21Adapter(V201Adapter):
    """One connected session of OCPP 2.1."""

    version = VERSION
    peer_class = V21Peer
    transactions_class = V21TransactionEvents
    device_model_class = DeviceModel21
    #: 2.0.1's blocks, smart charging in 2.1's words (dynamic limits), and 2.1's own.
    block_types = (*(b for b in V201Adapter.block_types if b is not SmartChargingHandlers),
                   DynamicHandlers, TariffHandlers, TransactionStatusHandlers)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Set when a dynamic profile to pull was installed (the puller looks again at once).
        self.dynamic_changed = asyncio.Event()
        super().__init__(*args, **kwargs)

    async def run(self) -> None:
        self.spawn(self._pull_dynamic_limits())
        await super().run()

    async def authorize(self, token: IdToken) -> AuthResult:
        """2.0.1's Authorize; a tariff the CSMS gives with an accepted identifier (a driver tariff)
        prices that identifier's next session."""
        try:
            result = await self.call(call.Authorize(id_token=translate.id_token(token)))
        except (TimeoutError, OCPPError) as exc:
            log.warning("Authorize for %s not answered: %s", token, exc or "timeout")
            return AuthResult(AuthStatus.UNKNOWN)
        verdict = translate.auth_result(result.id_token_info)
        if result.tariff and verdict.status is AuthStatus.ACCEPTED:
            try:
                self.station.tariffs.set_driver_tariff(token.value, tariff_of(result.tariff))
            except TariffRefused as refused:
                log.warning("driver tariff %s for %s not used: %s", result.tariff.get("tariff_id"), token,
                            refused)
        return verdict

    def reset(self, kind: str, evse_id: int | None) -> Any:
        """2.0.1's kinds; 2.1's ImmediateAndResume (restart, then take the transactions up again) is
        refused: a reset here ends the transactions it finds running."""
        if kind == ResetEnumType.immediate_and_resume:
            return call_result.Reset(status=ResetStatusEnumType.rejected, status_info={
                "reason_code": "UnsupportedRequest",
                "additional_info": "a reset ends running transactions; use Immediate or OnIdle"})
        return super().reset(kind, evse_id)

    def after_reset(self, kind: str, evse_id: int | None) -> None:
        if kind != ResetEnumType.immediate_and_resume:
            super().after_reset(kind, evse_id)

    async def _pull_dynamic_limits(self) -> None:
        await self.accepted.wait()
        await DynamicPuller(self.services, self.clock, self.call, self.dynamic_changed).run()
