"""The daemon's end of the channel: the supervisor's connectors as the station core sees them.

``RemoteEvse`` stands where an in-process ``EvseController`` would: the core
asks (``allow``, ``stop``, claims) and reads the status; the asking travels the
channel and the status comes back from the supervisor's state events. A
reader thread receives the events and calls ``on_status`` from that thread,
exactly as the in-process loop's thread does, so the core cannot tell the two
apart. Requests that need an answer (``clear_faults``, output tests, the plug
lock) wait for it in the calling thread; the core calls them from worker
threads, never from its event loop.

When the channel drops, every connector reports the ``supervisor`` fault (the
core stops its transactions and reports Faulted) and the client reconnects
every ``RECONNECT_S``; a restarted supervisor starts safe, and gets the
daemon's claims and wishes again. When the daemon itself restarts, its first
hello returns the supervisor's state: the grants and claims as the previous
daemon left them, so a running transaction can be continued.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chargepoint.safety.heartbeat_check import CheckReport
from chargepoint.safety.output_test import OutputTest
from chargepoint.safety.status import EvseFault, EvseStatus
from chargepoint.safety.ticktimes import TickTimes
from chargepoint.supervisor import wire
from chargepoint.supervisor.claims import RemoteClaims
from chargepoint.supervisor.wire import WireError
from hal.interfaces import PilotLevels

log = logging.getLogger(__name__)

RECONNECT_S = 0.5
#: The supervisor's loop counts as stepping while its last event is younger than this.
HEARD_S = 2.5
#: A simulated station's supervisor gone this long is started anew (systemd does it on a station).
RESTART_AFTER_S = 1.0
#: How long a request waits for its answer.
ANSWER_TIMEOUT_S = 2.0

GONE = EvseStatus(cp_state=None, pwm_duty=100.0, offered_a=0.0, contactor_closed=False,
                  contactor_feedback=None, faults=frozenset({EvseFault.SUPERVISOR}), cable_max_a=None,
                  binding_limit="", charging_allowed=False, timestamp=0.0)


class SupervisorUnavailable(WireError):
    def __init__(self, message: str = "the safety supervisor is not answering") -> None:
        super().__init__("unavailable", message)


class RemotePhases:
    """The supervisor's phase contactor as the core sees it (the shape of ``safety.phases.PhaseSwitch``)."""

    def __init__(self, evse: RemoteEvse, send: Callable[..., int | None]) -> None:
        self._evse = evse
        self._send = send
        #: What the daemon last asked: sent again to a restarted supervisor.
        self.target: int | None = None

    @property
    def configured(self) -> bool:
        return self._evse.status.phases is not None

    @property
    def phases(self) -> int | None:
        return self._evse.status.phases

    def request(self, phases: int) -> str | None:
        """Ask for one or three phases; the supervisor switches when its rules allow (it logs a refusal)."""
        if not self.configured:
            return f"{self._evse.name}: no phase contactor configured ([board.phase_contactor])"
        self.target = phases
        self._send("phases", connector=self._evse.id, phases=phases)
        return None


