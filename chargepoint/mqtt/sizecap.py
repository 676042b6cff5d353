"""A cap on what the broker may send: a bigger packet is read past and dropped, never held in memory.

paho-mqtt (under aiomqtt) collects a packet's whole announced length in
memory before it looks at it, and MQTT lets a packet announce 256 MiB. A
broken or hostile broker could thus make the daemon hold a quarter of a
gigabyte per connection, and again after every reconnect. The station needs a
few hundred bytes per command, so it sets a cap (``[mqtt] max_message_kb``):
once the fixed header of an incoming packet announces more, the rest of that
packet is read in small chunks and thrown away, the connection stays up, and
``on_oversized`` is told (the bridge logs one line per packet dropped).

paho has no setting for this (its ``_packet_read`` is where the packet is
collected), so the client aiomqtt made is given a subclass that wraps paho's
socket read: when paho asks for the body of a packet over the cap, the body
is skipped instead. The internals this relies on are checked for each client, and
the MQTT tests run a hostile broker against it, so a paho release that moves
them fails loudly rather than quietly buffering again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

#: Bytes read per chunk while skipping an oversized packet.
SKIP_CHUNK = 64 * 1024
#: Chunks skipped per read event before the event loop gets its turn back (1 MiB).
SKIP_CHUNKS_PER_EVENT = 16
#: MQTT's type of a PUBLISH packet (the high nibble of the first byte).
PUBLISH = 0x30

#: Told (packet type, announced length) of each packet dropped.
OnOversized = Callable[[int, int], None]

#: paho's internals used here, on the client (methods) and on each instance (its read state).
_METHODS = ("_packet_read", "_sock_recv")
_STATE = ("_in_packet", "_msgtime_mutex", "_last_bytes_received")
#: paho's clock for its keepalive.
_clock: Callable[[], float] = getattr(paho, "time_func", time.monotonic)


def _fresh_packet() -> dict[str, Any]:
    """paho's state of a packet not yet begun."""
    return {"command": 0, "have_remaining": 0, "remaining_count": [], "remaining_mult": 1,
            "remaining_length": 0, "packet": bytearray(b""), "to_process": 0, "pos": 0}


class _CappedClient(paho.Client):
    """paho's client with a cap on the size of an incoming packet (see the module doc).

    Instances are made by ``cap``, which turns aiomqtt's own client into one of these.
    """

    _cap_bytes: int = 0
    _skip_left: int = 0
    _on_oversized: OnOversized | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        packet = self._in_packet
        if (self._cap_bytes and packet["have_remaining"] and not packet["packet"]
                and packet["remaining_length"] > self._cap_bytes):
            # paho has read the fixed header and now asks for the whole body: skip it instead.
            kind, length = packet["command"] & 0xF0, packet["remaining_length"]
            self._skip_left = packet["to_process"]
            self._in_packet = _fresh_packet()  # type: ignore[assignment]
            if self._on_oversized is not None:
                self._on_oversized(kind, length)
            raise BlockingIOError  # paho: nothing more to read now; the next read event skips
        return super()._sock_recv(bufsize)

    def _packet_read(self) -> paho.MQTTErrorCode:
        if self._skip_left:
            return self._skip()
        return super()._packet_read()

    def _skip(self) -> paho.MQTTErrorCode:
        """Read past the oversized packet, a chunk at a time; AGAIN until it is all gone."""
        for _ in range(SKIP_CHUNKS_PER_EVENT):
            try:
                data = super()._sock_recv(min(self._skip_left, SKIP_CHUNK))
            except BlockingIOError:
                return paho.MQTTErrorCode.MQTT_ERR_AGAIN
            except OSError:
                return paho.MQTTErrorCode.MQTT_ERR_CONN_LOST
            if not data:
                return paho.MQTTErrorCode.MQTT_ERR_CONN_LOST
            self._skip_left -= len(data)
            with self._msgtime_mutex:  # the broker is alive: no keepalive timeout while skipping
                self._last_bytes_received = _clock()
            if not self._skip_left:
                return paho.MQTTErrorCode.MQTT_ERR_SUCCESS
        return paho.MQTTErrorCode.MQTT_ERR_AGAIN


def cap(client: aiomqtt.Client, max_bytes: int, on_oversized: OnOversized | None = None) -> aiomqtt.Client:
    """``client`` with incoming packets of more than ``max_bytes`` (after the fixed header) dropped."""
    inner = client._client  # noqa: SLF001 - aiomqtt has no hook for it
    missing = [n for n in _METHODS if not hasattr(paho.Client, n)]
    missing += [n for n in _STATE if not hasattr(inner, n)]
    if not missing and set(inner._in_packet) != set(_fresh_packet()):
        missing = ["the packet state this module resets"]
    if missing or type(inner) is not paho.Client:
        what = ", ".join(missing) if missing else f"a {type(inner).__name__}, not paho's Client"
        raise RuntimeError(f"cannot cap the MQTT client's incoming packets ({what}): a paho-mqtt release "
                           "chargepoint does not know")
    inner.__class__ = _CappedClient
    assert isinstance(inner, _CappedClient)
    inner._cap_bytes = max_bytes
    inner._skip_left = 0
    inner._on_oversized = on_oversized
    return client
