"""The supervisor's end of the channel: a Unix socket, peer credentials, frames in, answers out.

Who may do what is decided by the peer's uid as the kernel reports it
(SO_PEERCRED), never by anything the peer says: the daemon's uid controls (one
connection at a time: a newer one replaces an older, as a restarted daemon's
does), root may read the state (the CLI's diagnostics), anyone else is told so
and disconnected. Frames are read in bounded pieces; an oversized or malformed
frame is answered with an error and skipped, and the connection stays up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chargepoint.supervisor import wire
from chargepoint.supervisor.station import SafetyStation
from chargepoint.supervisor.wire import WireError

log = logging.getLogger(__name__)

#: A peer that does not read its events is dropped once this much waits for it.
MAX_BACKLOG = 256 * 1024


def peer_uid(sock: socket.socket) -> int:
    """The connecting process's uid as the kernel saw it at connect()."""
    data = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", data)
    return uid


class Peer:
    """One connected client and what it may do."""

    def __init__(self, writer: asyncio.StreamWriter, uid: int, may_control: bool) -> None:
        self.writer = writer
        self.uid = uid
        #: The daemon's uid: it controls once its hello asks to (not read-only).
        self.may_control = may_control
        self.control = False
        self.closed = False
        #: Its hello is answered: only then do events go to it, so the first line a peer reads is
        #: that answer (an event in its place made the daemon think nobody was there).
        self.greeted = False

    def send(self, message: dict[str, Any]) -> None:
        if self.closed:
            return
        transport = self.writer.transport
        if transport.get_write_buffer_size() > MAX_BACKLOG:
            log.warning("channel peer uid %d does not read its events; disconnected", self.uid)
            self.close()
            return
        self.writer.write(wire.encode(message))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


