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
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import grp
import json
import logging
import os
import socket
import struct
from pathlib import Path
from typing import Any

from chargepoint.control.commands import AUDITED, COMMANDS, PROTOCOL_VERSION
from chargepoint.control.errors import ControlError
from chargepoint.control.service import StationService

__all__ = ["PROTOCOL_VERSION", "ControlError", "ControlServer"]

log = logging.getLogger(__name__)

#: Longest request line accepted (bytes).
MAX_REQUEST = 64 * 1024


# -------------------------------------------------------------------- server
class ControlServer:
    """Serves the control socket for one daemon."""

    def __init__(self, service: StationService, path: str | None = None, group: str | None = None) -> None:
        self.service = service
        self.path = Path(path or service.config.control.socket)
        self.group = group or service.config.control.group
        self._server: asyncio.base_events.Server | None = None
        self._inode: int | None = None
        self._clients: set[asyncio.Task[None]] = set()

    async def start(self) -> bool:
        """Bind the socket; False (logged) if it cannot be served. The station runs either way."""
        try:
            sock = await asyncio.to_thread(self._bind)
        except OSError as exc:
            log.error("control socket %s not served: %s; the chargepoint CLI cannot reach this "
                      "daemon", self.path, exc.strerror or exc)
            return False
        except ControlError as exc:
            log.error("control socket %s not served: %s", self.path, exc.message)
            return False
        self._server = await asyncio.start_unix_server(self._serve, sock=sock, limit=MAX_REQUEST)
        log.info("control socket %s ready", self.path)
        return True

    def _bind(self) -> socket.socket:
        """Bind under a temporary name, set mode and group, then move into place,
        so the socket is never reachable with looser permissions."""
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
            os.replace(temporary, path)
            sock.listen(16)
            sock.setblocking(False)
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
        if self._server is not None:
            self._server.close()
            for task in list(self._clients):
                task.cancel()
            await asyncio.gather(*self._clients, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None
        if self._inode is not None:
            await asyncio.to_thread(self._unlink)

    def _unlink(self) -> None:
        """Remove the socket, unless another daemon has put its own there since."""
        with contextlib.suppress(OSError):
            if self.path.stat().st_ino == self._inode:
                self.path.unlink()
        self._inode = None

    # ---------------------------------------------------------- connections
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        peer = _peer(writer)
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the limit
                    await _write(writer, _error(None, "bad_request",
                                                f"request longer than {MAX_REQUEST} bytes"))
                    return
                if not line:
                    return
                if not line.strip():
                    continue
                await _write(writer, await self.answer(line, peer))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._clients.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

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


def _peer(writer: asyncio.StreamWriter) -> str:
    """``uid N (pid M)`` of the client, from SO_PEERCRED, for the log."""
    sock = writer.get_extra_info("socket")
    try:
        pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                              struct.calcsize("3i")))
    except (OSError, AttributeError, struct.error):
        return ""
    return f"uid {uid} (pid {pid})"


def _brief(args: dict[str, Any], secret_keys: tuple[str, ...]) -> str:
    shown = {k: ("(redacted)" if k == "value" and args.get("key") in secret_keys else v)
             for k, v in args.items()}
    return json.dumps(shown, separators=(",", ":")) if shown else ""


async def _write(writer: asyncio.StreamWriter, response: dict[str, Any]) -> None:
    writer.write(json.dumps(response, default=_json_default).encode() + b"\n")
    await writer.drain()


def _json_default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _error(request_id: Any, code: str, message: str) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "id": request_id, "ok": False,
            "error": {"code": code, "message": message}}


