"""How many live streams (``/api/live``) may be open: in all, per client, and kept for the owner.

Each open page holds a connection and a place in the feed. Without a cap per
client, one client opening every slot locks every other page out; without
slots kept for clients on loopback, a few clients on the network together
could still lock out the owner on the station (or behind an SSH tunnel).
"""

from __future__ import annotations

from collections import Counter

#: Live streams open at once, in all.
MAX_STREAMS = 16
#: Live streams one client address may hold.
MAX_STREAMS_PER_CLIENT = 4
#: Slots only clients on loopback may take: the network shares the others.
OWNER_STREAMS = 4


class StreamSlots:
    """Counts the open streams per client; ``take`` says why one more is refused."""

    def __init__(self, total: int = MAX_STREAMS, per_client: int = MAX_STREAMS_PER_CLIENT,
                 owner: int = OWNER_STREAMS) -> None:
        self.total = total
        self.per_client = per_client
        self.owner = owner
        self._open: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return sum(self._open.values())

    def take(self, client: str, *, loopback: bool) -> str | None:
        """Take a slot for ``client``; None when taken, else why not ("client" or "full")."""
        if self._open[client] >= self.per_client:
            return "client"
        limit = self.total if loopback else self.total - self.owner
        if self.open >= limit:
            return "full"
        self._open[client] += 1
        return None

    def give_back(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]
