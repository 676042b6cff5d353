"""The ordered queue of transaction messages, and the transaction records it implies.

Transaction messages (start, meter samples, stop) are billing data: they are
queued here the moment the station produces them and leave only after the CSMS
has answered, in order, across disconnects and restarts. Messages of a
transaction whose start is not yet confirmed carry the station's local id; the
adapter rewrites them with the CSMS's transaction id once it is known.

Nothing goes on the wire that is not durable first. A start or stop is
committed to the state database before ``put`` returns (a StartTransaction must
never be lost); a periodic meter sample is written without the station waiting
for it, but ``wait_head`` hands an entry to the sender only once its write has
committed, so the CSMS is never told of energy a crash could take back (and a
power-loss stop, made from the last persisted reading, is never below a sample
the CSMS has seen). An acknowledgement is committed without a flush to the SD
card (WAL, synchronous=NORMAL: it survives the process being killed, not a
power cut) while the next message is on the wire, and before the one after it
goes out: a killed daemon resends at most two messages, the one whose answer it
had not yet recorded and the one then on the wire; after a power cut a few more
may be resent, never lost.

A resend is the message first sent, byte for byte: a message's wire form
(``Sent``: the action and payload text the connected sender made) is committed
in its row before it first goes out, and every later send uses it. Where it can,
that is a write the outbox makes anyway (the put of a message that goes out at
once, the acknowledgement of the one before it); in a backlog the sender fixes
the next message's form while the current one is on the wire (``fix_ahead``),
so the next can go out as soon as the current one is answered.

A write that fails (disk full, file system read-only) fails the store: the
entry is never sent, and the station stops energy (see ``Store.failure``).

The queue is bounded: past ``max_entries`` periodic samples are thinned (the
one closest in time to its predecessor goes first); starts and stops are never
dropped.

Without a CSMS (``standalone``) a transaction is recorded all the same (its row,
its samples as its last persisted reading, its stop in the history, in the same
database transactions and with the same durability) but none of its messages is
queued: there is nobody to send them to, and a CSMS configured later must not
receive transactions it never had a part in. The mark is the transaction's, kept
in its row: a transaction started standalone stays local to the end (also its
power-loss stop after a restart with a CSMS), and one started with a CSMS keeps
its queued messages for that CSMS when the station runs standalone for a while.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from itertools import islice

from chargepoint.core.events import (
    ActivityChanged,
    MeterSample,
    ReadingContext,
    TransactionEvent,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.storage import outbox_db
from chargepoint.core.storage.outbox_codec import Sent, decode, decode_stored, encode, event_time
from chargepoint.core.storage.outbox_db import OpenTransaction
from chargepoint.core.storage.store import Store, StoreError

__all__ = ["Answered", "Entry", "OpenTransaction", "Outbox", "Sent", "decode", "encode", "event_time"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    seq: int
    event: TransactionEvent


@dataclass(frozen=True)
class Answered:
    """A message the CSMS answered, out of the queue, its record not yet written (``Outbox.record``)."""

    seq: int
    local_id: str
    remote_id: str | None
    #: The transaction whose last message this was (its row may go), or None.
    finished: str | None


#: Makes a queued message's wire form for the connected sender (None: it cannot be made yet).
MakeSent = Callable[[Entry], "Sent | None"]


class Outbox:
    """FIFO of transaction events with acknowledgement and id mapping.

    Without a store it lives in memory only (unit tests, tools).
    """

    def __init__(self, store: Store | None = None, max_entries: int = 10_000) -> None:
        self.store = store
        self.max_entries = max_entries
        self._queue: deque[Entry] = deque()
        self._next_seq = 1
        #: local id -> the CSMS's transaction id (1.6 gives its own; strings here).
        self._remote_ids: dict[str, str] = {}
        #: local id -> how many of its messages the CSMS has answered (see ``answered``).
        self._answered: dict[str, int] = {}
        self._changed = asyncio.Event()
        #: Writes of queued entries that may not have committed yet, by sequence number.
        self._writes: dict[int, Future[object]] = {}
        self.thinned = 0
        #: No CSMS: transactions started from now on are recorded but not queued (see above).
        self.standalone = False
        #: Open transactions started standalone (their messages stay local).
        self._local_only: set[str] = set()
        #: Sequence number -> the message's wire form, fixed before its first send (see ``Sent``).
        self._sent: dict[int, Sent] = {}
        #: Sequence number -> the commit of its wire form, where that may still run (see ``form_written``).
        self._form_writes: dict[int, asyncio.Future[object]] = {}
        #: The connected sender's form and maker of wire forms (see ``attach_sender``), or None.
        self._sender: tuple[str, MakeSent] | None = None

    # ------------------------------------------------------------ loading
    async def attach(self, store: Store) -> None:
        """Take over the queue the database holds (after a restart) and persist from now on.

        A database that cannot be read, or a queued message that cannot be
        decoded, is a ``StoreError`` naming the file (and the message): the
        station must not start without billing data it was holding, nor stop
        with a traceback. Nothing is taken over unless all of it could be read.
        """
        if self._queue:
            raise RuntimeError("attach the store before anything is queued")
        try:
            rows, ids = await store.call(outbox_db.load_rows, store)
            answered = await store.call(outbox_db.load_answered, store)
            stored_seq = await store.call(outbox_db.next_seq, store)
            self._local_only = await store.call(outbox_db.local_only, store)
        except (sqlite3.DatabaseError, StoreError) as exc:
            detail = str(exc).removeprefix(f"{store.path}: ")
            raise StoreError(f"{store.path}: cannot read the queued transaction messages: {detail}") from exc
        decoded = [_decode_row(store, seq, text) for seq, text in rows]
        queue = deque(entry for entry, _ in decoded)
        self._sent = {entry.seq: sent for entry, sent in decoded if sent is not None}
        self._queue = queue
        self._remote_ids = ids
        self._answered = answered
        self._next_seq = max(queue[-1].seq + 1 if queue else 1, stored_seq)
        self.store = store
        if self._queue:
            log.info("%d transaction message(s) waiting from before the restart", len(self._queue))
            self._changed.set()

    async def open_transactions(self) -> list[OpenTransaction]:
        if self.store is None:
            return []
        return await self.store.call(outbox_db.open_transactions, self.store)

    # ------------------------------------------------------------- queue
    def __len__(self) -> int:
        return len(self._queue)

    def entries(self, limit: int | None = None) -> tuple[Entry, ...]:
        """The oldest ``limit`` waiting entries (all: None), oldest first; a snapshot."""
        return tuple(islice(self._queue, limit))

    def head(self) -> Entry | None:
        return self._queue[0] if self._queue else None

    def following(self) -> Entry | None:
        """The entry after the head, if it is already on disk (a sender may prepare it early)."""
        if len(self._queue) < 2:
            return None
        entry = self._queue[1]
        write = self._writes.get(entry.seq)
        if write is not None and not (write.done() and write.exception() is None):
            return None
        return entry

    def oldest_age(self, now: float) -> float | None:
        """Seconds since the oldest queued message was made."""
        if not self._queue:
            return None
        return now - event_time(self._queue[0].event)

    async def wait_head(self) -> Entry:
        """The oldest entry once it is on disk, waiting for one if the queue is empty.

        If its write failed the store has failed: this never returns (nothing that
        is not durable goes out), and the station is already stopping energy.
        """
        while True:
            while not self._queue:
                self._changed.clear()
                await self._changed.wait()
            entry = self._queue[0]
            write = self._writes.pop(entry.seq, None)
            if write is not None and not (write.done() and write.exception() is None):
                try:
                    await asyncio.wrap_future(write)  # (a committed write costs no loop turn)
                except StoreError:
                    await asyncio.Event().wait()  # the daemon stops; never send it
            if self._queue and self._queue[0] is entry:
                return entry

    def is_local(self, local_id: str) -> bool:
        """Whether the transaction was started standalone (its messages are never queued)."""
        return local_id in self._local_only

    def put_activity(self, event: ActivityChanged) -> None:
        """Queue a running transaction's new activity now, in the order of the calls (its write is
        not waited for, like a sample's). Nothing for a transaction kept locally: no CSMS hears it."""
        if event.local_id in self._local_only:
            return
        entry = Entry(self._next_seq, event)
        self._next_seq += 1
        self._append(entry)

    async def put(self, event: TransactionEvent) -> Entry:
        """Queue ``event``; starts and stops are on disk when this returns."""
        entry = Entry(self._next_seq, event)
        self._next_seq += 1
        if (self.standalone and isinstance(event, TransactionStarted)) or event.local_id in self._local_only:
            await self._record_locally(entry)
            return entry
        future = self._append(entry)
        if future is not None and not isinstance(event, MeterSample | ActivityChanged):
            await asyncio.wrap_future(future)  # StoreError: the caller must not go on
            self._writes.pop(entry.seq, None)
        return entry

    def _append(self, entry: Entry) -> concurrent.futures.Future[object] | None:
        """Into the queue at once (the order of the calls), and to the store's worker."""
        thin = self._thin_one() if len(self._queue) >= self.max_entries else None
        self._queue.append(entry)
        self._changed.set()
        if thin is not None:
            self._writes.pop(thin, None)
            self._sent.pop(thin, None)
            self._form_writes.pop(thin, None)
        sent = self._make_sent(entry) if len(self._queue) == 1 else None  # the head: it goes out next
        if self.store is None:
            return None
        future = self.store.submit(outbox_db.write_put, self.store, entry.seq, entry.event, thin, sent)
        self._writes[entry.seq] = future
        return future

    async def _record_locally(self, entry: Entry) -> None:
        """A standalone transaction's event: recorded in its row (and the history), not queued."""
        event = entry.event
        if isinstance(event, TransactionStarted):
            self._local_only.add(event.local_id)
        elif isinstance(event, TransactionStopped):
            self._local_only.discard(event.local_id)
        if self.store is None:
            return
        future = self.store.submit(outbox_db.write_local, self.store, event)
        if not isinstance(event, MeterSample):
            await asyncio.wrap_future(future)  # StoreError: the caller must not go on

    def _thin_one(self) -> int | None:
        """Drop the periodic sample closest in time to the sample before it."""
        best: tuple[float, int] | None = None
        previous: dict[str, float] = {}
        for index, entry in enumerate(self._queue):
            event = entry.event
            if not isinstance(event, MeterSample) or index == 0:
                continue
            if event.context not in (ReadingContext.PERIODIC, ReadingContext.CLOCK):
                continue
            at = event.reading.timestamp
            gap = at - previous.get(event.local_id, float("-inf"))
            previous[event.local_id] = at
            if best is None or gap < best[0]:
                best = (gap, index)
        if best is None:
            return None  # only starts and stops: never dropped, the queue grows
        dropped = self._queue[best[1]]
        del self._queue[best[1]]
        self.thinned += 1
        return dropped.seq

    async def ack(self, entry: Entry, remote_id: str | None = None) -> None:
        """The CSMS answered ``entry`` (the head); for a start, with its transaction id."""
        await self.acknowledge(entry, remote_id)

    def acknowledge(self, entry: Entry, remote_id: str | None = None) -> asyncio.Future[object]:
        """``ack`` in two halves: the entry leaves the queue now; the returned future is its commit,
        which also fixes the new head's wire form if it had none (the head waits for it)."""
        answer = self.take_answered(entry, remote_id)
        head = self._queue[0] if self._queue else None
        sent = self._make_sent(head) if head is not None else None
        return self.record(answer, (head, sent) if head is not None and sent is not None else None)

    def take_answered(self, entry: Entry, remote_id: str | None = None) -> Answered:
        """The CSMS answered ``entry`` (the head): it leaves the queue now; ``record`` writes that.

        A sender may write the answer with the wire form of the message after next
        (``fix_ahead``), while the next one is on the wire: one write per message, and
        at most one answered message is ever not yet recorded, so a killed daemon
        resends at most two (that one and the one on the wire).
        """
        if not self._queue or self._queue[0].seq != entry.seq:
            raise RuntimeError(f"ack of entry {entry.seq} which is not at the head")
        self._queue.popleft()
        event = entry.event
        self._answered[event.local_id] = self._answered.get(event.local_id, 0) + 1
        if isinstance(event, TransactionStarted) and remote_id is not None:
            self._remote_ids[event.local_id] = remote_id
        self._sent.pop(entry.seq, None)
        self._form_writes.pop(entry.seq, None)
        finished = event.local_id if isinstance(event, TransactionStopped) else None
        return Answered(entry.seq, event.local_id, remote_id, finished)

    def record(self, answer: Answered, ahead: tuple[Entry, Sent] | None = None) -> asyncio.Future[object]:
        """Write ``answer`` (and ``ahead``: a queued message's wire form, fixed in the same write);
        the returned future is the commit. If the write fails it never completes (see ``_settled``)."""
        if ahead is not None:
            self._sent[ahead[0].seq] = ahead[1]
        if self.store is None:
            done: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done
        following = (ahead[0].seq, ahead[1]) if ahead is not None else None
        write = self.store.submit(outbox_db.write_ack, self.store, answer.seq, answer.local_id,
                                  answer.remote_id, answer.finished, following)
        committed = _settled(write, f"the answer to transaction message {answer.seq} was not recorded "
                                    "(%s): the message goes again after the restart")
        if following is not None:
            self._form_writes[following[0]] = committed
        return committed

    # ---------------------------------------------------------- wire forms
    def attach_sender(self, form: str, make: MakeSent) -> None:
        """The connected sender makes messages in ``form`` with ``make`` (None: not yet possible).

        The outbox then fixes a message's wire form in a write it makes anyway: with the
        put of a message that goes out at once (the queue was empty), with the
        acknowledgement of the message before it otherwise. A head from before the
        connection costs a write of its own (``record_sent``), and so does a message the
        sender makes while the one before it is on the wire (``fix_ahead``).
        """
        self._sender = (form, make)

    def detach_sender(self, make: MakeSent) -> None:
        """The sender's connection ended: messages queued from now on wait for the next one's form."""
        if self._sender is not None and self._sender[1] == make:  # (a bound method: equal, not identical)
            self._sender = None

    def sent(self, entry: Entry, form: str) -> Sent | None:
        """``entry``'s wire form if it has one in ``form``: what every send of it must be."""
        sent = self._sent.get(entry.seq)
        return sent if sent is not None and sent.form == form else None

    def fix_ahead(self, entry: Entry, sent: Sent, answer: Answered | None = None) -> asyncio.Future[object]:
        """Fix ``entry``'s wire form now, while the message before it is on the wire, in the write
        of ``answer`` (the one before that) if there is one, else in a write of its own (the first
        message of a backlog); ``form_written`` waits for it. Returns the write's commit."""
        if answer is not None:
            return self.record(answer, (entry, sent))
        self._sent[entry.seq] = sent
        committed: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.store is None:
            committed.set_result(None)
            return committed
        write = self.store.submit(outbox_db.write_sent, self.store, entry.seq, sent)
        line = f"the wire form of transaction message {entry.seq} was not recorded (%s): it is not sent"
        committed = self._form_writes[entry.seq] = _settled(write, line)
        return committed

    async def form_written(self, entry: Entry) -> None:
        """Return once ``entry``'s wire form is on disk (if its write fails, never: nothing that is
        not durable goes out, and the store's failure stops the station)."""
        committing = self._form_writes.get(entry.seq)
        if committing is None:
            return
        if not committing.done():
            await asyncio.shield(committing)  # a sender cancelled meanwhile leaves it for the next one
        self._form_writes.pop(entry.seq, None)

    async def record_sent(self, entry: Entry, sent: Sent) -> None:
        """Fix ``entry``'s wire form before its first send; on disk when this returns (as durable
        as an acknowledgement). If the write fails this never returns, like ``wait_head``."""
        self._sent[entry.seq] = sent
        if self.store is not None:
            write = self.store.submit(outbox_db.write_sent, self.store, entry.seq, sent)
            await _settled(write, f"the wire form of transaction message {entry.seq} was not recorded "
                                  "(%s): it is not sent")

    def _make_sent(self, head: Entry) -> Sent | None:
        """The new head's wire form from the connected sender, unless it has one in its form."""
        if self._sender is None or self.sent(head, self._sender[0]) is not None:
            return None
        try:
            sent = self._sender[1](head)
        except Exception:  # a bug in a translation: the message is made again when it goes out
            log.exception("making transaction message %d ahead failed", head.seq)
            return None
        if sent is not None:
            self._sent[head.seq] = sent
        return sent

    # ---------------------------------------------------------------- ids
    def answered(self, local_id: str) -> int:
        """How many messages of a transaction the CSMS has answered so far (kept across restarts):
        a version that numbers a transaction's messages gives the next one this number."""
        return self._answered.get(local_id, 0)

    def remote_id(self, local_id: str) -> str | None:
        return self._remote_ids.get(local_id)

    def local_id(self, remote_id: str) -> str | None:
        for local, remote in self._remote_ids.items():
            if remote == remote_id:
                return local
        return None

    def forget(self, local_id: str) -> None:
        """Drop the id mapping of a transaction whose messages have all gone."""
        if not any(e.event.local_id == local_id for e in self._queue):
            self._remote_ids.pop(local_id, None)
            self._answered.pop(local_id, None)


