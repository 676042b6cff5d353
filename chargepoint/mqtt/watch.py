"""Watches the station through its service API and writes what changed into the outlet.

It reads the same views the control socket shows, every ``interval_s`` of the
station's clock and at once (on the next turn of the loop) when a connector's
status changes. From one look to the next it sees a session begin or end and
a fault appear or clear, and sends those as events; a finished session's
energy and reason come from the state database (``StationService.sessions``),
as the CLI lists them. Building the payloads is a few dicts per connector: it
runs on the event loop and never touches the network.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import chargepoint
from chargepoint.control.service import StationService
from chargepoint.core.events import StatusChanged
from chargepoint.mqtt import payloads
from chargepoint.mqtt.outlet import Outlet
from chargepoint.mqtt.topics import Topics

log = logging.getLogger(__name__)

#: Finished sessions looked up to find the one that just ended.
SESSIONS_LOOKUP = 20


class StationWatch:
    def __init__(self, service: StationService, topics: Topics, outlet: Outlet, interval_s: float) -> None:
        self.service = service
        self.topics = topics
        self.outlet = outlet
        self.interval_s = interval_s
        #: The running session seen last per connector (None: none was running).
        self._running: dict[int, dict[str, Any] | None] = {}
        self._faults: dict[int, tuple[tuple[str, ...], str | None]] = {}
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        #: Hooks called after each refresh (the bench counts them).
        self.after_refresh: list[Callable[[], None]] = []

    def kick(self) -> None:
        """Look again soon: once per turn of the loop however often it is called."""
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._kicked)

    def _kicked(self) -> None:
        self._scheduled = False
        self.refresh()

    def _status_changed(self, status: StatusChanged) -> None:
        self.kick()

    async def run(self) -> None:
        """Until cancelled: the last sessions first, then the state now and at every interval."""
        station = self.service.station
        for evse_id in station.connectors:
            self._running[evse_id] = None
            self._faults[evse_id] = ((), None)
        await self._last_sessions()
        station.status_listeners.append(self._status_changed)
        try:
            while True:
                self.refresh()
                await self.service.clock.sleep(self.interval_s)
        finally:
            station.status_listeners.remove(self._status_changed)
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _last_sessions(self) -> None:
        """The session topic of a connector that is idle shows its last finished session."""
        finished = (await self.service.sessions(SESSIONS_LOOKUP))["finished"]
        for evse_id in self._running:
            rows = [r for r in finished if r["connector"] == evse_id]
            self.outlet.retain(self.topics.connector(evse_id, "session"), payloads.dumps(
                payloads.finished_session(evse_id, rows[0]) if rows else payloads.no_session(evse_id)))

    def refresh(self) -> None:
        """Every state topic as the station is now (unchanged ones are not sent again)."""
        service = self.service
        now = service.clock.time()
        retain, topic = self.outlet.retain, self.topics.connector
        for evse_id in self._running:
            c = service.connector_status(evse_id)
            retain(topic(evse_id, "state"), payloads.dumps(payloads.state(c)))
            retain(topic(evse_id, "meter"), payloads.dumps(payloads.meter(c)))
            retain(topic(evse_id, "fault"), payloads.dumps(payloads.fault(c)))
            self._session(evse_id, c, now)
            self._fault(evse_id, c, now)
        station = service.station
        retain(self.topics.station, payloads.dumps(payloads.station(
            service.config.station.identity, chargepoint.__version__, service.version.status_word(
                station.status_of(0)), service.link.connected.is_set(), len(service.outbox),
            len(station.connectors))))
        self._energy()
        for hook in self.after_refresh:
            hook()

    def _energy(self) -> None:
        """With a grid meter: the solar mode and the power flow, and each connector's departure plan."""
        manager = self.service.energy
        if manager is None:
            return
        status = manager.status()
        self.outlet.retain(self.topics.energy, payloads.dumps(payloads.energy(status)))
        for c in status["connectors"]:
            self.outlet.retain(self.topics.connector(c["id"], "plan"),
                               payloads.dumps(payloads.plan(c["id"], c.get("plan"))))

    def _session(self, evse_id: int, c: dict[str, Any], now: float) -> None:
        running = payloads.running_session(c, now)
        before = self._running[evse_id]
        if before is not None and (running is None or running["local_id"] != before["local_id"]):
            self._spawn(self._finished(evse_id, before))
        if running is not None:
            if before is None or running["local_id"] != before["local_id"]:
                self.outlet.send(self.topics.connector(evse_id, "event"), payloads.dumps(payloads.event(
                    "session_started", evse_id, now, local_id=running["local_id"],
                    started_at=running["started_at"], meter_start_wh=running["meter_start_wh"])))
            self.outlet.retain(self.topics.connector(evse_id, "session"), payloads.dumps(running))
        self._running[evse_id] = running

    async def _finished(self, evse_id: int, last: dict[str, Any]) -> None:
        """A session ended: its record from the state database (energy, reason), else as last seen."""
        rows = (await self.service.sessions(SESSIONS_LOOKUP))["finished"]
        row = next((r for r in rows if r["local_id"] == last["local_id"]), None)
        if row is not None:
            done = payloads.finished_session(evse_id, row)
        else:
            done = {**last, "state": "finished", "stopped_at": payloads.iso(self.service.clock.time())}
        if self._running.get(evse_id) is None:  # else a new session already shows on the topic
            self.outlet.retain(self.topics.connector(evse_id, "session"), payloads.dumps(done))
        self.outlet.send(self.topics.connector(evse_id, "event"), payloads.dumps(payloads.event(
            "session_stopped", evse_id, self.service.clock.time(), local_id=done["local_id"],
            started_at=done["started_at"], stopped_at=done["stopped_at"], energy_wh=done["energy_wh"],
            energy_kwh=done["energy_kwh"], reason=done["reason"])))

    def _fault(self, evse_id: int, c: dict[str, Any], now: float) -> None:
        key = (tuple(c["faults"]), c["error"])
        if key == self._faults[evse_id]:
            return
        self._faults[evse_id] = key
        active = bool(key[0] or key[1])
        self.outlet.send(self.topics.connector(evse_id, "event"), payloads.dumps(payloads.event(
            "fault" if active else "fault_cleared", evse_id, now, faults=list(key[0]), error=key[1])))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("MQTT: finished session not published: %s", task.exception())
