"""The local control API: how a technician's ``chargepoint`` command reaches the daemon.

The daemon serves a Unix socket (never TCP: nothing listens on the network for
it), mode 0660, group ``chargepoint`` when that group exists (else the
daemon's own group, said in the log). Who may use the socket may operate the
station, so membership of that group is the permission.

The protocol is newline-delimited JSON, one request and one response per line,
in order, on a connection that may carry many requests (``status --watch``)::

    -> {"v": 1, "id": 7, "cmd": "status", "args": {"connector": 1}}
    <- {"v": 1, "id": 7, "ok": true, "result": {...}}
    <- {"v": 1, "id": 8, "ok": false, "error": {"code": "refused", "message": "..."}}

``v`` is the protocol version (``PROTOCOL_VERSION``); a request of another
version is answered with the error ``unsupported_version``. Errors are values
with a code and a message meant for a person. The commands are the keys of
``commands.COMMANDS``; their arguments and results are described in README.md
("Operating the station") and checked by tests/integration/test_cli_commands.py.

Nothing here blocks the event loop: socket I/O is asyncio, file system work
(creating the socket, the database checks) runs in threads, and the hardware
is reached only through the safety loop (``selftest.py`` for the output tests).

The socket must not be able to take the station down. A test lab held 1,100
idle connections open: the daemon ran out of file descriptors, the CSMS link
failed for 30 s with "Too many open files" and asyncio's own accept loop
logged a traceback for every attempt (88 MB in 45 s). So the server here
accepts in its own loop and limits what clients can hold: at most
``max_clients`` connections (one more gets the error ``busy`` and is closed),
none while the process is within ``fd_reserve`` descriptors of its
RLIMIT_NOFILE (those are for the OCPP link, the state database and the
meters), and none that stays silent for ``idle_timeout_s`` (``status
--watch`` asks every few seconds; the CLI reconnects when an idle connection
was closed). Refusals and accept errors are logged at most once a minute,
with a count.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import grp
import json
import logging
import os
import resource
import socket
import struct
import time
from pathlib import Path
from typing import Any

from chargepoint.control import card_commands  # noqa: F401 - registers the cards commands
from chargepoint.control.commands import AUDITED, COMMANDS, PROTOCOL_VERSION
from chargepoint.control.errors import ControlError
from chargepoint.control.service import StationService

__all__ = ["PROTOCOL_VERSION", "ControlError", "ControlServer"]

log = logging.getLogger(__name__)

#: Longest request line accepted (bytes).
MAX_REQUEST = 64 * 1024
#: Control clients served at once: a technician's shell or two, a watch, a script, with room to spare.
MAX_CLIENTS = 32
#: A connection with no request for this long is closed, so a forgotten ``nc`` does not hold a
#: descriptor for ever (``status --watch`` asks every second by default; after a longer
#: ``--interval`` the CLI finds its connection closed and opens a new one).
IDLE_TIMEOUT_S = 60.0
#: Connections the kernel queues before they are accepted (capped by net.core.somaxconn).
BACKLOG = 128
#: Descriptors kept for the rest of the daemon (OCPP link and its reconnects, DNS, the state
#: database with its WAL, serial meters, GPIO): no control client is accepted within this many
#: of RLIMIT_NOFILE's soft limit.
FD_RESERVE = 64
#: After an accept error (out of descriptors or memory), wait this long before the next accept.
ACCEPT_RETRY_S = 1.0
#: A repeating refusal or accept error is logged at most once per this many seconds.
LOG_EVERY_S = 60.0


# -------------------------------------------------------------------- server
class ControlServer:
    """Serves the control socket for one daemon.

    The limits are arguments so a test can use a cap of 3 or an idle timeout of
    0.2 s; the daemon uses the module's defaults.
    """

    def __init__(self, service: StationService, path: str | None = None, group: str | None = None, *,
                 max_clients: int = MAX_CLIENTS, idle_timeout_s: float = IDLE_TIMEOUT_S,
                 backlog: int = BACKLOG, fd_reserve: int = FD_RESERVE,
                 accept_retry_s: float = ACCEPT_RETRY_S) -> None:
        self.service = service
        self.path = Path(path or service.config.control.socket)
        self.group = group or service.config.control.group
        self.max_clients = max_clients
        self.idle_timeout_s = idle_timeout_s
        self.backlog = backlog
        self.fd_reserve = fd_reserve
        self.accept_retry_s = accept_retry_s
        self._sock: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._inode: int | None = None
        self._clients: set[asyncio.Task[None]] = set()
        #: Connections refused (busy) and accepts that failed, since start; for tests and the log.
        self.refused = 0
        self.accept_errors = 0
        self._refusals = _Throttled("control clients refused")
        self._accept_failures = _Throttled("control socket accept errors")

    @property
    def clients(self) -> int:
        """Control connections being served now."""
        return len(self._clients)

    async def start(self) -> bool:
        """Bind the socket; False (logged) if it cannot be served. The station runs either way."""
        try:
            self._sock = await asyncio.to_thread(self._bind)
        except OSError as exc:
            log.error("control socket %s not served: %s; the chargepoint CLI cannot reach this "
                      "daemon", self.path, exc.strerror or exc)
            return False
        except ControlError as exc:
            log.error("control socket %s not served: %s", self.path, exc.message)
            return False
        self._acceptor = asyncio.ensure_future(self._accept_loop(self._sock))
        log.info("control socket %s ready (at most %d clients, idle ones closed after %g s)",
                 self.path, self.max_clients, self.idle_timeout_s)
        return True

    def _bind(self) -> socket.socket:
        """Bind under a temporary name, set mode and group, listen, then move into place,
        so the socket is never reachable with looser permissions nor refused once visible."""
        path = self.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if _listening(path):
            raise ControlError("in_use", "another daemon is serving it")
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(str(temporary))
            os.chmod(temporary, 0o660)
            self._set_group(temporary)
            # Listen before the socket appears under its name: a client that sees the
            # path is never refused in between.
            sock.listen(self.backlog)
            sock.setblocking(False)
            os.replace(temporary, path)
        except BaseException:
            sock.close()
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
        self._inode = path.stat().st_ino
        return sock

    def _set_group(self, path: Path) -> None:
        try:
            gid = grp.getgrnam(self.group).gr_gid
        except KeyError:
            own = grp.getgrgid(os.getegid()).gr_name if _has_group(os.getegid()) else str(os.getegid())
            log.info("group %s does not exist: the control socket keeps the daemon's group %s "
                     "(create the group and add technicians to it; see README.md)", self.group, own)
            return
        if path.stat().st_gid == gid:
            return  # the service runs with that group already (and its seccomp filter refuses chown)
        try:
            os.chown(path, -1, gid)
        except PermissionError:
            log.warning("cannot give the control socket to group %s (is the daemon's user a member?); "
                        "it keeps the daemon's group", self.group)

    async def close(self) -> None:
        if self._acceptor is not None:
            self._acceptor.cancel()
            await asyncio.gather(self._acceptor, return_exceptions=True)
            self._acceptor = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            self._refusals.summary()
            self._accept_failures.summary()
        if self._inode is not None:
            await asyncio.to_thread(self._unlink)

    def _unlink(self) -> None:
        """Remove the socket, unless another daemon has put its own there since."""
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()
        self._inode = None

    # ---------------------------------------------------------- connections
    async def _accept_loop(self, sock: socket.socket) -> None:
        """Accept one connection at a time, refusing those over the limits.

        Not ``asyncio.start_unix_server``: on EMFILE its accept loop logs a traceback
        for every try and schedules a retry per try, which is what flooded the journal.
        """
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _address = await loop.sock_accept(sock)
            except OSError as exc:
                self.accept_errors += 1
                self._accept_failures.warn(f"cannot accept a control client: {exc.strerror or exc}; "
                                           f"retrying every {self.accept_retry_s:g} s")
                await asyncio.sleep(self.accept_retry_s)
                continue
            reason = self._refusal()
            if reason is not None:
                self._refuse(conn, reason)
                continue
            task = asyncio.ensure_future(self._serve_socket(conn))
            self._clients.add(task)
            task.add_done_callback(self._clients.discard)

    def _refusal(self) -> str | None:
        """Why a new client cannot be served now, or None."""
        if len(self._clients) >= self.max_clients:
            return (f"the daemon serves {self.max_clients} control clients already, the most it serves "
                    "at once; try again later")
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        used = _open_descriptors()
        if soft != resource.RLIM_INFINITY and used is not None and used + self.fd_reserve >= soft:
            return (f"the daemon has {used} of its {soft} file descriptors open and keeps the rest for "
                    "the CSMS link and its state; try again later")
        return None

    def _refuse(self, conn: socket.socket, reason: str) -> None:
        """One error line (if the socket takes it without waiting), then close."""
        self.refused += 1
        peer = _peer(conn)
        with contextlib.suppress(OSError):
            conn.send(json.dumps(_error(None, "busy", reason)).encode() + b"\n")
        conn.close()
        self._refusals.warn(f"control client {peer or '(unknown)'} refused: {reason}")

    async def _serve_socket(self, conn: socket.socket) -> None:
        try:
            reader, writer = await asyncio.open_unix_connection(sock=conn, limit=MAX_REQUEST)
        except OSError:
            conn.close()
            return
        await self._serve(reader, writer)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = _peer(writer.get_extra_info("socket"))
        try:
            while True:
                try:
                    line = await asyncio.wait_for(reader.readline(), self.idle_timeout_s)
                except TimeoutError:
                    log.info("control client %s closed: no request for %g s", peer or "(unknown)",
                             self.idle_timeout_s)
                    return
                except ValueError:  # longer than the limit
                    await self._write(writer, _error(None, "bad_request",
                                                     f"request longer than {MAX_REQUEST} bytes"))
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                await self._write(writer, await self.answer(line, peer))
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _write(self, writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
        """Send one response; a client that does not read it within the idle timeout is dropped
        (TimeoutError), so it cannot hold its slot by never reading."""
        writer.write(json.dumps(response, default=_json_default).encode() + b"\n")
        await asyncio.wait_for(writer.drain(), self.idle_timeout_s)

    async def answer(self, line: bytes, peer: str = "") -> dict[str, Any]:
        """The response to one request line."""
        try:
            request = json.loads(line)
        except ValueError as exc:
            return _error(None, "bad_request", f"not JSON: {exc}")
        if not isinstance(request, dict):
            return _error(None, "bad_request", "a request is a JSON object")
        request_id = request.get("id")
        version = request.get("v")
        if version != PROTOCOL_VERSION:
            return _error(request_id, "unsupported_version",
                          f"protocol version {version!r} is not supported; this daemon speaks "
                          f"{PROTOCOL_VERSION} (is the CLI from another release?)")
        command = request.get("cmd")
        args = request.get("args") or {}
        if not isinstance(args, dict):
            return _error(request_id, "bad_request", "args must be a JSON object")
        handler = COMMANDS.get(command) if isinstance(command, str) else None
        if handler is None:
            return _error(request_id, "unknown_command",
                          f"unknown command {command!r}; known: {', '.join(sorted(COMMANDS))}")
        if command in AUDITED:
            log.info("control: %s by %s %s", command, peer or "a local user",
                     _brief(args, self.service.secret_keys))
        try:
            result = await handler(self.service, args)
        except ControlError as exc:
            return _error(request_id, exc.code, exc.message)
        except Exception as exc:
            log.exception("control command %s failed", command)
            return _error(request_id, "internal", f"{type(exc).__name__}: {exc}")
        return {"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result}


def _listening(path: Path) -> bool:
    """Whether a live server answers on ``path`` (a leftover file from a crash does not)."""
    if not path.exists():
        return False
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except OSError:
        return False
    finally:
        probe.close()
    return True


def _has_group(gid: int) -> bool:
    try:
        grp.getgrgid(gid)
    except KeyError:
        return False
    return True


def _peer(sock: Any) -> str:
    """``uid N (pid M)`` of the client, from SO_PEERCRED, for the log."""
    try:
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
    except (OSError, AttributeError, struct.error):
        return ""
    return f"uid {uid} (pid {pid})"


def _brief(args: dict[str, Any], secret_keys: frozenset[str]) -> str:
    """The arguments for the audit line; a password's value redacted, under whichever name it was given."""
    secret = str(args.get("key", "")).strip().lower() in secret_keys
    shown = {k: ("(redacted)" if k == "value" and secret else v)
             for k, v in args.items()}
    return json.dumps(shown, separators=(",", ":")) if shown else ""


