"""The dashboard's live data: one snapshot a second, shared by every open page.

A single task builds the snapshot from the station service (status, recent
events, the session history now and then) and hands the same encoded bytes
to each subscriber, so ten open pages cost what one does. Each subscriber has
a queue of one: a page that reads slowly gets the newest snapshot when it is
ready and misses the ones in between, so no client can make the daemon hold
more than one snapshot for it.

The chart of the running session is sampled here too (power and current per
phase, one point per interval) and kept per connector for the session that
runs; when a session outgrows ``CHART_POINTS`` every other point is dropped
and sampling slows to half, so a whole session always fits.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from chargepoint.control.service import StationService
from chargepoint.web import words

log = logging.getLogger(__name__)

#: Most chart points kept per connector.
CHART_POINTS = 600
#: Refresh the session history every this many snapshots (it is a database read).
SESSIONS_EVERY = 10
SESSIONS_SHOWN = 10
EVENTS_SHOWN = 20
#: Log events read to find EVENTS_SHOWN worth showing.
EVENTS_READ = 80


@dataclass
class Chart:
    """Power (W) and currents (A) of one connector's running session."""

    local_id: str | None = None
    stride: int = 1
    ticks: int = 0
    points: list[list[Any]] = field(default_factory=list)

    def sample(self, connector: dict[str, Any], now: float) -> list[Any] | None:
        """Add a point if a session runs and it is this tick's turn; the point added, or None."""
        session = connector["session"]
        tx = session["transaction"] if session else None
        local_id = tx["local_id"] if tx else None
        if local_id is None:
            return None
        if local_id != self.local_id:
            self.local_id, self.stride, self.ticks, self.points = local_id, 1, 0, []
        self.ticks += 1
        if (self.ticks - 1) % self.stride:
            return None
        meter = connector["meter"]
        point = [round(now, 1), meter["power_w"], meter["currents_a"]]
        self.points.append(point)
        if len(self.points) >= CHART_POINTS:
            self.points = self.points[::2]
            self.stride *= 2
        return point


class Feed:
    """Builds snapshots every ``interval_s`` and offers them to subscribers."""

    def __init__(self, service: StationService, interval_s: float = 1.0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.service = service
        self.interval_s = interval_s
        self.sleep = sleep
        self.charts: dict[int, Chart] = {e: Chart() for e in service.station.connectors}
        self._subscribers: set[asyncio.Queue[bytes]] = set()
        self._sessions: dict[str, Any] = {"running": [], "finished": []}
        self._running_ids: tuple[str, ...] = ()
        self._ticks = 0

    # ------------------------------------------------------------ subscribers
    def subscribe(self) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=1)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self._subscribers.discard(queue)

    def close(self) -> None:
        """Wake every subscriber with an empty snapshot: the end of its stream."""
        self._publish(b"")

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _publish(self, data: bytes) -> None:
        for queue in self._subscribers:
            if queue.full():
                queue.get_nowait()  # the page has not taken the last one: it gets this one instead
            queue.put_nowait(data)

    # ------------------------------------------------------------- snapshots
    def full(self) -> dict[str, Any]:
        """Everything a page needs when it opens: status, charts, events, history."""
        return {"status": self.service.status(), "charts": {
            str(e): {"local_id": c.local_id, "points": c.points} for e, c in self.charts.items()},
            "events": self._events(), "sessions": self._sessions}

    def _events(self) -> list[dict[str, Any]]:
        """The recent events in plain words (``words.py``); more are read, as some are left out."""
        return words.events(self.service.recorder.select(kind="events", limit=EVENTS_READ), EVENTS_SHOWN)

    async def tick(self) -> dict[str, Any]:
        """One snapshot: sample the charts, refresh the history when due, publish."""
        status = self.service.status()
        now = self.service.clock.time()
        points = {}
        for connector in status["connectors"]:
            point = self.charts[connector["id"]].sample(connector, now)
            if point is not None:
                points[str(connector["id"])] = {"local_id": self.charts[connector["id"]].local_id,
                                                "point": point}
        running = tuple(c["session"]["transaction"]["local_id"] for c in status["connectors"]
                        if c["session"] and c["session"]["transaction"])
        snapshot: dict[str, Any] = {"status": status, "points": points, "events": self._events()}
        self._ticks += 1
        if not self._subscribers:
            return snapshot  # the charts go on; the rest is for pages, and none is open
        if self._ticks % SESSIONS_EVERY == 0 or running != self._running_ids:
            self._running_ids = running
            snapshot["sessions"] = await self.refresh_sessions()
        self._publish(encode("update", snapshot))
        return snapshot

    async def refresh_sessions(self) -> dict[str, Any]:
        """Read the session history again (the store's thread)."""
        self._sessions = await self.service.sessions(SESSIONS_SHOWN)
        return self._sessions

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except Exception:  # noqa: BLE001 - the dashboard's feed must not end the daemon
                log.exception("dashboard feed failed; trying again")
            await self.sleep(self.interval_s)


def encode(event: str, data: dict[str, Any]) -> bytes:
    """One server-sent event."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()
