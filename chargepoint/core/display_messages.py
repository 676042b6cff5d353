"""Messages the operator has the station show on its display, kept until they are cleared or run out.

The operator (through the CSMS) sets a message with an id, a priority, a text
in a format, and optionally the station state it is for, a validity window and
the transaction it belongs to. A message with an id already held replaces it.
This module keeps them, decides which show now, and hands those to the
display (``hal.display``); each adapter only translates its version's words.

What shows now: messages inside their window (``start`` reached, ``end`` not
yet), whose state is the station's (or that name none). Of those, the newest
"always in front" message alone; else every "in front" one, cycled; else the
normal cycle. A message ends when cleared, when its ``end`` passes (a timer on
the injected clock removes it), and when its transaction ends: a message for a
transaction is for that driver only.

The station's state for a message: faulted if any connector is, unavailable if
none is operative, charging while a transaction runs, idle otherwise.

Every change is written to the state database (one function, one database
transaction) before the answer goes out, so messages survive a restart; one
whose end passed meanwhile is dropped then, one whose transaction did not come
back after the restart once the station has recovered its transactions.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from chargepoint.core.events import Activity, StatusChanged
from chargepoint.core.settings import Settings
from chargepoint.core.storage.store import Store, StoreError
from hal.clock import Clock
from hal.display import DisplayText, TextDisplay

log = logging.getLogger(__name__)

#: Most messages held at once (a new one beyond is refused).
MAX_MESSAGES = 50


class Priority(StrEnum):
    """How a message competes with the others."""

    #: Shown alone, whatever else there is; the newest of them wins.
    ALWAYS_FRONT = "always_front"
    #: Shown before the normal cycle; several are cycled among themselves.
    IN_FRONT = "in_front"
    NORMAL_CYCLE = "normal_cycle"


class Format(StrEnum):
    ASCII = "ascii"
    HTML = "html"
    URI = "uri"
    UTF8 = "utf8"


class State(StrEnum):
    """The station's state a message is for."""

    CHARGING = "charging"
    FAULTED = "faulted"
    IDLE = "idle"
    UNAVAILABLE = "unavailable"


class SetResult(StrEnum):
    ACCEPTED = "accepted"
    UNSUPPORTED_FORMAT = "unsupported_format"
    UNSUPPORTED_PRIORITY = "unsupported_priority"
    UNSUPPORTED_STATE = "unsupported_state"
    UNKNOWN_TRANSACTION = "unknown_transaction"
    #: Disabled, full, already ended, or it cannot be recorded.
    REJECTED = "rejected"


@dataclass(frozen=True)
class Capabilities:
    """What this station can show: formats (the display's), priorities and states."""

    formats: frozenset[Format] = frozenset({Format.ASCII, Format.UTF8})
    priorities: frozenset[Priority] = frozenset(Priority)
    states: frozenset[State] = frozenset(State)
    max_messages: int = MAX_MESSAGES


@dataclass(frozen=True)
class DisplayMessage:
    """One message as the operator set it."""

    id: int
    priority: Priority
    content: str
    format: Format = Format.UTF8
    language: str | None = None
    #: Shown only in this station state (None: in any).
    state: State | None = None
    #: Epoch seconds: shown from (None: at once) and until, when it is removed (None: until cleared).
    start: float | None = None
    end: float | None = None
    #: Shown during this transaction only (the station's local id) and removed when it ends.
    transaction_id: str | None = None
    #: The display the operator named, as given (a JSON object), to report it back unchanged.
    display: dict[str, Any] | None = None
    #: The order in which messages were set (the newest "always in front" message wins).
    seq: int = 0

    def current(self, now: float, state: State) -> bool:
        """Whether it is in its window and for this state."""
        return ((self.start is None or self.start <= now) and (self.end is None or now < self.end)
                and (self.state is None or self.state == state))


def showing(messages: list[DisplayMessage], now: float, state: State) -> list[DisplayMessage]:
    """The messages to show now, in cycle order (see the module doc)."""
    current = [m for m in messages if m.current(now, state)]
    front = [m for m in current if m.priority is Priority.ALWAYS_FRONT]
    if front:
        return [max(front, key=lambda m: (m.seq, m.id))]
    for priority in (Priority.IN_FRONT, Priority.NORMAL_CYCLE):
        chosen = sorted((m for m in current if m.priority is priority), key=lambda m: (m.seq, m.id))
        if chosen:
            return chosen
    return []