class ChannelServer:
    """Serves a ``SafetyStation`` on a Unix socket."""

    def __init__(self, station: SafetyStation, path: str, controller_uid: int,
                 info: Callable[[], dict[str, Any]]) -> None:
        self.station = station
        self.path = path
        self.controller_uid = controller_uid
        self._info = info
        self._server: asyncio.AbstractServer | None = None
        self._peers: set[Peer] = set()
        self._controller: Peer | None = None
        #: The connections' tasks, so that ``close`` lets each end by itself (see there).
        self._serving: set[asyncio.Task[None]] = set()
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        #: (device, inode) of the socket file this server made: ``close`` removes that file only.
        self._socket_file: tuple[int, int] | None = None
        #: Counts for the status: refused connections and bad requests since the start.
        self.refused = 0
        self.bad_requests = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        _remove_stale(self.path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, self.path, limit=wire.MAX_FRAME)
        self._socket_file = _identity(self.path)
        # Anyone may connect; SO_PEERCRED decides what a connection may do.
        os.chmod(self.path, 0o666)
        for c in self.station.connectors.values():
            c.evse.on_status = self._status_callback(c.id)

    def _status_callback(self, connector_id: int) -> Callable[[Any], None]:
        loop = self._loop
        assert loop is not None
        station_first = self.station.connectors[connector_id].evse.on_status

        def changed(status: Any) -> None:  # the safety loop's thread: hand over, never wait
            if station_first is not None:
                station_first(status)  # the station's rules, in this thread, before the next step
            with contextlib.suppress(RuntimeError):  # the event loop is closing
                loop.call_soon_threadsafe(self.publish_connector, connector_id)
        return changed

    async def close(self) -> None:
        """Stop listening, close every connection and let its task end on the EOF that follows.

        A connection task still waiting when the event loop ends is cancelled by asyncio.run, and
        Python 3.11's stream protocol then logs "Exception in callback" with a traceback for it: a
        stop that looked like a crash in the journal. Listening stops first, or a client that
        reconnects at once (the daemon's end does) would open a connection nobody waits for."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for peer in list(self._peers):
            peer.close()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.0
        while self._serving and loop.time() < deadline:
            await asyncio.wait(list(self._serving), timeout=deadline - loop.time())
        if self._server is not None:
            await self._server.wait_closed()
        # Only the file this server made: a start that failed, or a path another supervisor bound
        # since, is left alone (removing a live supervisor's socket cuts its daemon off for good).
        with contextlib.suppress(OSError):
            if self._socket_file is not None and _identity(self.path) == self._socket_file:
                os.unlink(self.path)

    @property
    def controller_connected(self) -> bool:
        return self._controller is not None

    # ----------------------------------------------------------------- events
    def publish_connector(self, connector_id: int) -> None:
        c = self.station.connectors[connector_id]
        self._broadcast({"event": "state", **self.station.connector_state(c)})

    def publish_supervisor(self) -> None:
        self._broadcast({"event": "supervisor", **self._info()})

    def _broadcast(self, message: dict[str, Any]) -> None:
        for peer in list(self._peers):
            if peer.greeted:
                peer.send(message)

    # ----------------------------------------------------------------- a peer
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._serving.add(task)  # type: ignore[arg-type]
        try:
            await self._serve_peer(reader, writer)
        finally:
            self._serving.discard(task)  # type: ignore[arg-type]

    async def _serve_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:  # accepted just before listening stopped
            writer.close()
            return
        sock = writer.get_extra_info("socket")
        try:
            uid = peer_uid(sock)
        except OSError:
            writer.close()
            return
        may_control = uid == self.controller_uid
        if not may_control and uid != 0:
            self.refused += 1
            log.warning("channel: connection from uid %d refused (only uid %d controls, root reads)",
                        uid, self.controller_uid)
            writer.write(wire.encode(wire.error(None, "forbidden", f"uid {uid} may not use this channel")))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        peer = Peer(writer, uid, may_control)
        self._peers.add(peer)
        try:
            await self._read_frames(reader, peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._peers.discard(peer)
            peer.close()
            if self._controller is peer:
                self._controller = None
                if self.station.leaving:  # it said so: a stop or a restart, nothing to warn about
                    log.info("channel: the daemon left (%s)", "stop" if self.station.leaving_for_good
                             else "restart")
                else:
                    log.warning("channel: the daemon disconnected")
                self.station.detach()

    def _take_control(self, peer: Peer) -> None:
        old = self._controller
        peer.control = True
        self._controller = peer
        if old is not None:
            log.warning("channel: a new daemon connection replaces the old one")
            self._controller = peer
            old.close()
        else:
            log.info("channel: daemon attached")
        self.station.attach()

    async def _read_frames(self, reader: asyncio.StreamReader, peer: Peer) -> None:
        buffer = b""
        discarding = False
        while not peer.closed:
            chunk = await reader.read(wire.MAX_FRAME)
            if not chunk:
                return
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                if discarding:  # the tail of an oversized frame
                    discarding = False
                    continue
                self._frame(line, peer)
            if len(buffer) > wire.MAX_FRAME:
                if not discarding:
                    too_long = WireError("bad_frame", f"frame longer than {wire.MAX_FRAME} bytes")
                    self._refuse(peer, None, too_long)
                discarding, buffer = True, b""

    def _frame(self, line: bytes, peer: Peer) -> None:
        if not line.strip():
            return
        message: Any = None
        try:
            message = wire.decode(line)
            request = wire.parse_request(message)
            if request.op == "hello" and peer.may_control and not request.fields["read_only"] \
                    and not peer.control:
                self._take_control(peer)
            fields = self.station.handle(request, control=peer.control and peer is self._controller)
        except WireError as exc:
            self._refuse(peer, wire.request_id_of(message), exc)
            return
        if request.op == "hello":
            fields = {"supervisor": self._info(), "role": "control" if peer.control else "read", **fields}
        peer.send(wire.answer(request.id, **fields))
        peer.greeted = peer.greeted or request.op == "hello"

    def _refuse(self, peer: Peer, request_id: int | None, exc: WireError) -> None:
        self.bad_requests += 1
        if self.bad_requests <= 20 or self.bad_requests % 1000 == 0:  # counted, not repeated
            log.warning("channel: request refused (%s: %s), %d so far", exc.code, exc.message,
                        self.bad_requests)
        peer.send(wire.error(request_id, exc.code, exc.message))


def _identity(path: str) -> tuple[int, int]:
    info = os.lstat(path)
    return info.st_dev, info.st_ino


def _remove_stale(path: str) -> None:
    """A socket left by a killed supervisor is removed; anything else at the path is an error."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # nobody listens: left over
        return
    finally:
        probe.close()
    raise OSError(f"another supervisor already listens on {path}")
