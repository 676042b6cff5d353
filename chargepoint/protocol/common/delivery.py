"""The one outbox delivery loop: transaction messages to the CSMS, whatever the version.

Each version gives its words (``DeliveryWords``): the wire form of a queued
event, whether it can be made yet, what the CSMS's answer means. The loop is
the same for all:

- in order, one at a time, each message leaving the queue only after its answer;
- nothing goes out before its wire form is committed (a resend is the first
  send, byte for byte);
- the next message goes out as soon as the current one is answered; that
  answer is written while the next is on the wire, in one write with the wire
  form of the message after it (made then: ``after_send``, in the sending task
  itself), and that message goes out only once the write has committed. So a
  backlog costs one write per message and no wait for it, and a killed daemon
  resends at most two messages (the answered one not yet recorded, the one on
  the wire);
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
from chargepoint.core.storage.outbox import Answered, Entry, Outbox, Sent
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
        #: An answer out of the queue whose record waits for the next message to go out.
        self._unrecorded: Answered | None = None
        #: The commit of the last answer recorded: the next message goes out once it is done.
        self._recording: asyncio.Future[object] | None = None

    async def run(self) -> None:
        """Send queued transaction messages in order until the connection ends."""
        self.outbox.attach_sender(self.words.form, self._made)
        try:
            await self._drain()
        finally:
            self._record_unrecorded()
            self.outbox.detach_sender(self._made)

    async def _drain(self) -> None:
        attempts = 0
        while True:
            entry = await self.outbox.wait_head()
            sent = await self._durable_form(entry)
            if self._recording is not None and not self._recording.done():
                await asyncio.shield(self._recording)  # (shared: a cancel here must not cancel it)
            if sent is None:  # nothing to send in this version: it leaves the queue as answered
                self._record_unrecorded()
                self._answered(entry, None)
                continue
            try:
                result = await self._call(WireCall(sent.action, sent.payload), built_here=True,
                                          after_send=lambda current=entry: self._after_send(current))
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
            finally:
                self._record_unrecorded()  # if the CALL never went out: nothing else will write it
            attempts = 0
            self._answered(entry, remote_id)

    async def _durable_form(self, entry: Entry) -> Sent | None:
        """``entry``'s wire form, committed (made now if it has none in this version's form);
        None: this version sends nothing for it."""
        sent = self.outbox.sent(entry, self.words.form)
        if sent is not None:
            await self.outbox.form_written(entry)
            return sent
        sent = self.words.wire_form(entry)
        if sent is not None:
            await self.outbox.record_sent(entry, sent)
        return sent

    def _answered(self, entry: Entry, remote_id: str | None) -> None:
        """``entry`` leaves the queue. If the next message already has its form, the answer is
        recorded once that one is on the wire (with the form of the one after it); otherwise now,
        and the next message, made with it, waits for that write."""
        head = self.outbox.following() if self.outbox.head() is entry else None
        if head is not None and self.outbox.sent(head, self.words.form) is not None:
            self._unrecorded = self.outbox.take_answered(entry, remote_id)
        else:
            self._recording = self.outbox.acknowledge(entry, remote_id=remote_id)
        if isinstance(entry.event, TransactionStopped):
            self.outbox.forget(entry.event.local_id)  # its messages have all gone

    def _record_unrecorded(self) -> None:
        if self._unrecorded is not None:
            answer, self._unrecorded = self._unrecorded, None
            self._recording = self.outbox.record(answer)

    def _after_send(self, current: Entry) -> None:
        """``current`` is on the wire: record the answer before it, with the wire form of the
        message after it if that can be made now (it is on disk, has no form yet in this
        version's, and nothing it needs can still change)."""
        answer, self._unrecorded = self._unrecorded, None
        ahead: tuple[Entry, Sent] | None = None
        try:
            following = self.outbox.following()
            if (following is not None and self.outbox.sent(following, self.words.form) is None
                    and self.words.can_make(following, current)):
                sent = self.words.wire_form(following, current)
                ahead = (following, sent) if sent is not None else None
        except Exception:  # made again when its turn comes; the CALL out must be awaited
            log.exception("making the next queued message ahead failed")
        if ahead is not None:
            self._recording = self.outbox.fix_ahead(*ahead, answer=answer)
        elif answer is not None:
            self._recording = self.outbox.record(answer)

    def _made(self, head: Entry) -> Sent | None:
        """The outbox's new head as the outbox fixes it (with a put or an acknowledgement), if it
        can be made now."""
        if not self.words.can_make(head, None):
            return None
        return self.words.wire_form(head)
