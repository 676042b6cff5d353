"""The ordered queue of transaction messages waiting for the CSMS.

Transaction messages (start, meter samples, stop) are billing data: they are
queued here the moment the station produces them and leave only after the CSMS
has answered, in order, across disconnects. Messages of a transaction whose
start is not yet confirmed carry the station's local id; the adapter rewrites
them with the CSMS's transaction id once it is known (``remote_id``).

This queue lives in memory: it survives network outages, not a restart of the
daemon. The persistent store replaces it behind the same interface.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from chargepoint.events import TransactionEvent


@dataclass(frozen=True)
class Entry:
    seq: int
    event: TransactionEvent


class Outbox:
    """FIFO of transaction events with acknowledgement and id mapping."""

    def __init__(self) -> None:
        self._queue: deque[Entry] = deque()
        self._next_seq = 1
        self._remote_ids: dict[str, int] = {}
        self._changed = asyncio.Event()

    def put(self, event: TransactionEvent) -> Entry:
        entry = Entry(self._next_seq, event)
        self._next_seq += 1
        self._queue.append(entry)
        self._changed.set()
        return entry

    def __len__(self) -> int:
        return len(self._queue)

    def head(self) -> Entry | None:
        return self._queue[0] if self._queue else None

    async def wait_head(self) -> Entry:
        """The oldest entry, waiting for one if the queue is empty."""
        while not self._queue:
            self._changed.clear()
            await self._changed.wait()
        return self._queue[0]

    def ack(self, entry: Entry) -> None:
        """The CSMS answered ``entry``: remove it (it must be the head)."""
        if not self._queue or self._queue[0].seq != entry.seq:
            raise RuntimeError(f"ack of entry {entry.seq} which is not at the head")
        self._queue.popleft()

    def set_remote_id(self, local_id: str, remote_id: int) -> None:
        self._remote_ids[local_id] = remote_id

    def remote_id(self, local_id: str) -> int | None:
        return self._remote_ids.get(local_id)

    def local_id(self, remote_id: int) -> str | None:
        for local, remote in self._remote_ids.items():
            if remote == remote_id:
                return local
        return None

    def forget(self, local_id: str) -> None:
        """Drop the id mapping of a transaction whose messages have all gone."""
        if not any(getattr(e.event, "local_id", None) == local_id for e in self._queue):
            self._remote_ids.pop(local_id, None)
