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
``COMMANDS``; their arguments and results are described in README.md
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
import math
import os
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import chargepoint
from chargepoint.control import selftest
from chargepoint.core.events import StopReason
from chargepoint.core.settings import SetResult

if TYPE_CHECKING:
    from chargepoint.app.daemon import Daemon
    from chargepoint.core.connector import ConnectorState as Connector

log = logging.getLogger(__name__)

PROTOCOL_VERSION = 1
#: Longest request line accepted (bytes).
MAX_REQUEST = 64 * 1024
#: Events and frames kept for ``logs``.
RECORD_ENTRIES = 1000
#: Longest frame text kept (characters).
FRAME_TEXT_MAX = 4000


class ControlError(Exception):
    """A request that cannot be done; ``code`` for scripts, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# ------------------------------------------------------------------ recorder
class Recorder:
    """Recent events (log records) and OCPP frames, for ``chargepoint logs``.

    Events come from a logging handler on the root logger (INFO and above);
    frames from a thin wrapper around the CSMS connection that sees every text
    frame in and out. Both are kept in one bounded ring, numbered, so a client
    can ask for what came after the last entry it saw.
    """

    def __init__(self, maxlen: int = RECORD_ENTRIES) -> None:
        self.entries: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._seq = 0
        self._lock = threading.Lock()  # events come from every thread (the safety loops log too)
        self._handler = _RecordHandler(self)

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._seq += 1
            entry["seq"] = self._seq
            self.entries.append(entry)

    @property
    def last_seq(self) -> int:
        return self._seq

    def frame(self, direction: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if "AuthorizationKey" in text:
            text = re.sub(r'("value"\s*:\s*)"[^"]*"', r'\1"(redacted)"', text)
        if len(text) > FRAME_TEXT_MAX:
            text = text[:FRAME_TEXT_MAX] + "..."
        self.add({"time": time.time(), "kind": "frame", "direction": direction, "text": text})

    def tap(self, ws: Any) -> Any:
        """The connection as the OCPP adapter should use it: frames are recorded."""
        return _FrameTap(ws, self)

    def attach(self) -> None:
        logging.getLogger().addHandler(self._handler)

    def detach(self) -> None:
        logging.getLogger().removeHandler(self._handler)

    def select(self, *, kind: str = "all", since: int = 0, limit: int = 50,
               min_level: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            entries = list(self.entries)
        chosen = [e for e in entries
                  if e["seq"] > since and (kind == "all" or e["kind"] + "s" == kind)
                  and (e["kind"] != "event" or e["levelno"] >= min_level)]
        return chosen[-limit:] if limit > 0 else chosen

    def last_error(self, prefix: str) -> str | None:
        """The newest warning or error logged by a logger under ``prefix``."""
        with self._lock:
            entries = list(self.entries)
        for entry in reversed(entries):
            if entry["kind"] == "event" and entry["levelno"] >= logging.WARNING \
                    and entry["source"].startswith(prefix):
                return str(entry["text"])
        return None


class _RecordHandler(logging.Handler):
    def __init__(self, recorder: Recorder) -> None:
        super().__init__(logging.INFO)
        self.recorder = recorder

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad log call must not break logging
            text = str(record.msg)
        self.recorder.add({"time": record.created, "kind": "event", "level": record.levelname,
                           "levelno": record.levelno, "source": record.name, "text": text})


class _FrameTap:
    """Passes a websocket connection through, recording the frames."""

    def __init__(self, ws: Any, recorder: Recorder) -> None:
        self._ws = ws
        self._recorder = recorder

    async def recv(self, *args: Any, **kwargs: Any) -> Any:
        message = await self._ws.recv(*args, **kwargs)
        self._recorder.frame("in", message)
        return message

    async def send(self, message: Any, *args: Any, **kwargs: Any) -> Any:
        self._recorder.frame("out", message)
        return await self._ws.send(message, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ws, name)


# -------------------------------------------------------------------- server
class ControlServer:
    """Serves the control socket for one daemon."""

    def __init__(self, daemon: Daemon, path: str | None = None, group: str | None = None) -> None:
        self.daemon = daemon
        self.path = Path(path or daemon.config.control.socket)
        self.group = group or daemon.config.control.group
        self._server: asyncio.base_events.Server | None = None
        self._inode: int | None = None
        self._clients: set[asyncio.Task[None]] = set()
        #: Connectors with an output test (relay/pilot/selftest) running.
        self.testing: set[int] = set()

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
            log.info("control: %s by %s %s", command, peer or "a local user", _brief(args))
        try:
            result = await handler(self, args)
        except ControlError as exc:
            return _error(request_id, exc.code, exc.message)
        except Exception as exc:
            log.exception("control command %s failed", command)
            return _error(request_id, "internal", f"{type(exc).__name__}: {exc}")
        return {"v": PROTOCOL_VERSION, "id": request_id, "ok": True, "result": result}

    # -------------------------------------------------------------- helpers
    def connector(self, args: dict[str, Any], *, default: int | None = 1) -> Connector:
        cid = _int(args, "connector", default)
        connectors = self.daemon.station.connectors
        if cid is None or cid not in connectors:
            raise ControlError("no_connector", f"no connector {cid}; this station has "
                                               f"{', '.join(map(str, connectors))}")
        return connectors[cid]


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


def _brief(args: dict[str, Any]) -> str:
    shown = {k: ("(redacted)" if k == "value" and args.get("key") == "AuthorizationKey" else v)
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


def _int(args: dict[str, Any], name: str, default: int | None) -> int | None:
    value = args.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ControlError("bad_request", f"{name} must be a whole number, not {value!r}")
    return value


def _number(value: float | None, digits: int = 3) -> float | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return round(value, digits)


# ------------------------------------------------------------------ commands
Handler = Callable[[ControlServer, dict[str, Any]], Awaitable[Any]]
COMMANDS: dict[str, Handler] = {}
#: Commands that change something: logged with who asked.
AUDITED = {"start", "stop", "unlock", "availability", "config_set", "fault_clear", "relay_test",
           "pilot_test", "selftest", "sim"}


def command(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS[name] = fn
        return fn
    return register


@command("hello")
async def _hello(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    d = server.daemon
    return {"protocol": PROTOCOL_VERSION, "version": chargepoint.__version__,
            "identity": d.config.station.identity, "commands": sorted(COMMANDS)}


def connection_status(d: Daemon) -> dict[str, Any]:
    adapter = d.adapter
    connected = d.link.connected.is_set()
    if not connected:
        boot = None
    elif adapter is not None and adapter.accepted.is_set():
        boot = "accepted"
    else:
        boot = "pending"
    return {"csms_url": d.config.ocpp.csms_url, "connected": connected, "boot": boot,
            "connections": d.link.connections,
            "security_profile": int(d.settings.get("SecurityProfile")),
            "last_error": d.recorder.last_error("chargepoint.connection")
            or d.recorder.last_error("chargepoint.protocol")}


def queue_status(d: Daemon) -> dict[str, Any]:
    outbox = d.outbox
    head = outbox.head()
    head_info = None
    if head is not None:
        event = head.event
        head_info = {"seq": head.seq, "type": type(event).__name__, "local_id": event.local_id,
                     "connector": event.connector_id, "remote_id": outbox.remote_id(event.local_id)}
    return {"length": len(outbox), "oldest_age_s": _number(outbox.oldest_age(d.clock.time()), 1),
            "head": head_info, "thinned": outbox.thinned, "connected": d.link.connected.is_set()}


def connector_status(d: Daemon, c: Connector, testing: bool = False) -> dict[str, Any]:
    station = d.station
    status = station.status_of(c.id)
    evse = c.evse_status
    resolved = c.limits.resolve()
    session = None
    if c.session is not None:
        tx = c.session.transaction
        transaction = None
        if tx is not None:
            energy = None
            if c.last_reading is not None:
                energy = _number(c.last_reading.energy_import_wh - tx.meter_start_wh, 1)
            transaction = {"local_id": tx.local_id, "remote_id": d.outbox.remote_id(tx.local_id),
                           "started_at": tx.started_at, "meter_start_wh": tx.meter_start_wh,
                           "energy_wh": energy, "stopping": tx.stopping}
        session = {"id_tag": c.session.id_tag, "transaction": transaction}
    reading = c.last_reading
    meter = {"available": c.meter_available, "failures": c.meter_failures, "energy_wh": None,
             "power_w": None, "currents_a": None, "voltages_v": None, "frequency_hz": None,
             "age_s": None}
    if reading is not None:
        meter.update(energy_wh=_number(reading.energy_import_wh, 1), power_w=_number(reading.power_w, 1),
                     currents_a=[_number(v, 2) for v in reading.currents_a],
                     voltages_v=[_number(v, 1) for v in reading.voltages_v],
                     frequency_hz=_number(reading.frequency_hz, 2),
                     age_s=_number(d.clock.time() - reading.timestamp, 1))
    return {
        "id": c.id,
        "ocpp_status": status.status.value,
        "error": status.fault,
        "operative": c.operative,
        "scheduled_operative": c.scheduled_operative,
        "iec_state": evse.cp_state.value if evse is not None and evse.cp_state is not None else None,
        "pwm_duty": evse.pwm_duty if evse else None,
        "offered_a": evse.offered_a if evse else None,
        "contactor": {"closed": evse.contactor_closed if evse else None,
                      "feedback": evse.contactor_feedback if evse else None},
        "faults": sorted(f.value for f in evse.faults) if evse else [],
        "cable_max_a": evse.cable_max_a if evse else None,
        "limit": {"amps": _number(resolved.amps, 1), "binding": resolved.binding,
                  "claims": c.limits.snapshot()},
        "session": session,
        "meter": meter,
        "test_running": testing,
    }


@command("status")
async def _status(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    d = server.daemon
    chosen = args.get("connector")
    connectors = [server.connector(args)] if chosen is not None else list(d.station.connectors.values())
    watchdog = d.watchdog
    return {
        "identity": d.config.station.identity,
        "version": chargepoint.__version__,
        "hal": d.config.hal_backend,
        "time": d.clock.time(),
        "uptime_s": round(time.monotonic() - d.started_monotonic, 1),
        "station_status": d.station.status_of(0).status.value,
        "connection": connection_status(d),
        "queue": queue_status(d),
        "watchdog": {"systemd": bool(watchdog and watchdog.notifier.enabled),
                     "failed": watchdog.failed if watchdog else None},
        "connectors": [connector_status(d, c, c.id in server.testing) for c in connectors],
        "last_errors": [{"time": e["time"], "level": e["level"], "source": e["source"], "text": e["text"]}
                        for e in d.recorder.select(kind="events", limit=5, min_level=logging.WARNING)],
    }


@command("sessions")
async def _sessions(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    d = server.daemon
    limit = _int(args, "limit", 20) or 20
    if not 1 <= limit <= 1000:
        raise ControlError("bad_request", "limit must be 1 to 1000")
    rows = await d.store.call(d.store.recent_sessions, limit) if d.store is not None else []
    finished = []
    for row in rows:
        energy = row["meter_stop_wh"] - row["meter_start_wh"]  # type: ignore[operator]
        finished.append({
            "local_id": row["local_id"], "remote_id": row["remote_id"], "connector": row["connector_id"],
            "id_tag": row["id_tag"], "started_at": row["started_at"], "stopped_at": row["stopped_at"],
            "duration_s": _number(row["stopped_at"] - row["started_at"], 1),  # type: ignore[operator]
            "meter_start_wh": row["meter_start_wh"], "meter_stop_wh": row["meter_stop_wh"],
            "energy_wh": _number(energy, 1), "reason": row["reason"]})
    running = []
    for c in d.station.connectors.values():
        tx = c.transaction
        if tx is None:
            continue
        meter_now = c.last_reading.energy_import_wh if c.last_reading else tx.meter_start_wh
        running.append({"local_id": tx.local_id, "remote_id": d.outbox.remote_id(tx.local_id),
                        "connector": c.id, "id_tag": tx.id_tag, "started_at": tx.started_at,
                        "duration_s": _number(d.clock.time() - tx.started_at, 1),
                        "meter_start_wh": tx.meter_start_wh,
                        "energy_wh": _number(meter_now - tx.meter_start_wh, 1)})
    return {"running": running, "finished": finished}


def _start_refusal(c: Connector | None, d: Daemon) -> str:
    if c is None:
        return "no connector is free (all busy, faulted or inoperative)"
    if not c.operative:
        return f"connector {c.id} is inoperative (chargepoint availability {c.id} operative)"
    if c.session is not None:
        return f"connector {c.id} already has a session for {c.session.id_tag}"
    if c.finishing:
        return f"connector {c.id}: the last EV is still plugged in; unplug it first"
    if c.evse_status is not None and c.evse_status.faults:
        return f"connector {c.id} is faulted ({', '.join(sorted(f.value for f in c.evse_status.faults))})"
    return f"connector {c.id} cannot take a session now"


@command("start")
async def _start(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    d = server.daemon
    id_tag = args.get("id_tag") or d.config.station.free_vend_id_tag
    if not isinstance(id_tag, str) or not 1 <= len(id_tag) <= 20:
        raise ControlError("bad_request", "id_tag must be 1 to 20 characters (an OCPP idTag)")
    authorize = bool(args.get("authorize", False))
    c = server.connector(args) if args.get("connector") is not None else None
    if not d.station.remote_start(id_tag, c.id if c else None, authorize_first=authorize):
        raise ControlError("refused", _start_refusal(c, d))
    if authorize:
        return {"connector": c.id if c else None, "id_tag": id_tag, "status": "Authorizing"}
    chosen = c or next((x for x in d.station.connectors.values()
                        if x.session is not None and x.session.id_tag == id_tag), None)
    plugged = chosen is not None and chosen.plugged
    return {"connector": chosen.id if chosen else None, "id_tag": id_tag, "status": "Accepted",
            "waiting_for_ev": not plugged}


@command("stop")
async def _stop(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    d = server.daemon
    if args.get("connector") is None:
        busy = [c for c in d.station.connectors.values() if c.session is not None]
        if len(busy) != 1:
            raise ControlError("refused", "no session to stop" if not busy else
                               "sessions on several connectors: say which (--connector)")
        c = busy[0]
    else:
        c = server.connector(args)
    session = c.session
    if session is None:
        raise ControlError("refused", f"connector {c.id} has no session")
    tx = session.transaction
    if tx is None:
        await d.station.card_presented(session.id_tag)  # a second tap cancels a waiting session
        return {"connector": c.id, "stopped": "session", "local_id": None, "energy_wh": None}
    if not await d.station.stop_transaction(c.id, StopReason.LOCAL):
        raise ControlError("refused", f"the transaction on connector {c.id} is already stopping")
    energy = (c.last_reading.energy_import_wh - tx.meter_start_wh) if c.last_reading else None
    return {"connector": c.id, "stopped": "transaction", "local_id": tx.local_id,
            "energy_wh": _number(energy, 1)}


@command("unlock")
async def _unlock(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    c = server.connector(args)
    result = await server.daemon.station.unlock(c.id)
    if result != "Unlocked":
        reason = ("this connector has no plug lock (a tethered cable)" if result == "NotSupported"
                  else "the lock's feedback did not confirm unlocking")
        raise ControlError("unlock_failed", f"connector {c.id}: {result}: {reason}")
    return {"connector": c.id, "status": result}


@command("availability")
async def _availability(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    d = server.daemon
    cid = _int(args, "connector", 0)
    operative = args.get("operative")
    if operative is None:
        return {"connectors": [{"id": c.id, "operative": c.operative,
                                "scheduled_operative": c.scheduled_operative}
                               for c in d.station.connectors.values()]}
    if not isinstance(operative, bool):
        raise ControlError("bad_request", "operative must be true or false")
    if cid != 0:
        server.connector(args)
    status = d.station.change_availability(cid or 0, operative)
    return {"connector": cid, "operative": operative, "status": status}


# ------------------------------------------------------------------- config
def file_settings(d: Daemon) -> dict[str, Any]:
    """The configuration file's settings as dotted keys (read-only at run time)."""
    config = d.config
    flat: dict[str, Any] = {"hal.backend": config.hal_backend}
    for section in ("station", "ocpp", "meter", "safety", "simulation", "control"):
        for name, value in dataclasses.asdict(getattr(config, section)).items():
            if name == "authorization_key":
                value = "(set)" if value else ""
            flat[f"{section}.{name}"] = list(value) if isinstance(value, tuple) else value
    for connector in config.connectors:
        for name, value in dataclasses.asdict(connector).items():
            if name != "id":
                flat[f"connectors[{connector.id - 1}].{name}"] = value
    return flat


