"""``chargepoint supervise``: the supervisor process from start to stop.

Start: read only the configuration it needs (``load_safety_view``: a newer
firmware's keys elsewhere never stop it), build the hardware, which starts in
its safe state (PWM off at steady +12 V, contactor open), start the safety
loops, lock memory, freeze the start-up garbage, open the channel, say READY=1.
Then a small asyncio loop serves the channel, ends the orphan grace when it is
over, publishes the supervisor's own figures once a second and pings systemd's
watchdog only while every safety loop keeps stepping. SIGTERM: outputs safe,
exit.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import pwd
import signal
import threading
import time
from typing import Any

from chargepoint import __version__
from chargepoint.config import Config
from chargepoint.config.safety_parse import channel_path
from chargepoint.config.safety_view import load_safety_view
from chargepoint.supervisor import wire
from chargepoint.supervisor.backends import build_safety_hardware
from chargepoint.supervisor.hardware import SafetyHardware
from chargepoint.supervisor.instance import ChannelClaim
from chargepoint.supervisor.notify import Notifier, watchdog_interval
from chargepoint.supervisor.realtime import GarbagePolicy, lock_memory, scheduling_policy
from chargepoint.supervisor.server import ChannelServer
from chargepoint.supervisor.sim import SimMeters, sim_action, sim_meter_model
from chargepoint.supervisor.station import OrphanPolicy, SafetyStation

log = logging.getLogger("chargepoint.supervisor")

#: How often the orphan grace is checked (real seconds); else the loop wakes when something is due.
TICK_S = 0.1
#: A loop that has not stepped for this long (real seconds) gets no more watchdog pings.
STALE_S = 1.0
#: Started on demand for a simulated station: exit when no daemon came back for this long after the grace.
IDLE_EXIT_S = 10.0
#: Stack of every thread started here (safety loops, asyncio's executor). mlockall() makes each page of
#: a stack resident, and glibc's default is 8 MiB a thread; the loop touches about 12 KiB of it
#: (bench/README.md, footprint of the supervisor).
THREAD_STACK_BYTES = 512 * 1024


def controller_uid(daemon_user: str | None) -> int:
    """The uid whose connections control: the named daemon user, or (sim, development) our own."""
    if not daemon_user:
        return os.getuid()
    try:
        return pwd.getpwnam(daemon_user).pw_uid
    except KeyError:
        raise SystemExit(f"supervise: no user {daemon_user!r} (--daemon-user)") from None


class Supervisor:
    """The running supervisor: hardware, station, channel."""

    def __init__(self, config: Config, hardware: SafetyHardware, *, daemon_user: str | None = None,
                 exit_when_idle: bool = False) -> None:
        self.config = config
        self.hardware = hardware
        self.sim = config.hal_backend != "raspberrypi"
        policy = OrphanPolicy(config.safety.orphan_grace_s, config.safety.orphan_limit_a)
        self.station = SafetyStation(hardware.connectors, hardware.clock, policy,
                                     sim_action if self.sim else None)
        self.path = channel_path(config)
        self.channel = ChannelServer(self.station, self.path, controller_uid(daemon_user), self.info)
        self.meters = SimMeters(hardware.connectors, sim_meter_model(config)) if self.sim else None
        self.exit_when_idle = exit_when_idle
        self.started_at = time.time()
        self.sched = scheduling_policy()
        self.mlock_error: str | None = None
        self.gc = GarbagePolicy()
        self._stop = asyncio.Event()
        self._last_steps: dict[int, tuple[float, float]] = {}
        self.loops_alive = True

    def info(self) -> dict[str, Any]:
        """The supervisor's own figures: the hello answer and the once-a-second event."""
        times = [c.evse.tick_times for c in self.hardware.connectors]
        p99 = [t.quantile_bound(0.99) for t in times]
        clock = self.hardware.clock
        anchor = clock.anchor() if hasattr(clock, "anchor") else (1.0, 0.0, 0.0)
        return {
            "pid": os.getpid(), "version": __version__, "backend": self.config.hal_backend,
            "started_at": self.started_at, "up_s": round(time.time() - self.started_at, 1),
            "connectors": sorted(self.station.connectors),
            "clock": {"speed": anchor[0], "real_start": anchor[1], "wall_start": anchor[2]},
            "sim_meters": {str(k): v for k, v in self.meters.ports.items()} if self.meters else {},
            "sched": self.sched, "memory_locked": self.mlock_error is None,
            "step_p99_ms": None if None in p99 else round(max(p or 0.0 for p in p99) * 1000, 2),
            "step_max_ms": round(max(t.max for t in times) * 1000, 2) if times else None,
            "steps": sum(sum(t.counts) for t in times),
            "gc_longest_ms": round(self.gc.longest_s * 1000, 2),
            "heartbeat": self.hardware.heartbeat,
            "controller": self.channel.controller_connected,
            "orphan_left_s": _rounded(self.station.orphan_left_s()),
            "orphan_grace_s": self.station.policy.grace_s, "orphan_limit_a": self.station.policy.limit_a,
            "refused_peers": self.channel.refused, "bad_requests": self.channel.bad_requests,
            "loops_alive": self.loops_alive,
            "ticks": {str(c.id): {"counts": list(c.evse.tick_times.counts), "sum": c.evse.tick_times.sum,
                                  "max": c.evse.tick_times.max} for c in self.hardware.connectors},
            "sim_ev": {str(c.id): {"current_a": round(c.world.ev.current_a, 3), "phases": c.world.ev.phases}
                       for c in self.hardware.connectors if c.world is not None},
            "measured": {str(c.id): self._measured(c.evse) for c in self.hardware.connectors},
        }

    @staticmethod
    def _measured(evse: Any) -> dict[str, Any]:
        ohms = evse.proximity_ohms
        return {"levels": wire.levels_fields(evse.pilot_levels),
                "pp_ohms": "open" if ohms is not None and ohms == float("inf") else ohms,
                "heartbeat_check": evse.heartbeat_check.report}

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stop.set)
        for c in self.hardware.connectors:
            c.evse.start()
        if self.hardware.connectors:
            self.hardware.connectors[0].evse.between_steps = self.gc.between_steps
        jobs = [asyncio.ensure_future(job()) for job in self.hardware.jobs]
        notifier = Notifier()
        try:
            if self.meters is not None:
                await self.meters.start()
            await self.channel.start()
            self.mlock_error = lock_memory()
            self.gc.start()
            log.info("supervisor %s up: %s, %d connector(s), channel %s, scheduling %s, memory %s",
                     __version__, self.config.hal_backend, len(self.hardware.connectors), self.path,
                     self.sched,
                     "locked" if self.mlock_error is None else f"not locked ({self.mlock_error})")
            notifier.send("READY=1", f"STATUS=safety loops running, channel {self.path}")
            await self._watch(notifier)
        finally:
            notifier.send("STOPPING=1")
            self.hardware.close()  # first: contactor open, pilot at +12 V, heartbeat stopped
            for job in jobs:
                job.cancel()
            await asyncio.gather(*jobs, return_exceptions=True)
            if self.meters is not None:
                await self.meters.close()
            await self.channel.close()  # last: the socket gone says the supervisor is done
            log.info("supervisor stopped: outputs safe")

    async def _watch(self, notifier: Notifier) -> None:
        interval = watchdog_interval()
        next_ping, next_info = (0.0 if interval is not None else math.inf), 0.0
        idle_since: float | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            self.station.tick()
            alive = self.loops_alive = self._loops_alive(now)
            if interval is not None and alive and now >= next_ping:
                notifier.send("WATCHDOG=1")
                next_ping = now + interval
            if now >= next_info:
                self.channel.publish_supervisor()
                next_info = now + 1.0
            gone = not self.channel.controller_connected
            if self.exit_when_idle and self.station.leaving_for_good and gone:
                log.info("the daemon stopped: the on-demand supervisor ends with it")
                return
            if self.exit_when_idle:
                busy = self.channel.controller_connected or self.station.orphan_left_s() is not None
                idle_since = None if busy else (idle_since or now)
                if idle_since is not None and now - idle_since > IDLE_EXIT_S:
                    log.info("no daemon for %g s: the on-demand supervisor exits", IDLE_EXIT_S)
                    return
            try:
                await asyncio.wait_for(self._stop.wait(), self._pause_s(now, next_ping, next_info))
            except TimeoutError:
                pass

    def _pause_s(self, now: float, next_ping: float, next_info: float) -> float:
        """Until the next thing due: the figures (once a second) or a watchdog ping; TICK_S while an
        orphan grace runs, an on-demand supervisor without its daemon may exit or a loop has stopped
        stepping. An idle station wakes this loop about once a second instead of ten times (its
        share of the supervisor's idle CPU)."""
        alone = self.exit_when_idle and not self.channel.controller_connected
        if self.station.orphan_left_s() is not None or alone or not self.loops_alive:
            return TICK_S
        return max(0.0, min(next_ping, next_info) - now)

    def _loops_alive(self, now: float) -> bool:
        """Every loop stepped within STALE_S real seconds (judged by its step count moving)."""
        alive = True
        for c in self.hardware.connectors:
            steps = float(sum(c.evse.tick_times.counts))
            last_steps, since = self._last_steps.get(c.id, (-1.0, now))
            if steps != last_steps:
                self._last_steps[c.id] = (steps, now)
            elif now - since > STALE_S:
                alive = False
        return alive


def run_supervisor(config_path: str, *, daemon_user: str | None = None, exit_when_idle: bool = False) -> None:
    """Load, build, run until SIGTERM. Config errors raise ConfigError (file, key, reason)."""
    threading.stack_size(THREAD_STACK_BYTES)  # before any thread starts
    config = load_safety_view(config_path)
    claim = ChannelClaim(channel_path(config))
    claim.acquire()  # before the hardware is built: a second supervisor touches no output (instance.py)
    try:
        hardware = build_safety_hardware(config)
        supervisor = Supervisor(config, hardware, daemon_user=daemon_user, exit_when_idle=exit_when_idle)
        asyncio.run(supervisor.run())
    finally:
        claim.release()


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
