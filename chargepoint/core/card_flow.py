"""What an identifier presented at the station does, and what the CSMS's word on one does.

A tap ends its holder's session (or, with only the EV's departure as the stop
point, only the energy: see ``tx_points.py``), names the driver of a transaction
that began with the EV alone, or begins a session. These are the station's
decisions (``station.py`` owns the connectors); they live here because they are
the one place where an identifier meets the sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any, Protocol

from chargepoint.core.connector import ConnectorState
from chargepoint.core.events import AuthResult, AuthStatus, IdToken, StopReason
from chargepoint.core.reservations import Reservations
from chargepoint.core.transactions import TransactionRecorder

log = logging.getLogger(__name__)


class Station(Protocol):
    """What of the station (``station.Station``) the flow uses."""

    connectors: dict[int, ConnectorState]
    reservations: Reservations
    transactions: TransactionRecorder

    def free_connector(self, prefer_plugged: bool, token: IdToken | None = None,
                       group_id: str | None = None) -> ConnectorState | None: ...

    def begin_session(self, c: ConnectorState, token: IdToken, group_id: str | None = None,
                      remote_start_id: int | None = None) -> None: ...

    async def authorize(self, token: IdToken) -> AuthResult: ...

    async def stop_transaction(self, evse_id: int, reason: StopReason,
                               token: IdToken | None = None) -> bool: ...

    def report(self, c: ConnectorState) -> None: ...

    def spawn(self, coro: Awaitable[None]) -> Any: ...


class CardFlow:
    """The station's answers to identifiers (its reader, the CLI, the CSMS's verdicts)."""

    def __init__(self, station: Station) -> None:
        self.station = station

    async def presented(self, token: IdToken) -> AuthStatus | None:
        """A card was tapped on the reader: stop its session, name a waiting transaction's driver,
        or start a session.

        Returns the authorization result when the card was asked about, or None if the tap
        ended (or cancelled) a session or there was nothing to do.
        """
        s = self.station
        log.info("card %s presented", token)
        for c in s.connectors.values():
            if c.session is not None and token.same_holder(c.session.token):
                await self._ends_own_session(c, token)
                return None
        grouped = [c for c in s.connectors.values()
                   if c.transaction is not None and c.session is not None and c.session.group_id]
        waiting = self.waiting_for_driver()
        target = s.free_connector(prefer_plugged=True, token=token)
        if target is None and waiting is None and not grouped and not s.reservations.all():
            log.info("card %s: no free connector", token)
            return None
        result = await s.authorize(token)
        if result.status == AuthStatus.ACCEPTED and result.group_id:
            for c in grouped:  # a card of the same group may end the session (1.6 section 3.5.2)
                if c.session is not None and c.session.group_id == result.group_id and c.transaction:
                    log.info("card %s: same group as connector %d's session: stopping it", token, c.id)
                    await s.stop_transaction(c.id, StopReason.LOCAL, token=token)
                    return None
        if result.status != AuthStatus.ACCEPTED:
            log.info("card %s not accepted: %s", token, result.status.value)
            return result.status
        waiting = self.waiting_for_driver()
        if waiting is not None:  # the EV began a transaction: this is its driver
            await s.transactions.authorized(waiting, token, result.group_id)
            return result.status
        target = s.free_connector(prefer_plugged=True, token=token, group_id=result.group_id)
        if target is None:  # none left free while we asked, or all held for others
            log.info("card %s: no free connector", token)
            return None
        s.begin_session(target, token, result.group_id)
        return result.status

    async def _ends_own_session(self, c: ConnectorState, token: IdToken) -> None:
        """The holder tapped again: the transaction ends (or only its energy, when the EV's
        departure is the only stop point); a session still waiting for an EV is cancelled."""
        s = self.station
        if c.transaction is None:
            c.session = None  # second tap before plugging in cancels
            s.report(c)
        elif s.transactions.points.ends_at_stop_presented():
            await s.stop_transaction(c.id, StopReason.LOCAL, token=token)
        else:
            await s.transactions.deauthorized(c, token)

    def waiting_for_driver(self, evse_id: int | None = None) -> ConnectorState | None:
        """A connector (``evse_id``, or any) whose transaction began with the EV alone and has no
        driver yet."""
        return next((c for c in self.station.connectors.values() if evse_id in (None, c.id)
                     and c.session is not None and c.session.token is None and not c.session.deauthorized
                     and c.transaction is not None
                     and not c.transaction.stopping), None)

    def transaction_authorized(self, local_id: str, result: AuthResult, stop_if_refused: bool) -> None:
        """The CSMS's word on the identifier of a running transaction (its start's answer).

        Refused: the transaction ends (deauthorized), or, when the operator wants it
        kept (``stop_tx_on_invalid_id`` false), it stays open and energy stops (after
        ``max_energy_on_invalid_id_wh``). Its group, when given, lets a card of the same
        group end it.
        """
        s = self.station
        for c in s.connectors.values():
            tx = c.transaction
            if tx is None or tx.local_id != local_id or tx.stopping or c.session is None:
                continue
            if result.group_id:
                c.session.group_id = result.group_id
            if result.status == AuthStatus.ACCEPTED:
                return
            if stop_if_refused:
                log.info("connector %d: id %s %s by the CSMS, stopping", c.id, tx.token, result.status.value)
                s.spawn(s.stop_transaction(c.id, StopReason.DEAUTHORIZED))
            else:
                s.transactions.refused_but_kept(c, tx)