def _open_descriptors() -> int | None:
    """How many file descriptors this process has open (None where /proc cannot say).

    Listing /proc/self/fd costs tens of microseconds for a few hundred entries, and it
    runs only when a client is about to be admitted, so the count is exact rather than
    tracked: the OCPP link, the store and the meters open and close their own.
    """
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus the listing's own descriptor
    except OSError:
        return None


class _Throttled:
    """A warning that can repeat thousands of times a second, logged once per LOG_EVERY_S.

    The first occurrence is logged at once; later ones within the minute are counted
    and the count goes with the next line (or the summary when the server closes),
    so the journal keeps one line per minute however hard the socket is hammered.
    """

    def __init__(self, what: str, every_s: float = LOG_EVERY_S) -> None:
        self.what = what
        self.every_s = every_s
        self._logged_at: float | None = None
        self._unlogged = 0

    def warn(self, message: str) -> None:
        now = time.monotonic()
        if self._logged_at is not None and now - self._logged_at < self.every_s:
            self._unlogged += 1
            return
        more = (f" ({self._unlogged} more {self.what} in the last {now - self._logged_at:.0f} s)"
                if self._unlogged and self._logged_at is not None else "")
        log.warning("%s%s", message, more)
        self._logged_at = now
        self._unlogged = 0

    def summary(self) -> None:
        if self._unlogged:
            log.warning("%d more %s not logged one by one", self._unlogged, self.what)
            self._unlogged = 0


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _error(request_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": request_id, "ok": False,
            "error": {"code": code, "message": message}}


