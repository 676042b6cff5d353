"""Variable monitoring: the operator watches a value of the station without polling it.

A monitor watches one value (``target``: an address the adapter made and alone
reads; the core never looks inside it) and says when it crosses a threshold,
moves by more than a delta, or, periodically, what it is. The rules are the
same in any protocol that has them, so they are here, with the monitors and the
two station-wide choices over them: the *base* (which monitors are in force:
all, the factory defaults, or only the hard-wired ones, which this station
reports by itself: a connector's fault) and the *level* (events of a monitor
whose severity number is above it are not reported; 0 is the most severe).

The adapter that can name the targets gives the value of one now (``Reader``,
kept across connections) and, while connected, takes the events (``connect``).
The station runs ``run``: every second of the injected clock each monitor in
force is evaluated; what triggers goes to the connected adapter, or, offline,
is held when its severity number is at most ``monitoring_offline_severity``
(the most recent ``MAX_HELD``) and handed over first at the next connection. A threshold
triggers once when crossed and once more, cleared, when the value is back; a
delta monitor measures from the value it last reported (a value that is not a
number triggers at every change); a periodic monitor reports every ``value``
seconds, a clock-aligned one at multiples of ``value`` seconds of the day.

Monitors, base and level survive a restart: they are written to the state
database (the ``meta`` table, one row) before the answer goes out.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from chargepoint.core.settings import Settings
from chargepoint.core.storage.store import Store, StoreError, meta_get, meta_set
from hal.clock import Clock

log = logging.getLogger(__name__)

#: Where the monitors are kept (the store's meta table: name -> JSON).
META_KEY = "variable_monitoring"
#: Most custom monitors held at once.
MAX_MONITORS = 100
#: Severity numbers: 0 (danger) to 9 (debug); the level lets through those at or below it.
SEVERITY_RANGE = (0, 9)
#: How often the values are looked at (seconds of the injected clock).
WATCH_INTERVAL_S = 1.0
#: Most events held while offline (the oldest go first).
MAX_HELD = 1000


class MonitorKind(StrEnum):
    UPPER_THRESHOLD = "upper_threshold"
    LOWER_THRESHOLD = "lower_threshold"
    DELTA = "delta"
    PERIODIC = "periodic"
    PERIODIC_CLOCK_ALIGNED = "periodic_clock_aligned"


THRESHOLDS = (MonitorKind.UPPER_THRESHOLD, MonitorKind.LOWER_THRESHOLD)
PERIODIC = (MonitorKind.PERIODIC, MonitorKind.PERIODIC_CLOCK_ALIGNED)


class Base(StrEnum):
    """Which monitors are in force."""

    ALL = "all"
    FACTORY_DEFAULT = "factory_default"
    HARDWIRED_ONLY = "hardwired_only"


@dataclass(frozen=True)
class Monitor:
    """One custom monitor, as the operator set it."""

    id: int
    target: str
    kind: MonitorKind
    value: float
    severity: int
    #: Only while a transaction runs on the target's EVSE (or on any, for a station-wide target).
    transaction: bool = False
    #: The EVSE the target belongs to (None: the station as a whole).
    evse_id: int | None = None


@dataclass(frozen=True)
class MonitorEvent:
    """What a monitor saw: the value now, and whether it is a return to normal."""

    monitor: Monitor
    value: str
    at: float
    cleared: bool = False


class Refusal(StrEnum):
    """Why a monitor was not set (the adapter words each)."""

    OUT_OF_RANGE = "out_of_range"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


#: A target's value now as text (None: no value now).
Reader = Callable[[str], str | None]
#: Whether a transaction runs on an EVSE (None: on any).
TransactionRunning = Callable[[int | None], bool]
#: Takes the events of one evaluation (the connected adapter).
Emit = Callable[[list["MonitorEvent"]], None]


def number(text: str | None) -> float | None:
    """``text`` as a number (true/false as 1/0), or None."""
    if text is None:
        return None
    if text in ("true", "false"):
        return 1.0 if text == "true" else 0.0
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class _Watch:
    """What the evaluation remembers of one monitor."""

    #: Thresholds: the limit is crossed now. Delta: the value last reported (text).
    crossed: bool = False
    reference: str | None = None
    #: Periodic: when it reports next (clock time).
    due: float | None = None


class VariableMonitoring:
    """The monitors of one station, their base and level, and their evaluation."""

    def __init__(self, clock: Clock, settings: Settings | None = None) -> None:
        self.clock = clock
        self.settings = settings
        self.store: Store | None = None
        self.monitors: dict[int, Monitor] = {}
        self.base = Base.ALL
        self.level = SEVERITY_RANGE[1]
        self._watch: dict[int, _Watch] = {}
        self._read: tuple[Reader, TransactionRunning] | None = None
        self._emit: Emit | None = None
        #: Events of the offline time, oldest first.
        self.held: deque[MonitorEvent] = deque(maxlen=MAX_HELD)

    # ------------------------------------------------------------ persistence
    async def attach(self, store: Store) -> None:
        """Take over what the database holds (before the start); persist from now on."""
        self.store = store
        data = await store.call(_load, store)
        if data is None:
            return
        self.base = Base(data.get("base", Base.ALL.value))
        self.level = int(data.get("level", SEVERITY_RANGE[1]))
        for item in data.get("monitors", []):
            monitor = Monitor(**{**item, "kind": MonitorKind(item["kind"])})
            self.monitors[monitor.id] = monitor
        if self.monitors:
            log.info("%d variable monitor(s) kept from before the restart", len(self.monitors))

    async def save(self) -> None:
        """Keep the monitors, base and level on disk. A database that cannot be written leaves them
        in force until the restart (one warning): a monitor is no reason to refuse the CSMS."""
        if self.store is None:
            return
        data = {"base": self.base.value, "level": self.level,
                "monitors": [dataclasses.asdict(m) for m in self.monitors.values()]}
        try:
            await self.store.call(_store, self.store, json.dumps(data, separators=(",", ":")))
        except StoreError as exc:
            log.warning("variable monitors not kept on disk (%s): in force until the restart", exc)

    # ---------------------------------------------------------------- changes
    def refusal(self, monitor: Monitor, limits: tuple[float | None, float | None]) -> Refusal | None:
        """Why ``monitor`` cannot be set (None: it can). ``limits`` bound a threshold's value."""
        if not SEVERITY_RANGE[0] <= monitor.severity <= SEVERITY_RANGE[1]:
            return Refusal.REJECTED
        if monitor.id and monitor.id not in self.monitors:
            return Refusal.REJECTED  # an id names a monitor to replace; the station makes new ids
        if monitor.kind in THRESHOLDS:
            low, high = limits
            if (low is not None and monitor.value < low) or (high is not None and monitor.value > high):
                return Refusal.OUT_OF_RANGE
        elif monitor.kind is MonitorKind.DELTA:
            if monitor.value < 0:
                return Refusal.OUT_OF_RANGE
        elif monitor.value <= 0:
            return Refusal.OUT_OF_RANGE
        for other in self.monitors.values():
            if other.id != monitor.id and (other.target, other.kind, other.severity) == (
                    monitor.target, monitor.kind, monitor.severity):
                return Refusal.DUPLICATE
        if not monitor.id and len(self.monitors) >= MAX_MONITORS:
            return Refusal.REJECTED
        return None

    def install(self, monitor: Monitor, value_now: str | None = None) -> Monitor:
        """Take ``monitor`` (replacing the one of its id; a new one gets the next free id) and
        return it as installed; ``save`` keeps a request's monitors on disk in one write.

        ``value_now``: the target's value as the monitor is set; a delta counts from it."""
        if not monitor.id:
            monitor = dataclasses.replace(monitor, id=max(self.monitors, default=0) + 1)
        self.monitors[monitor.id] = monitor
        self._watch[monitor.id] = _Watch(reference=value_now)
        log.info("monitor %d set: %s %s %g, severity %d", monitor.id, monitor.target,
                 monitor.kind.value.replace("_", " "), monitor.value, monitor.severity)
        return monitor

    async def clear(self, ids: Iterable[int]) -> dict[int, bool]:
        """Remove monitors; per id whether one was there."""
        found = {i: self.monitors.pop(i, None) is not None for i in ids}
        for i in found:
            self._watch.pop(i, None)
        if any(found.values()):
            log.info("monitor(s) %s cleared", ", ".join(str(i) for i, hit in found.items() if hit))
            await self.save()
        return found

    async def set_base(self, base: Base) -> None:
        """All keeps every monitor; FactoryDefault and HardWiredOnly remove the operator's monitors
        (this station has no preconfigured ones: its hard-wired fault reports stay in any base)."""
        self.base = base
        if base is not Base.ALL:
            self.monitors.clear()
            self._watch.clear()
        log.info("monitoring base %s", base.value.replace("_", " "))
        await self.save()

    async def set_level(self, severity: int) -> bool:
        if not SEVERITY_RANGE[0] <= severity <= SEVERITY_RANGE[1]:
            return False
        self.level = severity
        log.info("monitoring level %d", severity)
        await self.save()
        return True

    def reported(self, severity: int) -> bool:
        """Whether an event of this severity is reported at the current level."""
        return severity <= self.level

    # -------------------------------------------------------------- watching
    def connect(self, read: Reader, running: TransactionRunning, emit: Emit) -> None:
        """An adapter is connected: it reads the targets (also after it is gone) and takes the events,
        first those held while offline."""
        self._read = (read, running)
        self._emit = emit
        if self.held:
            held, self.held = list(self.held), deque(maxlen=MAX_HELD)
            log.info("%d monitor event(s) of the offline time sent", len(held))
            emit(held)

    def disconnect(self, emit: Emit) -> None:
        """The adapter's connection ended: events are held from now on (its reader stays)."""
        if self._emit is emit:
            self._emit = None

    async def run(self, interval_s: float = WATCH_INTERVAL_S) -> None:
        """Evaluate the monitors every ``interval_s`` for as long as the station runs."""
        while True:
            if self._read is not None and self.monitors:
                self.deliver(self.evaluate(*self._read))
            await self.clock.sleep(interval_s)

    def deliver(self, events: list[MonitorEvent]) -> None:
        """To the connected adapter; offline, the severe enough ones are held."""
        if not events:
            return
        if self._emit is not None:
            self._emit(events)
            return
        keep = self.settings.current.monitoring_offline_severity if self.settings is not None else -1
        self.held.extend(e for e in events if e.monitor.severity <= keep)

    def evaluate(self, read: Reader, running: TransactionRunning) -> list[MonitorEvent]:
        """The events of every monitor in force, now."""
        now = self.clock.time()
        events: list[MonitorEvent] = []
        for monitor in list(self.monitors.values()):
            if monitor.transaction and not running(monitor.evse_id):
                self._watch.pop(monitor.id, None)
                continue
            watch = self._watch.setdefault(monitor.id, _Watch())
            value = read(monitor.target)
            event = self._evaluate(monitor, watch, value, now)
            if event is not None and self.reported(monitor.severity):
                events.append(event)
        return events

    @staticmethod
    def _evaluate(monitor: Monitor, watch: _Watch, value: str | None, now: float) -> MonitorEvent | None:
        if monitor.kind in PERIODIC:
            if watch.due is None:
                watch.due = _next_due(monitor, now)
            if now < watch.due:
                return None
            watch.due = _next_due(monitor, now)
            return None if value is None else MonitorEvent(monitor, value, now)
        if value is None:
            return None
        if monitor.kind is MonitorKind.DELTA:
            if watch.reference is None:
                watch.reference = value  # the value when the monitor was set: changes count from it
                return None
            old, new = number(watch.reference), number(value)
            moved = (abs(new - old) >= monitor.value) if old is not None and new is not None \
                else value != watch.reference
            if not moved or value == watch.reference:
                return None
            watch.reference = value
            return MonitorEvent(monitor, value, now)
        level = number(value)
        if level is None:
            return None
        upper = monitor.kind is MonitorKind.UPPER_THRESHOLD
        crossed = level > monitor.value if upper else level < monitor.value
        if crossed == watch.crossed:
            return None
        watch.crossed = crossed
        return MonitorEvent(monitor, value, now, cleared=not crossed)


def _next_due(monitor: Monitor, now: float) -> float:
    if monitor.kind is MonitorKind.PERIODIC:
        return now + monitor.value
    return (math.floor(now / monitor.value) + 1) * monitor.value


# -------------------------------------------- database work (store thread)
def _load(store: Store) -> dict[str, Any] | None:
    text = meta_get(store, META_KEY)
    return None if text is None else dict(json.loads(text))


def _store(store: Store, text: str) -> None:
    meta_set(store, META_KEY, text)
