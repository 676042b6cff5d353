"""The station's hardware through the safety supervisor: what ``chargepoint run`` uses.

The daemon opens no safety device. Each connector's safety loop is a
``RemoteEvse`` on the supervisor's channel; the meter and the card reader stay
here, as on a station: a real meter over Modbus, or the simulation's meter that
the supervisor serves over Modbus TCP on loopback (read by the same driver). On
the simulation the clock is the supervisor's (sped up alike), and a simulated
station whose supervisor is not running gets one started on demand, which ends
by itself once no daemon has come back for a while (``supervise --exit-when-idle``).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from chargepoint.backends.hardware import Hardware
from chargepoint.backends.metering import build_meter, bus_pool, max_power_w
from chargepoint.config import Config
from chargepoint.config.safety_parse import channel_path
from chargepoint.core.connector import ConnectorHardware
from chargepoint.supervisor.client import RemoteEvse, SupervisorClient, SupervisorUnavailable
from chargepoint.supervisor.sim import sim_meter_model
from chargepoint.supervisor.wire import WireError
from hal.clock import Clock, RealClock, ScaledClock
from hal.interfaces import MeterFailure, MeterFailureKind, MeterReading

log = logging.getLogger(__name__)

#: How long ``chargepoint run`` waits for the supervisor at start (systemd starts it first).
CONNECT_TIMEOUT_S = 15.0


class RemoteLock:
    """The plug lock, driven by the supervisor (it refuses to unlock while the contactor is closed)."""

    def __init__(self, evse: RemoteEvse, client: SupervisorClient) -> None:
        self._evse = evse
        self._client = client

    def set_locked(self, locked: bool) -> bool:
        try:
            answer = self._client.request("lock", connector=self._evse.id, locked=locked)
        except WireError as exc:
            log.warning("%s: plug lock: %s", self._evse.name, exc.message)
            return False
        self._evse.locked = bool(answer.get("locked"))
        return bool(answer.get("confirmed"))

    def locked(self) -> bool:
        return bool(self._evse.locked)


@dataclass(frozen=True)
class _Ev:
    current_a: float
    phases: int


class RemoteWorld:
    """The supervisor's simulated world for one connector, as the demo and ``chargepoint sim`` use it."""

    def __init__(self, client: SupervisorClient, connector_id: int, card_reader: Any) -> None:
        self._client = client
        self.id = connector_id
        self.card_reader = card_reader

    @property
    def ev(self) -> Any:
        """The simulated EV's draw as the supervisor last said (once a second): for the simulated house."""
        ev = (self._client.info.get("sim_ev") or {}).get(str(self.id)) or {}
        return _Ev(float(ev.get("current_a", 0.0)), int(ev.get("phases", 3)))

    def act(self, action: str, **fields: Any) -> dict[str, Any]:
        return self._client.request("sim", connector=self.id, action=action, **fields)

    def plug_in(self) -> None:
        self.act("plug")

    def unplug(self) -> None:
        self.act("unplug")


class SupervisedSimMeter:
    """The simulation's meter, read over Modbus TCP where the supervisor serves it.

    A restarted supervisor serves it on a new port: the next read follows. While
    the supervisor is gone the meter is unavailable, as a real one without power.
    """

    def __init__(self, client: SupervisorClient, config: Config, connector: Any, clock: Clock) -> None:
        self._client = client
        self._config = config
        self._connector = connector
        self._clock = clock
        self._port: int | None = None
        self._meter: Any = None
        self._closed = False
        self.name = f"connector {connector.id} meter"

    async def read(self) -> MeterReading | MeterFailure:
        if self._closed:  # a read racing the daemon's stop must not open a new connection
            return MeterFailure(MeterFailureKind.DISCONNECTED, f"{self.name}: closed")
        port = (self._client.info.get("sim_meters") or {}).get(str(self._connector.id))
        if port is None:
            return MeterFailure(MeterFailureKind.DISCONNECTED, "the safety supervisor serving it is gone")
        if port != self._port:
            await self._drop()
            # Importing the Modbus driver (pymodbus: about 30 ms at the first read) and reading the
            # register map are file reads: a worker thread does them, not the event loop.
            register_map = await asyncio.to_thread(_sim_register_map, sim_meter_model(self._config))
            self._meter = _sim_meter(self._config, self._connector, self._clock, int(port), register_map)
            self._port = port
        result: MeterReading | MeterFailure = await self._meter.read()
        return result

    async def close(self) -> None:
        self._closed = True
        await self._drop()

    async def _drop(self) -> None:
        meter, self._meter, self._port = self._meter, None, None
        if meter is not None:
            await meter.close()


def connect(config: Config, *, spawn: bool = True) -> tuple[SupervisorClient, dict[str, Any]]:
    """The channel to the supervisor, started on demand for a simulated station."""
    path = channel_path(config)
    client = SupervisorClient(path)
    try:
        on_demand = spawn and config.hal_backend != "raspberrypi"
        return client, client.connect(0.0 if on_demand else CONNECT_TIMEOUT_S)
    except SupervisorUnavailable as exc:
        if not spawn or config.hal_backend == "raspberrypi":
            raise
        why = exc.message
    start_supervisor(config, why)
    return client, client.connect(CONNECT_TIMEOUT_S)