def _decode_row(store: Store, seq: int, text: str) -> tuple[Entry, Sent | None]:
    """One queued message as stored (and its wire form); a damaged one is a ``StoreError`` that names it."""
    try:
        event, sent = decode_stored(text)
        return Entry(seq, event), sent
    except (ValueError, KeyError, TypeError, AssertionError) as exc:
        raise StoreError(f"{store.path}: queued transaction message {seq} cannot be decoded "
                         f"({type(exc).__name__}: {exc}); the state database is damaged") from exc


def _settled(write: concurrent.futures.Future[object], line: str) -> asyncio.Future[object]:
    """A write's commit as a future of the loop that completes only if the write committed.

    A failed write is the store's failure, reported and acted on by the store's
    listeners (energy stops, the daemon exits): here it is one line (``line``,
    with ``%s`` for the reason), and the future stays pending, so a sender awaiting it sends nothing more, as
    ``wait_head`` does. The write's exception is always retrieved: a sender
    cancelled before it awaited the commit leaves no "exception was never
    retrieved" traceback behind.
    """
    done: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    def settle(result: asyncio.Future[object]) -> None:
        if result.cancelled():
            return
        error = result.exception()
        if error is None:
            if not done.done():
                done.set_result(None)
        else:
            log.warning(line, str(error).splitlines()[0][:200])

    asyncio.wrap_future(write).add_done_callback(settle)
    return done