class RemoteEvse:
    """One connector of the supervisor, with the interface of the in-process safety loop."""

    def __init__(self, client: SupervisorClient, connector_id: int) -> None:
        self._client = client
        self.id = connector_id
        self.name = f"connector-{connector_id}"
        self.limits = RemoteClaims(self._send_claim)
        self.on_status: Callable[[EvseStatus], None] | None = None
        self._status = GONE
        self._levels: PilotLevels | None = None
        self._pp_ohms: float | None = None
        self._output_test = False
        #: The supervisor's heartbeat check, in its words (status, selftest).
        self.heartbeat_check = CheckReport()
        #: What the daemon last asked: sent again to a restarted supervisor.
        self.wanted_allowed = False
        self.operative = True
        self.locked: bool | None = None
        #: The supervisor's step times for this connector (its once-a-second event), for the metrics.
        self.tick_times = TickTimes()
        #: When the supervisor last showed its loop stepping (its state or once-a-second events).
        self.last_heard = 0.0
        self.phases = RemotePhases(self, client.send)

    # -- what the core asks ------------------------------------------------------------------
    def allow(self) -> None:
        self.wanted_allowed = True
        self._client.send("energy", connector=self.id, granted=True)

    def stop(self) -> None:
        self.wanted_allowed = False
        self._client.send("energy", connector=self.id, granted=False)

    def set_operative(self, operative: bool) -> None:
        self.operative = operative
        self._client.send("availability", connector=self.id, operative=operative)

    def clear_faults(self) -> bool:
        try:
            answer = self._client.request("clear_faults", connector=self.id)
        except WireError as exc:
            log.warning("%s: faults not cleared: %s", self.name, exc.message)
            return False
        if not answer.get("cleared"):
            log.warning("%s", answer.get("reason") or f"{self.name}: faults not cleared")
            return False
        return True

    def begin_output_test(self, *, contactor: bool | None = None, duty: float | None = None,
                          hold_s: float = 2.0) -> str | None:
        try:
            self._client.request("output_test", connector=self.id, contactor=contactor, duty=duty,
                                 hold_s=min(hold_s, 60.0))
        except WireError as exc:
            return exc.message
        self._output_test = True
        # A technician's test, not a fault: INFO, as the supervisor logs it on its side.
        log.info("%s: output test: %s", self.name, OutputTest(contactor, duty, 0.0).describe())
        return None

    def end_output_test(self) -> None:
        self._output_test = False
        self._client.send("output_test_end", connector=self.id)

    def _send_claim(self, name: str, amps: float | None) -> None:
        self._client.send("claim", connector=self.id, name=name, amps=amps)

    # -- what the core reads -----------------------------------------------------------------
    @property
    def status(self) -> EvseStatus:
        return self._status

    @property
    def pilot_levels(self) -> PilotLevels | None:
        return self._levels

    @property
    def proximity_ohms(self) -> float | None:
        return self._pp_ohms

    @property
    def output_test_active(self) -> bool:
        return self._output_test

    @property
    def last_step_monotonic(self) -> float:
        """Now while the supervisor's events show its loop stepping (they come at least once a
        second), else when they last did: a watcher sees the loop step as with the in-process one."""
        now = self._client.now()
        return now if self._client.connected.is_set() and now - self.last_heard < HEARD_S else self.last_heard

    def refresh(self) -> None:
        """Fetch the supervisor's reading now (worker threads: it waits for the answer)."""
        try:
            answer = self._client.request("state")
        except WireError:
            return
        for state in answer.get("connectors", []):
            if state.get("connector") == self.id:
                self.took_state(state, attach=False, now=self._client.now())

    def took_measured(self, measured: dict[str, Any]) -> None:
        """The once-a-second reading of the pilot and PP (between status changes)."""
        self._levels = wire.parse_levels(measured.get("levels"))
        pp = measured.get("pp_ohms")
        self._pp_ohms = math.inf if pp == "open" else (None if pp is None else float(pp))
        self.heartbeat_check.report = measured.get("heartbeat_check")

    def start(self) -> None:
        """As the in-process loop's first step does: the status as it is now goes to ``on_status``."""
        callback = self.on_status
        if callback is not None:
            callback(self._status)
        self._client.start()

    def close(self) -> None:
        self._client.close()

    # -- from the reader thread --------------------------------------------------------------
    def took_state(self, fields: dict[str, Any], *, attach: bool, now: float) -> None:
        status = wire.parse_status(fields["status"])
        self._levels = wire.parse_levels(fields.get("levels"))
        pp = fields.get("pp_ohms")
        self._pp_ohms = math.inf if pp == "open" else (None if pp is None else float(pp))
        self._output_test = bool(fields.get("output_test"))
        self.heartbeat_check.report = fields.get("heartbeat_check")
        self.locked = fields.get("locked")
        self.limits.mirror(fields.get("claims") or {}, everything=attach)
        if attach:
            self.wanted_allowed = status.charging_allowed
            self.operative = bool(fields.get("operative", True))
        self.last_heard = now
        self._set(status)

    def gone(self) -> None:
        self._set(replace(GONE, timestamp=self._status.timestamp))

    def _set(self, status: EvseStatus) -> None:
        changed = status != self._status
        for fault in sorted(status.faults - self._status.faults - {EvseFault.SUPERVISOR}):
            # The supervisor's line, in the daemon's log too: status and the CSMS logs show it here,
            # with the reason where the supervisor gave one.
            why = self.heartbeat_check.report if fault is EvseFault.HEARTBEAT else None
            log.error("%s: fault %s%s", self.name, fault.value, f": {why}" if why else "")
        self._status = status
        callback = self.on_status
        if changed and callback is not None:
            try:
                callback(status)
            except Exception:
                log.exception("%s: on_status callback failed", self.name)


