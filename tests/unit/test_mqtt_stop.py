"""The MQTT bridge stops when the daemon stops, even if a cancellation is lost on the way.

aiomqtt waits for the broker's replies with ``asyncio.wait_for``, which in
Python 3.11 swallows a cancellation that arrives in the moment the reply does.
The client below does exactly that on the ``online`` message; the bridge must
still end (saying ``offline`` first) instead of keeping the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

from chargepoint.config.model import MqttConfig
from chargepoint.mqtt.bridge import MqttBridge


class _SwallowingClient:
    def __init__(self) -> None:
        self.published: list[str] = []
        self.replying = asyncio.Event()

    async def __aenter__(self) -> _SwallowingClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def subscribe(self, *args: Any, **kwargs: Any) -> None:
        return None

    async def publish(self, topic: str, payload: str, qos: int = 0, retain: bool = False) -> None:
        self.published.append(payload)
        if payload == "online":
            self.replying.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                pass  # the reply came with the cancellation: wait_for returns it, the cancellation is lost

    @property
    def messages(self) -> AsyncIterator[Any]:
        async def never() -> AsyncIterator[Any]:
            await asyncio.Event().wait()
            yield None
        return never()


class _NoWatch:
    async def run(self) -> None:
        await asyncio.Event().wait()

    def kick(self) -> None:
        pass


async def test_a_cancellation_lost_in_a_reply_still_stops_the_bridge():
    station = SimpleNamespace(identity="CP-1", vendor="ACME", model="Pi AC", serial_number="")
    service = SimpleNamespace(config=SimpleNamespace(station=station), station=SimpleNamespace(connectors={}))
    bridge = MqttBridge(service, MqttConfig(enabled=True, discovery=False, commands=True))  # type: ignore[arg-type]
    bridge.watch = _NoWatch()  # type: ignore[assignment]
    client = _SwallowingClient()
    bridge._client = lambda: client  # type: ignore[assignment,return-value]
    task = asyncio.ensure_future(bridge.run())
    await client.replying.wait()
    task.cancel()
    done, _ = await asyncio.wait([task], timeout=10)
    assert task in done and task.cancelled(), "the bridge kept running after it was cancelled"
    assert client.published == ["online", "offline"]
    assert not bridge.connected.is_set()