def start_supervisor(config: Config, why: str) -> subprocess.Popen[bytes]:
    """``chargepoint supervise`` for this configuration, in its own session: it outlives this process."""
    log_path = Path(config.station.state_dir) / "supervisor.log"
    log.info("%s: starting a supervisor for the simulated station (its log: %s)", why, log_path)
    # Its own session and output: it outlives this process, and holds none of its pipes. systemd's
    # variables are this process's alone (the supervisor is not the unit's main process).
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as output:
        return subprocess.Popen(
            [sys.executable, "-m", "chargepoint.supervisor", "--config", config.source, "--exit-when-idle"],
            stdin=subprocess.DEVNULL, stdout=output, stderr=output, start_new_session=True, close_fds=True,
            env=env)


def clock_of(info: dict[str, Any]) -> Clock:
    clock = info.get("clock") or {}
    speed = float(clock.get("speed", 1.0))
    if speed == 1.0:
        return RealClock()
    return ScaledClock.from_anchor(speed, float(clock["real_start"]), float(clock["wall_start"]))


def build_remote_hardware(config: Config, client: SupervisorClient, hello: dict[str, Any]) -> Hardware:
    """The daemon's side of every connector the supervisor guards."""
    info = hello.get("supervisor", {})
    clock = clock_of(info)
    client.use_clock(clock.monotonic)
    sim = config.hal_backend != "raspberrypi"
    states = dict(client.attached_states)
    client.attached_states = {}
    reader = _card_reader(config, sim)
    buses = bus_pool(config)
    by_id = {c.id: c for c in config.connectors}
    connectors, worlds, jobs = [], {}, []
    for connector_id in info.get("connectors", []):
        connector_config = by_id.get(connector_id)
        if connector_config is None:
            raise SupervisorUnavailable(f"the supervisor guards connector {connector_id}, which this "
                                        "configuration does not have: both must read the same file")
        evse = RemoteEvse(client, connector_id)
        client.connectors[connector_id] = evse
        if connector_id in states:
            evse.took_state(states[connector_id], attach=True, now=clock.monotonic())
        if sim:
            meter: Any = SupervisedSimMeter(client, config, connector_config, clock)
            world = RemoteWorld(client, connector_id, reader)
            worlds[connector_id] = world
            if config.simulation.driver == "cycle" and config.simulation.driver_card:
                # A driver with a card taps this process's reader; one without is the supervisor's.
                from hal.sim.driver import drive_cycles

                jobs.append(partial(drive_cycles, world, clock, charge_s=config.simulation.cycle_charge_s,
                                    idle_s=config.simulation.cycle_idle_s,
                                    card=config.simulation.driver_card or None))
        else:
            meter = build_meter(config, connector_config, clock, pool=buses)
        lock = RemoteLock(evse, client) if states.get(connector_id, {}).get("locked") is not None else None
        connectors.append(ConnectorHardware(evse_id=connector_id, evse=evse,  # type: ignore[arg-type]
                                            meter=meter, limits=evse.limits, lock=lock,
                                            connector_type=config.station.connector_type))
    if sim:  # nobody else restarts a simulated station's supervisor
        client.restart = lambda: start_supervisor(config, "the supervisor's channel dropped")
    hardware = Hardware(clock, connectors, reader, worlds, jobs)
    hardware.supervisor = client
    hardware.continuing = frozenset(i for i, s in states.items() if s["status"].get("allowed"))
    hardware.ev_left = {i: float(s["ev_left_at"]) for i, s in states.items()
                        if s.get("ev_left_at") is not None}
    return hardware


def _sim_register_map(model: str) -> Any:
    """The simulated meter's register map, read in a worker thread, which also imports the Modbus
    driver (with pymodbus) that ``_sim_meter`` then finds loaded."""
    for name in ("hal.meters.bus", "hal.meters.modbus_meter"):
        importlib.import_module(name)
    from hal.meters.registermap import load_map

    return load_map(model)


def _sim_meter(config: Config, connector: Any, clock: Clock, port: int, register_map: Any) -> Any:
    from hal.meters.bus import BusSettings, ModbusBus
    from hal.meters.modbus_meter import ModbusMeter

    timeout_s = min(config.meter.timeout_s, 0.25)  # loopback answers at once
    bus = ModbusBus(BusSettings("tcp", host="127.0.0.1", tcp_port=port, timeout_s=timeout_s))
    return ModbusMeter(bus, register_map, 1, clock=clock, retries=0,
                       max_power_w=max_power_w(config.meter, connector),
                       name=f"connector {connector.id} meter")


def _card_reader(config: Config, sim: bool) -> Any:
    if sim:
        from hal.sim.peripherals import SimCardReader

        return SimCardReader(threading.RLock())
    from chargepoint.backends.raspberrypi.build import card_reader

    assert config.board is not None
    return card_reader(config.board, None)