class SupervisorClient:
    """The connection to the supervisor: requests, events, reconnects."""

    def __init__(self, path: str, monotonic: Callable[[], float] = time.monotonic, *,
                 read_only: bool = False) -> None:
        self.path = path
        #: Only read (diagnostics): the supervisor then keeps the daemon as its controller.
        self.read_only = read_only
        self._monotonic = monotonic
        self.connectors: dict[int, RemoteEvse] = {}
        #: The supervisor's own figures (its last hello or ``supervisor`` event); {} while gone.
        self.info: dict[str, Any] = {}
        self.connected = threading.Event()
        #: Connector states as the last hello gave them (the daemon reads them once, at start).
        self.attached_states: dict[int, dict[str, Any]] = {}
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list[dict[str, Any]]]] = {}
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()
        self.gone_since: float | None = None
        self._restarted_at = -math.inf
        self.disconnects = 0
        #: Called (reader thread) after each (re)attach, with True for the first.
        self.on_attach: list[Callable[[bool], None]] = []
        #: Starts a new supervisor when the old one is gone for RESTART_AFTER_S (a simulated station,
        #: which has no service manager to do it); None: systemd restarts it.
        self.restart: Callable[[], object] | None = None

    def now(self) -> float:
        return self._monotonic()

    def summary(self) -> dict[str, Any]:
        """What ``status``, the dashboard, MQTT and the metrics show of the supervisor."""
        info = self.info
        if not self.connected.is_set() or not info:
            gone = self.gone_since
            return {"connected": False, "channel": self.path, "disconnects": self.disconnects,
                    "gone_for_s": None if gone is None else round(time.monotonic() - gone, 1)}
        return {"connected": True, "channel": self.path, "disconnects": self.disconnects,
                "pid": info.get("pid"), "version": info.get("version"), "started_at": info.get("started_at"),
                "up_s": info.get("up_s"), "step_p99_ms": info.get("step_p99_ms"),
                "step_max_ms": info.get("step_max_ms"), "loops_alive": info.get("loops_alive", True),
                "sched": info.get("sched"), "memory_locked": info.get("memory_locked"),
                "heartbeat": info.get("heartbeat"), "orphan_left_s": info.get("orphan_left_s"),
                "orphan_grace_s": info.get("orphan_grace_s"), "bad_requests": info.get("bad_requests"),
                "refused_peers": info.get("refused_peers")}

    def use_clock(self, monotonic: Callable[[], float]) -> None:
        """The daemon's clock (the simulation's, when sped up), for the times the connectors report."""
        self._monotonic = monotonic

    # ---------------------------------------------------------------- connecting
    def connect(self, timeout_s: float) -> dict[str, Any]:
        """Connect and say hello, retrying up to ``timeout_s``; the hello answer. Raises
        SupervisorUnavailable when nothing answers in time."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return self._open()
            except OSError as exc:
                if time.monotonic() >= deadline:
                    raise SupervisorUnavailable(f"no safety supervisor on {self.path}: {exc}") from None
                time.sleep(0.05)

    def _open(self) -> dict[str, Any]:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(ANSWER_TIMEOUT_S)
        try:
            sock.connect(self.path)
            sock.sendall(wire.encode({"id": 0, "op": "hello", "read_only": self.read_only}))
            reader = sock.makefile("rb")
            line = reader.readline(wire.MAX_FRAME + 1)
            message = wire.decode(line) if line else {}
            if "error" in message or not message.get("ok"):
                problem = message.get("error", {}).get("message", "no answer")
                raise OSError(f"the supervisor refused: {problem}")
        except (OSError, WireError):
            sock.close()
            raise
        sock.settimeout(None)  # the reader thread waits for events as long as it takes; a send never
        # does: a supervisor that stops reading fails it after ANSWER_TIMEOUT_S instead of blocking a thread.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, struct.pack("ll", int(ANSWER_TIMEOUT_S), 0))
        self._sock, self._reader = sock, reader
        self.info = message.get("supervisor", {})
        self.attached_states = {s["connector"]: s for s in message.get("connectors", [])}
        return message

    def start(self) -> None:
        """Run the reader thread (idempotent: the first connector's start does it)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="supervisor-channel", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._closed.set()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        first = True
        while not self._closed.is_set():
            if self._sock is None:
                try:
                    self._open()
                except (OSError, WireError):
                    self._maybe_restart()
                    self._closed.wait(RECONNECT_S)
                    continue
            self._attached(first)
            first = False
            self._read_events()
            self._lost()

    def _maybe_restart(self) -> None:
        gone = self.gone_since
        if self.restart is None or gone is None or time.monotonic() - gone < RESTART_AFTER_S:
            return
        if time.monotonic() - self._restarted_at >= RESTART_AFTER_S * 4:
            self._restarted_at = time.monotonic()
            log.warning("starting a new safety supervisor for the simulated station")
            self.restart()

    def _attached(self, first: bool) -> None:
        self.connected.set()
        if self.gone_since is not None:
            log.warning("safety supervisor back after %.1f s", time.monotonic() - self.gone_since)
        self.gone_since = None
        now = self._monotonic()
        for connector_id, state in self.attached_states.items():
            evse = self.connectors.get(connector_id)
            if evse is not None:
                evse.took_state(state, attach=first, now=now)
        if not first:  # a restarted supervisor: give it the daemon's claims and wishes again
            for evse in self.connectors.values():
                for name, amps in evse.limits.own().items():
                    self.send("claim", connector=evse.id, name=name, amps=amps)
                self.send("availability", connector=evse.id, operative=evse.operative)
                if evse.wanted_allowed:
                    self.send("energy", connector=evse.id, granted=True)
                if evse.phases.target is not None:
                    self.send("phases", connector=evse.id, phases=evse.phases.target)
        for callback in self.on_attach:
            callback(first)

    def _read_events(self) -> None:
        reader = self._reader
        while not self._closed.is_set():
            try:
                line = reader.readline(wire.MAX_FRAME + 1)
            except OSError:
                return
            if not line:
                return
            try:
                self._took(wire.decode(line))
            except (WireError, KeyError, TypeError, ValueError) as exc:
                log.warning("safety supervisor sent a frame this daemon does not understand: %s", exc)

    def _took(self, message: dict[str, Any]) -> None:
        event = message.get("event")
        if event == "state":
            evse = self.connectors.get(message["connector"])
            if evse is not None:
                evse.took_state(message, attach=False, now=self._monotonic())
        elif event == "supervisor":
            self.info = message
            now = self._monotonic()
            measured = message.get("measured") or {}
            ticks = message.get("ticks") or {}
            for evse in self.connectors.values():
                tick = ticks.get(str(evse.id))
                if tick is not None and len(tick["counts"]) == len(evse.tick_times.counts):
                    evse.tick_times.counts = [int(n) for n in tick["counts"]]
                    evse.tick_times.sum, evse.tick_times.max = float(tick["sum"]), float(tick["max"])
                if message.get("loops_alive", True):
                    evse.last_heard = now
                if str(evse.id) in measured:
                    evse.took_measured(measured[str(evse.id)])
        elif message.get("id") is not None:
            waiter = self._waiting.get(message["id"])
            if waiter is not None:
                waiter[1].append(message)
                waiter[0].set()
            elif "error" in message:
                error = message["error"]
                log.warning("safety supervisor refused a request: %s (%s)", error.get("message"),
                            error.get("code"))

    def _lost(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
        self.connected.clear()
        self.info = {}
        for _, (done, _answers) in list(self._waiting.items()):
            done.set()
        if self._closed.is_set():
            return
        self.disconnects += 1
        self.gone_since = time.monotonic()
        log.error("safety supervisor gone: connectors report a fault until it is back")
        for evse in self.connectors.values():
            evse.gone()

    # ---------------------------------------------------------------- sending
    def send(self, op: str, **fields: Any) -> int | None:
        """Send a request without waiting for its answer (an error answer is logged)."""
        request_id = next(self._ids)
        sock = self._sock
        if sock is None:
            return None
        try:
            with self._send_lock:
                sock.sendall(wire.encode({"id": request_id, "op": op, **fields}))
        except OSError as exc:
            log.warning("safety supervisor: %s not sent: %s", op, exc)
            return None
        return request_id

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """Send and wait for the answer (worker threads only); WireError for a refusal."""
        request_id = next(self._ids)
        done, answers = threading.Event(), []
        self._waiting[request_id] = (done, answers)
        try:
            sock = self._sock
            if sock is None:
                raise SupervisorUnavailable()
            try:
                with self._send_lock:
                    sock.sendall(wire.encode({"id": request_id, "op": op, **fields}))
            except OSError:
                raise SupervisorUnavailable() from None
            if not done.wait(ANSWER_TIMEOUT_S) or not answers:
                raise SupervisorUnavailable()
        finally:
            self._waiting.pop(request_id, None)
        answer = answers[0]
        if "error" in answer:
            raise WireError(answer["error"].get("code", "error"), answer["error"].get("message", ""))
        return answer