def station_state(statuses: list[StatusChanged], transactions: bool) -> State:
    """The station's state for messages (the connectors' statuses, a transaction running)."""
    if any(s.fault for s in statuses):
        return State.FAULTED
    if statuses and not any(s.operative for s in statuses):
        return State.UNAVAILABLE
    if transactions or any(s.activity in (Activity.CHARGING, Activity.SUSPENDED_EV, Activity.SUSPENDED_EVSE)
                           for s in statuses):
        return State.CHARGING
    return State.IDLE


class Followed(Protocol):
    """What the messages follow of the station (``station.Station``): its statuses and transactions."""

    status_listeners: list[Any]
    connectors: dict[int, Any]

    def status_of(self, evse_id: int) -> StatusChanged: ...
    def active_transactions(self) -> list[tuple[int, Any]]: ...


@dataclass
class _Situation:
    state: State = State.IDLE
    transactions: frozenset[str] = frozenset()
    #: After the restart's transactions are settled: a message for one that is not open is gone.
    settled: bool = False
    shown: tuple[DisplayText, ...] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class DisplayMessages:
    """The operator's messages of one station, and the display they go to."""

    def __init__(self, clock: Clock, settings: Settings, display: TextDisplay | None = None,
                 capabilities: Capabilities | None = None) -> None:
        self.clock = clock
        self.settings = settings
        self.display = display
        if capabilities is None:
            formats = frozenset(Format(f) for f in display.formats) if display is not None else None
            capabilities = Capabilities(formats) if formats is not None else Capabilities()
        self.capabilities = capabilities
        self.store: Store | None = None
        self._held: dict[int, DisplayMessage] = {}
        self._now = _Situation()
        self._station: Followed | None = None
        self._task: asyncio.Task[None] | None = None

    async def attach(self, store: Store) -> None:
        """Take over the messages in the database (before the start); persist from now on."""
        self.store = store
        now = self.clock.time()
        ended = []
        for m in await store.call(_load, store):
            if m.end is not None and m.end <= now:
                ended.append(m.id)
            else:
                self._held[m.id] = m
        if ended:
            log.info("display message(s) %s ended while the station was stopped", _ids(ended))
            store.submit(_delete, store, ended)

    def start(self, station: Followed | None = None,
              spawn: Callable[[Awaitable[None]], Any] | None = None) -> None:
        """Follow the station's state and transactions, and keep the display up to date."""
        self._station = station
        if station is not None:
            station.status_listeners.append(self._status_changed)
            self._status_changed(None)
        self._task = (spawn or asyncio.ensure_future)(self._run())

    def recovered(self) -> None:
        """The restart's open transactions are settled: messages of the ones that ended go now."""
        self._now.settled = True
        self._status_changed(None)

    async def close(self) -> None:
        if self._station is not None and self._status_changed in self._station.status_listeners:
            self._station.status_listeners.remove(self._status_changed)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    # ------------------------------------------------------------ reading
    def all(self) -> list[DisplayMessage]:
        return sorted(self._held.values(), key=lambda m: m.id)

    def query(self, ids: list[int] | None = None, priority: Priority | None = None,
              state: State | None = None) -> list[DisplayMessage]:
        """The messages matching every criterion given."""
        return [m for m in self.all() if (ids is None or m.id in ids)
                and (priority is None or m.priority is priority) and (state is None or m.state is state)]

    @property
    def state(self) -> State:
        return self._now.state

    def showing(self) -> list[DisplayMessage]:
        """What the display shows now, in order."""
        return showing(list(self._held.values()), self.clock.time(), self._now.state)

    # ------------------------------------------------------------ changing
    def refusal(self, m: DisplayMessage) -> SetResult | None:
        """Why ``m`` cannot be taken (None: it can)."""
        caps = self.capabilities
        if not self.settings.current.display_messages_enabled:
            return SetResult.REJECTED
        if m.priority not in caps.priorities:
            return SetResult.UNSUPPORTED_PRIORITY
        if m.format not in caps.formats:
            return SetResult.UNSUPPORTED_FORMAT
        if m.state is not None and m.state not in caps.states:
            return SetResult.UNSUPPORTED_STATE
        if m.transaction_id is not None and m.transaction_id not in self._open_transactions():
            return SetResult.UNKNOWN_TRANSACTION
        if m.id not in self._held and len(self._held) >= caps.max_messages:
            return SetResult.REJECTED
        if m.end is not None and m.end <= self.clock.time():
            return SetResult.REJECTED
        return None

    async def set(self, m: DisplayMessage) -> SetResult:
        """Keep ``m`` (replacing the message with its id), or say why not."""
        refused = self.refusal(m)
        if refused is not None:
            log.info("display message %d not set: %s", m.id, refused.value.replace("_", " "))
            return refused
        m = dataclasses.replace(m, seq=max((x.seq for x in self._held.values()), default=0) + 1)
        if self.store is not None:
            try:
                await self.store.call(_save, self.store, m)
            except StoreError as exc:
                log.error("display message %d not set: it cannot be recorded (%s)", m.id, exc)
                return SetResult.REJECTED
        replaced = m.id in self._held
        self._held[m.id] = m
        log.info("display message %d%s: %s, %r", m.id, " replaced" if replaced else " set",
                 m.priority.value.replace("_", " "), m.content[:60])
        self._now.wake.set()
        return SetResult.ACCEPTED

    async def clear(self, message_id: int) -> bool:
        """Remove a message; False if there is none with this id."""
        if message_id not in self._held:
            return False
        if self.store is not None:
            await self.store.call(_delete, self.store, [message_id])
        del self._held[message_id]
        log.info("display message %d cleared", message_id)
        self._now.wake.set()
        return True

    def _remove(self, ids: list[int], why: str) -> None:
        if not ids:
            return
        for message_id in ids:
            self._held.pop(message_id, None)
        if self.store is not None:
            self.store.submit(_delete, self.store, ids)
        log.info("display message(s) %s removed: %s", _ids(ids), why)
        self._now.wake.set()

    # ------------------------------------------------------------ following
    def _open_transactions(self) -> frozenset[str]:
        if self._station is None:
            return self._now.transactions
        # One that is stopping has ended for its driver: its messages go with its first status.
        return frozenset(tx.local_id for _, tx in self._station.active_transactions() if not tx.stopping)

    def _status_changed(self, _status: StatusChanged | None) -> None:
        station = self._station
        if station is None:
            return
        open_now = self._open_transactions()
        self._now.state = station_state([station.status_of(e) for e in station.connectors], bool(open_now))
        self._now.transactions = open_now
        if self._now.settled:
            self._remove([m.id for m in self._held.values()
                          if m.transaction_id is not None and m.transaction_id not in open_now],
                         "their transaction ended")
        self._now.wake.set()

    async def _run(self) -> None:
        """Remove messages whose end has passed and keep the display showing what is current."""
        while True:
            now = self.clock.time()
            self._remove([m.id for m in self._held.values() if m.end is not None and m.end <= now],
                         "their end time passed")
            self._now.wake.clear()
            await self._show()
            boundaries = [t for m in self._held.values() for t in (m.start, m.end)
                          if t is not None and t > now]
            waits = [asyncio.ensure_future(self._now.wake.wait())]
            if boundaries:
                waits.append(asyncio.ensure_future(self.clock.sleep(min(boundaries) - now)))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    async def _show(self) -> None:
        texts = tuple(DisplayText(m.content, m.format.value, m.language) for m in self.showing())
        if texts == self._now.shown or self.display is None:
            return
        self._now.shown = texts
        try:
            await asyncio.to_thread(self.display.show, texts)
        except Exception as exc:  # noqa: BLE001 - a broken panel must not stop the messages
            log.warning("display: cannot show the messages: %s", exc)


def _ids(ids: list[int]) -> str:
    return ", ".join(map(str, sorted(ids)))


# -------------------------------------------- database work (store thread)
_COLUMNS = "id, priority, content, format, language, state, start_at, end_at, transaction_id, display, seq"


def _load(store: Store) -> list[DisplayMessage]:
    rows = store.db.execute(f"SELECT {_COLUMNS} FROM display_messages ORDER BY id").fetchall()  # noqa: S608
    return [DisplayMessage(mid, Priority(priority), content, Format(fmt), language,
                           State(state) if state else None, start, end, tx,
                           json.loads(display) if display else None, seq)
            for mid, priority, content, fmt, language, state, start, end, tx, display, seq in rows]


def _save(store: Store, m: DisplayMessage) -> None:
    store.db.execute(
        f"INSERT OR REPLACE INTO display_messages ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
        (m.id, m.priority.value, m.content, m.format.value, m.language, m.state.value if m.state else None,
         m.start, m.end, m.transaction_id, json.dumps(m.display) if m.display is not None else None,
         m.seq))


def _delete(store: Store, ids: list[int]) -> None:
    with store.db as db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("DELETE FROM display_messages WHERE id = ?", [(i,) for i in ids])
