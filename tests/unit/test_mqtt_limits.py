"""What the broker may send is bounded: a huge packet is dropped unread, numbers are ASCII digits.

A hostile broker on loopback (just enough MQTT 3.1.1: CONNACK, SUBACK, PUBACK,
PINGRESP) answers the station's bridge, then sends a packet a little over the
cap (whole) and one announcing 250 MiB of which it streams a few MiB before it
hangs up, on each of three connections (the station, commands on, subscribes
to its command topics only). The bridge must skip both without
holding them (memory traced by tracemalloc, whose peak would count paho's
buffer of the announced length), keep the framing (the second packet is seen
after the first was skipped), log one line per packet, and reconnect (twice).
"""

from __future__ import annotations

import asyncio
import logging
import tracemalloc
from types import SimpleNamespace
from typing import Any

import pytest

from chargepoint.config import ConfigError, parse
from chargepoint.config.model import MqttConfig
from chargepoint.mqtt.bridge import MqttBridge
from chargepoint.mqtt.commands import CommandHandler
from chargepoint.mqtt.topics import Topics

MIB = 1024 * 1024
#: What the hostile broker announces in its big packet, and what it sends of it before hanging up.
ANNOUNCED = 250 * MIB
STREAMED = 3 * MIB
ATTACKS = 3
CHUNK = b"\0" * 65536


def _length(n: int) -> bytes:
    """MQTT's variable-length encoding of a remaining length."""
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (128 if n else 0))
        if not n:
            return bytes(out)


