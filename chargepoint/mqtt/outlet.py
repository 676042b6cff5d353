"""What waits to be published: the latest retained payload per topic, and a short queue of events.

The station side only ever writes here, never to the network, so it never
waits for the broker. A state topic that changes ten times while the broker is
slow or away is sent once, with its latest value (memory stays bounded by the
number of topics); after a reconnect every retained topic is sent again, so
the broker holds the station's present state. Events (a session's start and
end, a fault) queue up to ``events_max``; the oldest are dropped past that and
counted.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool
    qos: int


class Outlet:
    def __init__(self, events_max: int = 200) -> None:
        self.latest: dict[str, str] = {}
        #: Retained topics not yet sent since their last change (insertion-ordered).
        self._dirty: dict[str, None] = {}
        self._events: deque[Message] = deque()
        self.events_max = events_max
        self.dropped_events = 0
        #: Set whenever something waits to be sent.
        self.wake = asyncio.Event()

    def retain(self, topic: str, payload: str) -> bool:
        """The state of ``topic`` is now ``payload``; False if it already was (nothing to send)."""
        if self.latest.get(topic) == payload:
            return False
        self.latest[topic] = payload
        self._dirty[topic] = None
        self.wake.set()
        return True

    def send(self, topic: str, payload: str) -> None:
        """An event, sent once (at least once: QoS 1), not retained."""
        if len(self._events) >= self.events_max:
            self._events.popleft()
            self.dropped_events += 1
        self._events.append(Message(topic, payload, retain=False, qos=1))
        self.wake.set()

    def resend_all(self) -> None:
        """After a reconnect: every retained topic again (the broker may have lost them)."""
        self._dirty = dict.fromkeys(self.latest)
        if self._dirty:
            self.wake.set()

    def pending(self) -> int:
        return len(self._dirty) + len(self._events)

    def take(self) -> Message | None:
        """The next message to send: events first (they are rarer and say what happened), then state."""
        if self._events:
            return self._events.popleft()
        if self._dirty:
            topic = next(iter(self._dirty))
            del self._dirty[topic]
            return Message(topic, self.latest[topic], retain=True, qos=0)
        self.wake.clear()
        return None

    def put_back(self, message: Message) -> None:
        """A message the broker did not get (the connection broke): first again after the reconnect."""
        if message.retain:
            if self.latest.get(message.topic) == message.payload:
                self._dirty[message.topic] = None
        else:
            self._events.appendleft(message)
        self.wake.set()
