"""The connection to the broker: connect, announce, publish what the outlet holds, take commands,
and reconnect with backoff for as long as the daemon runs.

The broker is a convenience, never a dependency: the station charges the same
with it down. Nothing here is awaited by the station; the connection runs in
its own task, publishing waits (for a PUBACK, for a full socket buffer) only
hold this task, and the state keeps being coalesced in the outlet meanwhile.
The connect itself (DNS, TCP, TLS files) runs in a worker thread (aiomqtt).

On every connection: subscribe to the commands (when on), Home Assistant
discovery (when on), ``online`` on the availability topic (its last will says
``offline``), then every retained state topic again.

What the broker sends is bounded too: a packet bigger than ``[mqtt]
max_message_kb`` is read past and dropped, never held in memory (sizecap.py),
with one log line each; the received messages waiting are at most
INCOMING_MAX; commands are rate-limited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable

import aiomqtt

import chargepoint
from chargepoint.config import MqttConfig
from chargepoint.config.model import SOLAR_MODES
from chargepoint.connection import Backoff
from chargepoint.control.service import StationService
from chargepoint.mqtt import discovery, sizecap
from chargepoint.mqtt.commands import CommandHandler
from chargepoint.mqtt.outlet import Message, Outlet
from chargepoint.mqtt.payloads import dumps
from chargepoint.mqtt.topics import Topics, default_prefix
from chargepoint.mqtt.watch import StationWatch

log = logging.getLogger(__name__)

#: Messages sent before the publishing task lets the event loop run other work.
BATCH = 20
#: QoS 1 messages awaiting their PUBACK at once (paho's own default bound).
IN_FLIGHT = 20
#: Command messages the client holds while one is being carried out; past that they are dropped.
INCOMING_MAX = 100
#: How long the goodbye (``offline``) may take when the daemon stops.
GOODBYE_S = 2.0
#: Commands carried out per second at most (a burst of COMMAND_BURST); the rest are dropped unread,
#: so a client flooding the command topics costs the event loop next to nothing.
COMMANDS_PER_S = 5.0
COMMAND_BURST = 10
#: At most one line per this many seconds says how many commands were dropped.
DROPPED_LOG_S = 60.0


class MqttBridge:
    """One daemon's MQTT feed (and command topics)."""

    def __init__(self, service: StationService, config: MqttConfig, *,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 rng: random.Random | None = None) -> None:
        self.service = service
        self.config = config
        station = service.config.station
        self.identity = station.identity
        self.topics = Topics(config.topic_prefix or default_prefix(station.identity))
        self.outlet = Outlet()
        self.watch = StationWatch(service, self.topics, self.outlet, config.interval_s)
        self.commands = CommandHandler(service, self.topics) if config.commands else None
        self.device = discovery.Device(station.identity, station.vendor, station.model,
                                       chargepoint.__version__,
                                       station.serial_number)
        self.sleep = sleep
        self.backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s, rng)
        #: Set while connected and announced (tests and the bench wait on it).
        self.connected = asyncio.Event()
        self.connections = 0
        self.published = 0
        self._failing = False
        self.commands_dropped = 0
        #: Packets dropped unread for being bigger than ``max_message_kb``.
        self.oversized_dropped = 0
        self._tokens = float(COMMAND_BURST)
        self._tokens_at = 0.0
        self._dropped_logged_at = float("-inf")
        self._dropped_unlogged = 0

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        tls = None
        if cfg.tls:
            tls = aiomqtt.TLSParameters(ca_certs=cfg.ca_file or None, certfile=cfg.client_cert or None,
                                        keyfile=cfg.client_key or None)
        client = aiomqtt.Client(
            cfg.host, cfg.port, username=cfg.username or None, password=cfg.password or None,
            identifier=f"chargepoint-{self.identity}", keepalive=cfg.keepalive_s, tls_params=tls,
            will=aiomqtt.Will(self.topics.availability, "offline", qos=1, retain=True),
            queue_type=self._incoming_queue(), logger=logging.getLogger("chargepoint.mqtt.client"))
        return sizecap.cap(client, cfg.max_message_kb * 1024, self._oversized)

    def _oversized(self, kind: int, length: int) -> None:
        """A packet over the cap was announced: it is skipped, not read (one line per packet; the
        log's rate limit counts a flood of them)."""
        self.oversized_dropped += 1
        what = "a message" if kind == sizecap.PUBLISH else f"a packet of type {kind >> 4}"
        log.warning("MQTT: %s of %d bytes from %s dropped unread: more than max_message_kb = %d", what,
                    length, self.where, self.config.max_message_kb)

    def _incoming_queue(self) -> type[asyncio.Queue[aiomqtt.Message]]:
        """aiomqtt's queue of received messages, holding at most INCOMING_MAX.

        Past that a message is dropped and counted here, without the log line per
        message aiomqtt's own bound would write: a flood must cost next to nothing.
        """
        bridge = self

        class Incoming(asyncio.Queue):  # type: ignore[type-arg]
            def put_nowait(self, item: aiomqtt.Message) -> None:
                if self.qsize() >= INCOMING_MAX:
                    bridge.commands_dropped += 1
                    return
                super().put_nowait(item)

        return Incoming

    async def run(self) -> None:
        """Until cancelled: watch the station and keep a connection to the broker."""
        log.info("MQTT: publishing to %s under %s (discovery %s, commands %s)", self.where,
                 self.topics.prefix,
                 "on" if self.config.discovery else "off", "on" if self.commands else "off")
        watch = asyncio.ensure_future(self.watch.run())
        try:
            while True:
                try:
                    async with self._client() as client:
                        await self._connected(client)
                except aiomqtt.MqttError as exc:
                    if self._stopping():
                        raise asyncio.CancelledError from exc
                    self._lost(exc)
                finally:
                    self.connected.clear()
                await self.sleep(self.backoff.next_delay())
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

    @staticmethod
    def _stopping() -> bool:
        """Whether this task is being cancelled (the daemon stops): a disconnect error at the exit of
        the connection must not turn the cancellation into one more reconnect."""
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

    @classmethod
    def _honour_cancel(cls) -> None:
        """Raise CancelledError if this task is being cancelled but was not told.

        aiomqtt waits for the broker's replies with ``asyncio.wait_for``, which in
        Python 3.11 loses a cancellation that arrives in the moment the reply does:
        the task stays marked as cancelling but runs on, and the connection would
        then be kept for good, holding up the daemon's stop.
        """
        if cls._stopping():
            raise asyncio.CancelledError

    def _lost(self, exc: aiomqtt.MqttError) -> None:
        reason = str(exc) or type(exc).__name__
        if exc.__cause__ is not None and str(exc.__cause__):
            reason += f" ({exc.__cause__})"
        if self.connected.is_set():
            log.warning("MQTT: connection to %s lost: %s; reconnecting", self.where, reason)
        else:
            log.warning("MQTT: cannot connect to %s: %s; retrying", self.where, reason)
        self._failing = True

    async def _connected(self, client: aiomqtt.Client) -> None:
        self.connections += 1
        self.backoff.reset()
        log.info("MQTT: connected to %s%s", self.where, " again" if self._failing else "")
        self._failing = False
        tasks: list[asyncio.Task[None]] = []
        try:
            self._honour_cancel()  # the connect waited for the broker too
            if self.commands is not None:
                await client.subscribe(self.topics.command_filter, qos=1)
                await client.subscribe(self.topics.station_command_filter, qos=1)
                self._honour_cancel()
            if self.config.discovery:
                announced = self._discovery()
                for topic, payload in announced:
                    await client.publish(topic, payload, qos=1, retain=True)
                    self._honour_cancel()
            await client.publish(self.topics.availability, "online", qos=1, retain=True)
            self._honour_cancel()
            self.outlet.resend_all()
            self.watch.kick()
            self.connected.set()
            tasks = [asyncio.ensure_future(self._write(client)), asyncio.ensure_future(self._read(client))]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the MqttError that ended the connection
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # the daemon stops: say so if the broker listens
                goodbye = client.publish(self.topics.availability, "offline", qos=1, retain=True)
                await asyncio.wait_for(goodbye, GOODBYE_S)
            raise
        finally:
            await _cancelled(tasks)

    def _discovery(self) -> list[tuple[str, str]]:
        """The discovery configs for the station as it is configured now (grid meter, tariff, ratings)."""
        service = self.service
        energy = service.energy.status() if service.energy is not None else None
        ratings = {e: service.connector_status(e)["limit"]["claims"].get("station") or 80.0
                   for e in service.station.connectors}
        home = service.config.home
        currency = home.currency if home.price_per_kwh is not None else None
        return discovery.messages(self.device, self.topics, self.config.discovery_prefix,
                                  list(service.station.connectors), self.commands is not None,
                                  energy=energy, modes=SOLAR_MODES, ratings=ratings, currency=currency)

    async def _write(self, client: aiomqtt.Client) -> None:
        """Send what the outlet holds. QoS 0 (state) is written at once; QoS 1 (events) is confirmed
        in the background, up to IN_FLIGHT at a time, so one slow PUBACK holds up nothing else."""
        outlet = self.outlet
        in_flight = asyncio.Semaphore(IN_FLIGHT)
        confirming: set[asyncio.Task[None]] = set()
        failed: list[BaseException] = []
        sent = 0
        try:
            while True:
                await outlet.wake.wait()
                message: Message | None
                while (message := outlet.take()) is not None:
                    if failed:
                        outlet.put_back(message)
                        raise failed[0]
                    if message.qos:
                        await in_flight.acquire()
                        task = asyncio.ensure_future(self._confirmed(client, message, in_flight, failed))
                        confirming.add(task)
                        task.add_done_callback(confirming.discard)
                    else:
                        try:
                            await client.publish(message.topic, message.payload, retain=message.retain)
                        except BaseException:
                            outlet.put_back(message)
                            raise
                        self.published += 1
                    sent += 1
                    if sent % BATCH == 0:
                        await asyncio.sleep(0)
        finally:
            await _cancelled(list(confirming))

    async def _confirmed(self, client: aiomqtt.Client, message: Message, in_flight: asyncio.Semaphore,
                         failed: list[BaseException]) -> None:
        try:
            await client.publish(message.topic, message.payload, qos=message.qos, retain=message.retain)
            self.published += 1
        except aiomqtt.MqttError as exc:
            # The sender sees it and reconnects (one log line there); raising here too would leave
            # an exception no one retrieves, printed with a traceback.
            self.outlet.put_back(message)  # at least once: sent again after the reconnect
            failed.append(exc)
            self.outlet.wake.set()
        except BaseException:
            self.outlet.put_back(message)
            raise
        finally:
            in_flight.release()

    async def _read(self, client: aiomqtt.Client) -> None:
        """Commands (when on); with none subscribed this only notices the connection ending."""
        async for message in client.messages:
            if self.commands is None or not self._command_allowed():
                continue
            payload = message.payload
            data = payload if isinstance(payload, bytes | bytearray) else str(payload or "").encode()
            outcome = await self.commands.handle(str(message.topic), bytes(data), message.retain)
            self.outlet.send(self.topics.command_result, dumps(outcome.as_json()))
            self.watch.kick()

    def _command_allowed(self) -> bool:
        """A token bucket (real time): a command now, or dropped and counted."""
        now = asyncio.get_running_loop().time()
        self._tokens = min(float(COMMAND_BURST), self._tokens + (now - self._tokens_at) * COMMANDS_PER_S)
        self._tokens_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        self.commands_dropped += 1
        self._dropped_unlogged += 1
        if now - self._dropped_logged_at >= DROPPED_LOG_S:
            log.warning("MQTT: %d command(s) dropped: more than %g a second arrive", self._dropped_unlogged,
                        COMMANDS_PER_S)
            self._dropped_logged_at = now
            self._dropped_unlogged = 0
        return False


async def _cancelled(tasks: list[asyncio.Task[None]]) -> None:
    """Cancel ``tasks`` and give them GOODBYE_S to end: a stop of the daemon never waits on the broker."""
    for task in tasks:
        task.cancel()
    if tasks:
        _, stuck = await asyncio.wait(tasks, timeout=GOODBYE_S)
        if stuck:
            log.warning("MQTT: %d task(s) did not end when cancelled", len(stuck))