async def _read_packet(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first = (await reader.readexactly(1))[0]
    length, shift = 0, 0
    while True:
        byte = (await reader.readexactly(1))[0]
        length += (byte & 127) << shift
        shift += 7
        if not byte & 128:
            break
    return first, await reader.readexactly(length)


class HostileBroker:
    """Serves the handshake, then on each of the first ATTACKS connections sends the big packets."""

    def __init__(self) -> None:
        self.connections = 0
        self.attacks_done = 0
        self.subscribed: set[str] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                first, body = await _read_packet(reader)
                kind = first & 0xF0
                if kind == 0x10:  # CONNECT
                    writer.write(b"\x20\x02\x00\x00")
                elif kind == 0x80:  # SUBSCRIBE (one topic filter, as the station sends it)
                    self.subscribed.add(body[4:4 + int.from_bytes(body[2:4], "big")].decode())
                    writer.write(b"\x90\x03" + body[:2] + b"\x01")
                elif kind == 0xC0:  # PINGREQ
                    writer.write(b"\xd0\x00")
                elif kind == 0x30:  # PUBLISH: acknowledge QoS 1; the station's "online" starts the attack
                    topic_length = int.from_bytes(body[:2], "big")
                    if first & 0x06:
                        writer.write(b"\x40\x02" + body[2 + topic_length:4 + topic_length])
                    if body.endswith(b"online") and self.attacks_done < ATTACKS:
                        await self._attack(writer)
                        self.attacks_done += 1
                        return
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def _attack(self, writer: asyncio.StreamWriter) -> None:
        topic = b"chargepoint/CP-1/connector/1/cmd/limit"
        head = len(topic).to_bytes(2, "big") + topic
        over = 16 * 1024 + 1  # just over the cap: sent whole, so the next packet must be found after it
        writer.write(b"\x30" + _length(len(head) + over) + head + b"\0" * over)
        writer.write(b"\x30" + _length(len(head) + ANNOUNCED) + head)
        for _ in range(STREAMED // len(CHUNK)):
            writer.write(CHUNK)
            await writer.drain()


def _service() -> Any:
    station = SimpleNamespace(identity="CP-1", vendor="ACME", model="Pi AC", serial_number="")
    return SimpleNamespace(config=SimpleNamespace(station=station), station=SimpleNamespace(connectors={}))


class _NoWatch:
    """The bridge's station watch, left out: this test is about what comes in."""

    async def run(self) -> None:
        await asyncio.Event().wait()

    def kick(self) -> None:
        pass


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


class _Backoff:
    """The bridge's sleep between connections: instant for the first ``reconnects``, then until the test
    ends (the bridge is stopped while it waits, not in the middle of a connection)."""

    def __init__(self, reconnects: int) -> None:
        self.left = reconnects
        self.waiting = asyncio.Event()

    async def __call__(self, _: float) -> None:
        if self.left:
            self.left -= 1
            await asyncio.sleep(0)
            return
        self.waiting.set()
        await asyncio.Event().wait()


async def test_a_huge_packet_from_the_broker_is_dropped_unread_across_reconnects(caplog):
    broker = HostileBroker()
    port = await broker.start()
    config = MqttConfig(enabled=True, host="127.0.0.1", port=port, discovery=False, commands=True,
                        reconnect_min_s=0.1, max_message_kb=16)
    backoff = _Backoff(ATTACKS - 1)
    bridge = MqttBridge(_service(), config, sleep=backoff)
    bridge.watch = _NoWatch()  # type: ignore[assignment]
    caplog.set_level(logging.WARNING, "chargepoint.mqtt.bridge")
    rss = _rss_kib()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        task = asyncio.ensure_future(bridge.run())
        try:
            waiting = asyncio.ensure_future(backoff.waiting.wait())  # the last connection ended too
            await asyncio.wait([task, waiting], timeout=30, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        await broker.close()
    assert peak - base < 2 * MIB, f"{(peak - base) / MIB:.1f} MiB held at the peak"
    assert _rss_kib() - rss < 32 * 1024
    dropped = [r.getMessage() for r in caplog.records if "dropped unread" in r.getMessage()]
    assert len(dropped) == 2 * ATTACKS == bridge.oversized_dropped, dropped
    assert f"MQTT: a message of {ANNOUNCED + 40} bytes from 127.0.0.1:{port} dropped unread: more than " \
           "max_message_kb = 16" in dropped
    assert bridge.connections == broker.attacks_done == ATTACKS  # reconnected after each but the last
    assert broker.subscribed == {"chargepoint/CP-1/connector/+/cmd/+",  # the command topics only
                                 "chargepoint/CP-1/station/cmd/+"}


def test_max_message_kb_is_checked():
    minimal = {"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://127.0.0.1:9000"}}
    assert parse(minimal).mqtt.max_message_kb == 16
    assert parse({**minimal, "mqtt": {"max_message_kb": 64}}).mqtt.max_message_kb == 64
    with pytest.raises(ConfigError, match="mqtt.max_message_kb"):
        parse({**minimal, "mqtt": {"max_message_kb": 0}}, "station.toml")


# ------------------------------------------------------------- numbers in commands

class _Service:
    """Records what a command would have done."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def evse_id(self, connector: int) -> int:
        self.calls.append(("evse_id", connector))
        return connector

    async def limit(self, evse_id: int, amps: float | None) -> dict[str, Any]:
        self.calls.append(("limit", amps))
        return {"limit_a": amps}


@pytest.mark.parametrize(("connector", "payload"), [
    ("\u0661", b"10"),          # ARABIC-INDIC DIGIT ONE as the connector
    ("\u00b9", b"10"),          # SUPERSCRIPT ONE: str.isdigit() says yes, int() says no
    ("\uff11", b"10"),          # FULLWIDTH DIGIT ONE
    ("1", "\u0661\u0666".encode()),  # sixteen in Arabic-Indic digits
    ("1", "\u0967\u0966".encode()),  # ten in Devanagari digits
    ("1", b"1_6"), ("1", b"1e1"), ("1", b"nan"), ("1", b"inf"), ("1", b"-5"), ("1", b"0x10"),
])
async def test_numbers_in_commands_are_ascii_digits_only(connector, payload):
    service = _Service()
    handler = CommandHandler(service, Topics("chargepoint/CP-1"))  # type: ignore[arg-type]
    outcome = await handler.handle(f"chargepoint/CP-1/connector/{connector}/cmd/limit", payload, False)
    assert outcome.ok is False
    assert [c for c in service.calls if c[0] == "limit"] == []


@pytest.mark.parametrize(("payload", "amps"), [(b"10", 10.0), (b"10.5", 10.5), (b" 16 ", 16.0),
                                               (b"clear", None)])
async def test_ascii_numbers_in_commands_still_work(payload, amps):
    service = _Service()
    handler = CommandHandler(service, Topics("chargepoint/CP-1"))  # type: ignore[arg-type]
    outcome = await handler.handle("chargepoint/CP-1/connector/1/cmd/limit", payload, False)
    assert outcome.ok is True and service.calls == [("evse_id", 1), ("limit", amps)]
