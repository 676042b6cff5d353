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
from chargepoint.connection import Backoff
from chargepoint.control.service import StationService
from chargepoint.mqtt import discovery
from chargepoint.mqtt.commands import CommandHandler
from chargepoint.mqtt.outlet import Message, Outlet
from chargepoint.mqtt.payloads import dumps
from chargepoint.mqtt.topics import Topics, default_prefix
from chargepoint.mqtt.watch import StationWatch

log = logging.getLogger(__name__)

#: Messages sent before the publishing task lets the event loop run other work.
BATCH = 20
#: Command messages the client holds while one is being carried out; past that they are dropped.
INCOMING_MAX = 100
#: How long the goodbye (``offline``) may take when the daemon stops.
GOODBYE_S = 2.0


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

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _client(self) -> aiomqtt.Client:
        cfg = self.config
        tls = None
        if cfg.tls:
            tls = aiomqtt.TLSParameters(ca_certs=cfg.ca_file or None, certfile=cfg.client_cert or None,
                                        keyfile=cfg.client_key or None)
        return aiomqtt.Client(
            cfg.host, cfg.port, username=cfg.username or None, password=cfg.password or None,
            identifier=f"chargepoint-{self.identity}", keepalive=cfg.keepalive_s, tls_params=tls,
            will=aiomqtt.Will(self.topics.availability, "offline", qos=1, retain=True),
            max_queued_incoming_messages=INCOMING_MAX, logger=logging.getLogger("chargepoint.mqtt.client"))

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
                    self._lost(exc)
                finally:
                    self.connected.clear()
                await self.sleep(self.backoff.next_delay())
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)

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
        if self.commands is not None:
            await client.subscribe(self.topics.command_filter, qos=1)
        if self.config.discovery:
            for topic, payload in discovery.messages(self.device, self.topics, self.config.discovery_prefix,
                                                     list(self.service.station.connectors),
                                                     self.commands is not None):
                await client.publish(topic, payload, qos=1, retain=True)
        await client.publish(self.topics.availability, "online", qos=1, retain=True)
        self.outlet.resend_all()
        self.watch.kick()
        self.connected.set()
        tasks = [asyncio.ensure_future(self._write(client)), asyncio.ensure_future(self._read(client))]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # the MqttError that ended the connection
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # the daemon stops: say so if the broker listens
                goodbye = client.publish(self.topics.availability, "offline", qos=1, retain=True)
                await asyncio.wait_for(goodbye, GOODBYE_S)
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _write(self, client: aiomqtt.Client) -> None:
        outlet = self.outlet
        sent = 0
        while True:
            await outlet.wake.wait()
            message: Message | None
            while (message := outlet.take()) is not None:
                try:
                    await client.publish(message.topic, message.payload, qos=message.qos,
                                         retain=message.retain)
                except BaseException:
                    outlet.put_back(message)
                    raise
                self.published += 1
                sent += 1
                if sent % BATCH == 0:
                    await asyncio.sleep(0)

    async def _read(self, client: aiomqtt.Client) -> None:
        """Commands (when on); with none subscribed this only notices the connection ending."""
        async for message in client.messages:
            if self.commands is None:
                continue
            payload = message.payload
            data = payload if isinstance(payload, bytes | bytearray) else str(payload or "").encode()
            outcome = await self.commands.handle(str(message.topic), bytes(data), message.retain)
            self.outlet.send(self.topics.command_result, dumps(outcome.as_json()))
            self.watch.kick()
