"""The one outbox delivery loop: transaction messages to the CSMS, whatever the version.

Each version gives its words (``DeliveryWords``): the wire form of a queued
event, whether it can be made yet, what the CSMS's answer means. The loop is
the same for all:

- in order, one at a time, each message leaving the queue only after its answer;
- each answer is committed before the next message goes out (see
  ``Outbox.acknowledge``), so a killed daemon resends at most one; the next
  message's wire form is fixed in that same commit;
- to keep the rate of a backlog, the next message is made while the current
  one is on the wire (``after_send``, in the sending task itself: a task per
  message would cost two turns of the event loop each), and the commit
  overlaps with fetching it;
- a CALLERROR (or an answer that does not say what it must) is retried
  ``tx_message_attempts`` times, ``tx_message_retry_interval_s`` times the
  attempt apart, then dropped; an unanswered message is kept and sent again,
  the same text byte for byte.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from ocpp.exceptions import OCPPError

from chargepoint.core.events import TransactionStopped
from chargepoint.core.settings import Settings
from chargepoint.core.storage.outbox import Entry, Outbox, Sent
from chargepoint.protocol.common.peer import WireCall
from hal.clock import Clock

log = logging.getLogger(__name__)

#: The session's CALL: ``call(request, built_here=True, after_send=...)``.
Caller = Callable[..., Awaitable[Any]]


class DeliveryWords(Protocol):
    """A version's transaction messages."""

    #: The wire form made (``Sent.form``): a message made in another form is made again.
    form: str

    def can_make(self, entry: Entry, in_flight: Entry | None) -> bool:
        """Whether ``entry``'s wire form can be made now, ``in_flight`` (if any) still unanswered."""
        ...

    def wire_form(self, entry: Entry, in_flight: Entry | None = None) -> Sent | None:
        """``entry`` as the text its every send carries, made as it will be once ``in_flight``
        (if any) is answered; None: this version sends nothing for it."""
        ...

    def on_result(self, entry: Entry, result: Any) -> str | None:
        """Act on the CSMS's answer; for a start, the transaction id the outbox keeps."""
        ...

    def label(self, sent: Sent) -> str:
        """The message, for a log line."""
        ...


class Delivery:
    """Drains the outbox in one version's words on one connection."""

    def __init__(self, outbox: Outbox, settings: Settings, clock: Clock, words: DeliveryWords,
                 call: Caller) -> None:
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.words = words
        self._call = call
        #: The next message, made by ``after_send`` while the current one is on the wire.
        self._ready: tuple[Entry, Sent | None] | None = None

    async def run(self) -> None:
        """Send queued transaction messages in order until the connection ends."""
        self.outbox.attach_sender(self.words.form, self._made)
        try:
            await self._drain()
        finally:
            self.outbox.detach_sender(self._made)

    async def _drain(self) -> None:
        attempts = 0
        committing: asyncio.Future[object] | None = None
        while True:
            entry = await self.outbox.wait_head()
            if committing is not None:
                await committing
                committing = None
            sent = self.outbox.sent(entry, self.words.form)
            if sent is None:
                sent = self.words.wire_form(entry)
                if sent is None:
                    committing = self._acknowledge(entry)
                    continue
                await self.outbox.record_sent(entry, sent)
            self._ready = None
            try:
                result = await self._call(WireCall(sent.action, sent.payload), built_here=True,
                                          after_send=lambda current=entry: self._prepare_following(current))
                remote_id = self.words.on_result(entry, result)
            except TimeoutError:
                # Unknown whether the CSMS processed it: keep it (same text) and try again.
                await self.clock.sleep(self.settings.current.tx_message_retry_interval_s)
                continue
            except (OCPPError, TypeError, KeyError, ValueError) as exc:
                # A CALLERROR, or a CALLRESULT that does not say what it must.
                attempts += 1
                limit = self.settings.current.tx_message_attempts
                if attempts < limit:
                    log.warning("%s refused (%s); attempt %d of %d", self.words.label(sent), exc, attempts,
                                limit)
                    await self.clock.sleep(self.settings.current.tx_message_retry_interval_s * attempts)
                    continue
                log.error("%s refused %d times; dropped: %s", self.words.label(sent), attempts, exc)
                remote_id = None
            attempts = 0
            committing = self._acknowledge(entry, remote_id)

    def _acknowledge(self, entry: Entry, remote_id: str | None = None) -> asyncio.Future[object]:
        committing = self.outbox.acknowledge(entry, remote_id=remote_id)
        if isinstance(entry.event, TransactionStopped):
            self.outbox.forget(entry.event.local_id)  # its messages have all gone
        return committing

    def _prepare_following(self, current: Entry) -> None:
        """Make the message after ``current`` while ``current`` is on the wire: only if nothing
        it needs can still change (its write has committed, the version can make it yet)."""
        try:
            following = self.outbox.following()
            if following is None or not self.words.can_make(following, current):
                self._ready = None
                return
            self._ready = following, self.words.wire_form(following, current)
        except Exception:  # made again when its turn comes; the CALL out must be awaited
            self._ready = None
            log.exception("making the next queued message ahead failed")

    def _made(self, head: Entry) -> Sent | None:
        """The outbox's new head as the outbox fixes it: made ahead if it was, else now, if it can be."""
        ready, self._ready = self._ready, None
        if ready is not None and ready[0] is head and ready[1] is not None:
            return ready[1]
        if not self.words.can_make(head, None):
            return None
        return self.words.wire_form(head)
