"""The CLI's side of the control API (see control.py for the protocol).

A small blocking client: the CLI does one thing at a time, so plain sockets
are the simplest correct choice here (the daemon's side is asyncio). Failures
to reach the daemon are told apart, because each has a different fix: the
daemon is not running (no socket, or nobody listening on it), or the user may
not use the socket (not in the group that owns it: the configuration's
``[control] group`` when the CLI was given ``--config``, else the group the
socket belongs to, read from the socket itself).

The daemon closes a connection that has been idle for a minute and refuses
clients over its limit with the error ``busy``: a long-lived client (``status
--watch`` with a long interval) reconnects before it asks again, and an error
line sent just before the daemon closed is read rather than lost to EPIPE.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import itertools
import json
import os
import socket
from pathlib import Path
from typing import Any

from chargepoint.control.server import PROTOCOL_VERSION

DEFAULT_SOCKET = "/run/chargepoint/control.sock"
#: Longest response accepted (bytes): a full status or log listing is far smaller.
MAX_RESPONSE = 8 * 1024 * 1024


class Unreachable(Exception):
    """The daemon cannot be asked; ``reason`` is not_running, permission, timeout or protocol."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class RemoteError(Exception):
    """The daemon answered with an error value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def resolve_socket(option: str | None, config_path: str | None) -> str:
    """--socket, else $CHARGEPOINT_SOCKET, else the configuration's [control] socket, else the default.

    A configuration file that is not valid raises ``ConfigError`` (file, key, reason).
    """
    if option:
        return option
    from_env = os.environ.get("CHARGEPOINT_SOCKET")
    if from_env:
        return from_env
    if config_path:
        from chargepoint.config import load

        return load(config_path).control.socket
    return DEFAULT_SOCKET


def configured_group(config_path: str | None) -> str | None:
    """The ``[control] group`` of the configuration file, if one was given and is valid.

    Only for telling a user which group to join: an invalid file is reported
    where the socket is resolved, not here.
    """
    if not config_path:
        return None
    from chargepoint.config import ConfigError, load

    with contextlib.suppress(ConfigError, OSError):
        return load(config_path).control.group
    return None


class Client:
    """One connection to the daemon's control socket.

    ``group`` is the configured ``[control] group`` when known, for the message
    when the user may not use the socket.
    """

    def __init__(self, path: str, timeout_s: float = 30.0, group: str | None = None) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self.group = group
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._ids = itertools.count(1)

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout_s)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise _unreachable(self.path, exc, self.group) from None
        self._sock = sock

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""

    def _closed_by_daemon(self) -> bool:
        """Whether the daemon has closed this connection (it closes idle ones), without waiting.

        Checked before a request is sent, so nothing is sent twice: a request on a
        connection found closed is sent on a new one.
        """
        assert self._sock is not None
        if self._buffer:
            return False
        self._sock.setblocking(False)  # with a timeout, recv would first wait for data
        try:
            return self._sock.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
        finally:
            self._sock.settimeout(self.timeout_s)

    def request(self, command: str, timeout_s: float | None = None, **args: Any) -> Any:
        """Send one request and return its result; RemoteError for an error answer."""
        if self._sock is not None and self._closed_by_daemon():
            self.close()
        if self._sock is None:
            self.connect()
        assert self._sock is not None
        request_id = next(self._ids)
        line = json.dumps({"v": PROTOCOL_VERSION, "id": request_id, "cmd": command,
                           "args": {k: v for k, v in args.items() if v is not None}})
        self._sock.settimeout(timeout_s or self.timeout_s)
        try:
            try:
                self._sock.sendall(line.encode() + b"\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # closed at once: read why (busy) if the daemon said it; else "closed" below
            response = self._read_line()
        except TimeoutError:
            raise Unreachable("timeout", f"the daemon did not answer {command} within "
                                         f"{timeout_s or self.timeout_s:g} s") from None
        except OSError as exc:
            raise Unreachable("not_running", f"the connection to the daemon broke: "
                                             f"{exc.strerror or exc}") from None
        try:
            message = json.loads(response)
        except ValueError:
            raise Unreachable("protocol", f"the daemon's answer is not JSON: {response[:80]!r}") from None
        if message.get("v") != PROTOCOL_VERSION:
            raise Unreachable("protocol", f"the daemon speaks protocol version {message.get('v')!r}, "
                                          f"this CLI {PROTOCOL_VERSION}: update one of them")
        if not message.get("ok"):
            error = message.get("error") or {}
            raise RemoteError(str(error.get("code", "error")), str(error.get("message", "failed")))
        return message.get("result")

    def _read_line(self) -> bytes:
        assert self._sock is not None
        while b"\n" not in self._buffer:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise Unreachable("not_running", "the daemon closed the connection (is it stopping?)")
            self._buffer += chunk
            if len(self._buffer) > MAX_RESPONSE:
                raise Unreachable("protocol", "the daemon's answer is too long")
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line


#: How to ask a daemon that listens elsewhere: the socket tried is named before it.
ELSEWHERE = ("; a daemon on another socket: give --socket PATH, or --config FILE (its [control] socket), "
             "or set CHARGEPOINT_SOCKET")


def _unreachable(path: str, exc: OSError, group: str | None = None) -> Unreachable:
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM):
        return Unreachable("permission", _permission_message(path, group))
    if isinstance(exc, FileNotFoundError):
        where = Path(path).parent
        hint = "" if where.exists() else f" ({where} does not exist)"
        return Unreachable("not_running", f"the chargepoint daemon is not running: no control socket at "
                                          f"{path}{hint}; start it with: sudo systemctl start chargepoint"
                                          f"{ELSEWHERE}")
    if isinstance(exc, ConnectionRefusedError):
        return Unreachable("not_running", f"the chargepoint daemon is not running: nothing answers on "
                                          f"{path} (left over from a daemon that stopped); start it with: "
                                          f"sudo systemctl start chargepoint{ELSEWHERE}")
    if isinstance(exc, TimeoutError):
        return Unreachable("timeout", f"the daemon did not accept the connection on {path}")
    return Unreachable("not_running", f"cannot reach the daemon on {path}: {exc.strerror or exc}")


def _permission_message(path: str, configured: str | None) -> str:
    """Which group to join: the configured one if known, else the one that owns the socket.

    The daemon gives the socket the configured group only if that group exists
    (otherwise it keeps its own), so the socket's actual group is named too
    when it differs.
    """
    where, owner = _owning_group(path)
    if configured:
        differs = (f"; {where} itself belongs to group {owner} (the daemon keeps its own group when "
                   f"{configured} does not exist)") if owner and owner != configured else ""
        return (f"permission denied on {path}: add yourself to group {configured}, the configuration's "
                f"[control] group (sudo usermod -aG {configured} $USER, then log in again){differs}")
    if owner:
        return (f"permission denied on {path}: add yourself to the group that owns {where} ({owner}): "
                f"sudo usermod -aG {owner} $USER, then log in again")
    return (f"permission denied on {path}: add yourself to the group that owns the socket "
            f"(ls -l {path} shows it), then log in again")


def _owning_group(path: str) -> tuple[str, str | None]:
    """(what, group name): the socket's group, or its directory's if the socket cannot be seen."""
    for what, target in (("the socket", Path(path)), (str(Path(path).parent), Path(path).parent)):
        try:
            gid = target.stat().st_gid
        except OSError:
            continue
        try:
            return what, grp.getgrgid(gid).gr_name
        except KeyError:
            return what, str(gid)
    return "the socket", None