def _definition_info(d: Daemon, key: str) -> dict[str, Any]:
    definition = d.settings.definitions[key]
    info: dict[str, Any] = {"key": key, "source": "ocpp", "readonly": definition.readonly,
                            "type": definition.kind.__name__}
    if definition.secret:
        info.update(value=None, secret=True, set=bool(d.settings.get(key)))
    else:
        info["value"] = d.settings.get(key)
    return info


@command("config_get")
async def _config_get(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    d = server.daemon
    keys = args.get("keys") or []
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise ControlError("bad_request", "keys must be a list of names")
    files = file_settings(d)
    if not keys:
        found = [_definition_info(d, k) for k in d.settings.definitions]
        found += [{"key": k, "source": "file", "readonly": True, "value": v} for k, v in files.items()]
        return {"keys": found, "unknown": [], "file": d.config.source}
    found, unknown = [], []
    for key in keys:
        if key in d.settings.definitions:
            found.append(_definition_info(d, key))
        elif key in files:
            found.append({"key": key, "source": "file", "readonly": True, "value": files[key]})
        else:
            unknown.append(key)
    return {"keys": found, "unknown": unknown, "file": d.config.source}


def _rejection(d: Daemon, key: str, text: str) -> str:
    """Why Settings.set rejected ``text`` for ``key``, in words."""
    definition = d.settings.definitions[key]
    if definition.readonly:
        return f"{key} is read-only"
    parsed = d.settings._parse(definition, text)  # the same rule, to tell which part failed
    if parsed is not None:
        guard = d.settings.guards.get(key)
        reason = guard(parsed) if guard is not None else None
        return reason or "refused"
    if definition.kind is bool:
        return "must be true or false"
    if definition.kind is int:
        low = "" if definition.low is None else f" from {definition.low}"
        high = "" if definition.high is None else f" to {definition.high}"
        return f"must be a whole number{low}{high}"
    if key == "AuthorizationKey":
        return "must be 32 to 40 hexadecimal digits (16 to 20 bytes)"
    if definition.allowed is not None:
        return (f"must be a comma-separated list of at most {definition.max_items} of: "
                f"{', '.join(definition.allowed)}")
    return "has the wrong format"


@command("config_set")
async def _config_set(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    d = server.daemon
    key, value = args.get("key"), args.get("value")
    if not isinstance(key, str) or not isinstance(value, str):
        raise ControlError("bad_request", "key and value must be strings")
    if key not in d.settings.definitions:
        if key in file_settings(d):
            raise ControlError("read_only", f"{key} is set in the configuration file {d.config.source}: "
                                            "edit it there and restart the daemon")
        raise ControlError("unknown_key", f"unknown key {key!r} (chargepoint config get lists them)")
    result = d.settings.set(key, value)
    if result == SetResult.REJECTED:
        raise ControlError("rejected", f"{key}: {_rejection(d, key, value)}; not changed")
    if result == SetResult.NOT_SUPPORTED:
        raise ControlError("unknown_key", f"unknown key {key!r}")
    info = _definition_info(d, key)
    return {"key": key, "status": result.value, "value": info.get("value")}


@command("queue")
async def _queue(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    return queue_status(server.daemon)


@command("logs")
async def _logs(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    kind = args.get("kind", "all")
    if kind not in ("all", "events", "frames"):
        raise ControlError("bad_request", "kind must be all, events or frames")
    limit = _int(args, "limit", 50) or 0
    since = _int(args, "since", 0) or 0
    entries = server.daemon.recorder.select(kind=kind, since=since, limit=limit)
    return {"entries": [{k: v for k, v in e.items() if k != "levelno"} for e in entries]}


# ---------------------------------------------------------- faults and tests
@command("fault_clear")
async def _fault_clear(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    c = server.connector(args)
    from chargepoint.safety.evse import LATCHED_FAULTS

    before = c.evse.status.faults
    latched = sorted(f.value for f in before & LATCHED_FAULTS)
    if not latched:
        return {"connector": c.id, "cleared": [], "remaining": sorted(f.value for f in before),
                "detail": "no latched fault to clear" + (
                    " (the others clear by themselves once their cause is gone)" if before else "")}
    since = server.daemon.recorder.last_seq  # to find the safety loop's reason below
    # clear_faults re-arms the fault inputs and reads the contactor feedback: hardware I/O.
    cleared = await asyncio.to_thread(c.evse.clear_faults)
    after = c.evse.status.faults
    if not cleared:
        said = [e["text"] for e in server.daemon.recorder.select(kind="events", since=since, limit=0,
                                                                 min_level=logging.WARNING)]
        raise ControlError("refused", f"connector {c.id}: faults not cleared ({', '.join(latched)}): "
                           + (said[-1] if said else "the cause is still present"))
    return {"connector": c.id, "cleared": latched, "remaining": sorted(f.value for f in after),
            "detail": "cleared"}


async def _exclusive(server: ControlServer, c: Connector, test: Callable[[], Awaitable[dict[str, Any]]]
                     ) -> dict[str, Any]:
    if c.id in server.testing:
        raise ControlError("busy", f"a test is already running on connector {c.id}")
    refusal = selftest.output_test_refusal(c)
    if refusal is not None:
        raise ControlError("refused", f"connector {c.id}: {refusal}")
    server.testing.add(c.id)
    try:
        return await test()
    except selftest.TestRefused as exc:
        raise ControlError("refused", f"connector {c.id}: {exc}") from None
    finally:
        server.testing.discard(c.id)


@command("relay_test")
async def _relay_test(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    c = server.connector(args)
    d = server.daemon
    return await _exclusive(server, c, lambda: selftest.relay_test(c, d.clock, d.config.safety))


@command("pilot_test")
async def _pilot_test(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    c = server.connector(args)
    d = server.daemon
    return await _exclusive(server, c, lambda: selftest.pilot_test(c, d.clock, d.config.safety))


@command("selftest")
async def _selftest(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    d = server.daemon
    busy = [cid for cid in d.station.connectors if cid in server.testing]
    if busy:
        raise ControlError("busy", f"a test is already running on connector {busy[0]}")
    server.testing.update(d.station.connectors)
    try:
        return await selftest.run(d, connection_status(d))
    finally:
        server.testing.difference_update(d.station.connectors)


@command("sim")
async def _sim(server: ControlServer, args: dict[str, Any]) -> dict[str, Any]:
    """The simulated EV and card reader, for commissioning the sim station and for demos."""
    d = server.daemon
    worlds = d.hardware.worlds
    if not worlds:
        raise ControlError("refused", "only on the simulated hardware (hal.backend = \"sim\")")
    action = args.get("action")
    c = server.connector(args)
    world = worlds[c.id]
    if action == "plug":
        world.plug_in()
    elif action == "unplug":
        world.unplug()
    elif action == "card":
        id_tag = args.get("id_tag")
        if not isinstance(id_tag, str) or not 1 <= len(id_tag) <= 20:
            raise ControlError("bad_request", "id_tag must be 1 to 20 characters")
        # The station has one reader (connector 1's world holds it); the station picks the connector.
        reader = d.hardware.card_reader
        if reader is None or not hasattr(reader, "tap"):
            raise ControlError("refused", "this station has no simulated card reader")
        reader.tap(id_tag)
    elif action in ("trip", "release"):
        name = args.get("input", "rcd")
        if name not in ("rcd", "emergency_stop"):
            raise ControlError("bad_request", "input must be rcd or emergency_stop")
        if action == "trip":
            world.faults.trip(name)
        if action == "release" or not args.get("hold"):
            world.faults.release(name)  # the condition passes; the trip stays latched
    else:
        raise ControlError("bad_request", "action must be plug, unplug, card, trip or release")
    return {"connector": c.id, "action": action, "ev_state": world.ev.state}
