"""The outbox's neutral transaction events as 1.6 StartTransaction, MeterValues and StopTransaction.

A start becomes StartTransaction; the CSMS answers with its integer
transaction id, which the outbox keeps (as text) and every later message of
the transaction carries, also those queued before the answer. A meter sample
becomes MeterValues, a stop StopTransaction with the transaction's samples
(StopTxnSampledData / StopTxnAlignedData). A change of activity is not
queued in 1.6: StatusNotification says it. meterStart and meterStop are whole
Wh by the station's rule (``transactions.whole_wh``).

Each message is made once, before it is first sent (``Outbox.sent``): a resend
after a lost connection or a restart is the same text, byte for byte, even if
a setting it was made from has changed meanwhile.

Delivery: in order, one at a time, each leaving the queue only after its
answer; a CALLERROR is retried ``tx_message_attempts`` times
(TransactionMessageAttempts), ``tx_message_retry_interval_s`` apart
(TransactionMessageRetryInterval) times the attempt, then dropped; an
unanswered message is kept and sent again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ocpp.exceptions import OCPPError
from ocpp.v16 import call

from chargepoint.core.events import (
    ActivityChanged,
    MeterSample,
    ReadingContext,
    TransactionAuthorized,
    TransactionEvent,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.outbox import Entry, Outbox, Sent
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.transactions import whole_wh
from chargepoint.protocol.common.peer import WireCall, wire_call
from chargepoint.protocol.common.timefmt import iso_utc
from chargepoint.protocol.v16 import translate
from hal.clock import Clock

log = logging.getLogger(__name__)

#: The wire form this module makes (``Sent.form``).
FORM = "ocpp1.6"

#: The adapter's CALL: ``call(request, built_here=True, after_send=...)``.
Caller = Callable[..., Awaitable[Any]]


class TransactionMessages:
    """Drains the outbox as 1.6 transaction messages on one connection."""

    def __init__(self, station: Station, outbox: Outbox, settings: Settings, clock: Clock,
                 call_built: Caller, spawn: Callable[[Awaitable[Any]], None]) -> None:
        self.station = station
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self._call = call_built
        #: Runs follow-up work as a task of the connection (cancelled with it).
        self._spawn = spawn
        #: The next message, made by ``after_send`` while the current one is on the wire.
        self._ready: tuple[Entry, Sent | None] | None = None

    async def drain(self) -> None:
        """Send queued transaction messages in order; each leaves after its answer.

        Each answer is committed before the next message goes out (see
        ``Outbox.acknowledge``), so a killed daemon resends at most one; the
        next message's wire form is fixed in that same commit. To keep the rate
        of a backlog, the next message is made while the current one is on the
        wire (``after_send``, in the sending task itself: a task per message
        cost the drain two turns of the event loop each), and the commit
        overlaps with fetching it.
        """
        self.outbox.attach_sender(FORM, self._made)
        try:
            await self._drain()
        finally:
            self.outbox.detach_sender(self._made)

    async def _drain(self) -> None:
        attempts = 0
        committing: asyncio.Future[object] | None = None

        def prepare() -> None:
            try:
                self._ready = self._prepare_following()
            except Exception:  # made again when its turn comes; the CALL out must be awaited
                log.exception("making the next queued message ahead failed")

        while True:
            entry = await self.outbox.wait_head()
            if committing is not None:
                await committing
                committing = None
            sent = self.outbox.sent(entry, FORM)
            if sent is None:
                sent = self.wire_form(entry)
                if sent is None:
                    committing = self.outbox.acknowledge(entry)
                    continue
                await self.outbox.record_sent(entry, sent)
            self._ready = None
            try:
                result = await self._call(WireCall(sent.action, sent.payload), built_here=True,
                                          after_send=prepare)
                remote_id = self._on_result(entry, result)
            except TimeoutError:
                # Unknown whether the CSMS processed it: keep it and try again.
                await self.clock.sleep(self.settings.integer("tx_message_retry_interval_s"))
                continue
            except (OCPPError, TypeError, KeyError, ValueError) as exc:
                # A CALLERROR, or a CALLRESULT that does not say what it must.
                attempts += 1
                limit = self.settings.integer("tx_message_attempts")
                if attempts < limit:
                    log.warning("%s refused (%s); attempt %d of %d", sent.action, exc, attempts, limit)
                    retry = self.settings.integer("tx_message_retry_interval_s")
                    await self.clock.sleep(retry * attempts)
                    continue
                log.error("%s refused %d times; dropped: %s", sent.action, attempts, exc)
                committing = self.outbox.acknowledge(entry)
                attempts = 0
                continue
            attempts = 0
            committing = self.outbox.acknowledge(entry, remote_id=remote_id)

    def _made(self, head: Entry) -> Sent | None:
        """The outbox's new head as the outbox fixes it: made ahead if it was, else now, if it can be."""
        ready, self._ready = self._ready, None
        if ready is not None and ready[0] is head and ready[1] is not None:
            return ready[1]
        return self._made_now(head)

    def _prepare_following(self) -> tuple[Entry, Sent | None] | None:
        """The next message, made ahead: only if nothing it needs can still change
        (its write has committed, its transaction id is known)."""
        following = self.outbox.following()
        if following is None:
            return None
        return following, self._made_now(following)

    def _made_now(self, entry: Entry) -> Sent | None:
        """``entry``'s wire form, or None while its transaction id is unknown (or it has none)."""
        event = entry.event
        if not isinstance(event, TransactionStarted) and self.outbox.remote_id(event.local_id) is None:
            return None
        return self.wire_form(entry)

    def wire_form(self, entry: Entry) -> Sent | None:
        """``entry`` as the text its every send carries; None: nothing to send for it."""
        request = self.translate(entry)
        if request is None:
            return None
        wire = wire_call(request)
        return Sent(FORM, wire.action, wire.payload)


    def translate(self, entry: Entry) -> Any | None:
        event: TransactionEvent = entry.event
        if isinstance(event, TransactionStarted):
            # 1.6 begins transactions with an identifier (its adapter fixes the start points); one
            # begun by the EV alone under another version and delivered here after a change of
            # version is told with an empty idTag, its identifier being unknown at its start.
            return call.StartTransaction(
                connector_id=event.evse_id,
                id_tag=event.token.value if event.token else "",
                meter_start=whole_wh(event.meter_start_wh),
                timestamp=iso_utc(event.timestamp),
                reservation_id=event.reservation_id,
            )
        if isinstance(event, ActivityChanged | TransactionAuthorized):
            return None  # 1.6 says it in StatusNotification (not queued), or has no such message
        remote_id = self.outbox.remote_id(event.local_id)
        if remote_id is None:
            log.error("no CSMS transaction id for %s; dropping %s", event.local_id, type(event).__name__)
            return None
        transaction_id = int(remote_id)
        if isinstance(event, MeterSample):
            setting = "aligned_measurands" if event.context == ReadingContext.CLOCK else "sampled_measurands"
            return call.MeterValues(
                connector_id=event.evse_id,
                transaction_id=transaction_id,
                meter_value=[translate.meter_value(event, self.settings.csl(setting))],
            )
        assert isinstance(event, TransactionStopped)
        return call.StopTransaction(
            meter_stop=whole_wh(event.meter_stop_wh),  # the station's rule for both ends
            timestamp=iso_utc(event.timestamp),
            transaction_id=transaction_id,
            reason=translate.stop_reason(event.reason).value,
            id_tag=event.token.value if event.token else None,
            transaction_data=self._transaction_data(event.samples) or None,
        )

    def _transaction_data(self, samples: tuple[MeterSample, ...]) -> list[dict[str, Any]]:
        """StopTxnSampledData for sampled readings, StopTxnAlignedData for clock-aligned ones."""
        sampled = self.settings.csl("stop_tx_sampled_measurands")
        aligned = self.settings.csl("stop_tx_aligned_measurands")
        data = []
        for sample in samples:
            clock = sample.context == ReadingContext.CLOCK
            value = translate.meter_value(sample, aligned if clock else sampled)
            if value["sampledValue"]:
                data.append(value)
        return data

    def _on_result(self, entry: Entry, result: Any) -> str | None:
        """Act on the CSMS's answer; returns the transaction id a start was given."""
        event = entry.event
        if isinstance(event, TransactionStarted):
            transaction_id, info = _integer(result.transaction_id), translate.auth_result(result.id_tag_info)
            if event.token is not None:
                self._spawn(self.station.authorization.remember(event.token.value, info))
            log.info("transaction %s is %d at the CSMS", event.local_id, transaction_id)
            self.station.transaction_authorized(event.local_id, info)
            return str(transaction_id)
        if isinstance(event, TransactionStopped):
            self.outbox.forget(event.local_id)
            if event.token and isinstance(result.id_tag_info, dict):
                self._spawn(self.station.authorization.remember(
                    event.token.value, translate.auth_result(result.id_tag_info)))
        return None


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value
