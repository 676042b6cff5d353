"""The supervisor's hardware from the configuration: one safety loop per connector.

On a Raspberry Pi board: the pilot (PWM and ADC), contactor, fault inputs,
heartbeat and shunt trip of ``[board]``. On the simulation: one physical world
per connector (EV, circuit, contactor, pilot), whose meter the supervisor serves
over Modbus TCP on loopback (``sim.py``), so the daemon reads it as it reads a
real meter. The meter and the card reader are not here: they stay with the daemon.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from chargepoint.config import Config, ConnectorConfig
from chargepoint.safety.evse import EvseConfig, EvseController
from chargepoint.safety.limits import LimitClaims
from chargepoint.supervisor.station import Guarded
from hal.clock import Clock, RealClock

log = logging.getLogger(__name__)

#: The safety loop gives up the GIL at every sleep and bus transfer; each time it wants it back
#: while another thread runs Python (the channel, the simulation's meter server, or in one
#: process the whole daemon) it may wait one switch interval (Python's default is 5 ms).
GIL_SWITCH_INTERVAL_S = 0.001


def evse_config(config: Config, **overrides: Any) -> EvseConfig:
    """The safety loop's settings from ``[safety]``; a board adds its pilot classification."""
    safety = config.safety
    base = EvseConfig(
        tick_s=safety.tick_s,
        contactor_settle_s=safety.contactor_settle_s,
        ventilation_available=safety.ventilation_available,
        rcd_auto_reclose_attempts=safety.rcd_auto_reclose_attempts,
    )
    return dataclasses.replace(base, **overrides) if overrides else base


def station_claims(config: Config, connector: ConnectorConfig) -> LimitClaims:
    """A connector's claims, starting with the station's rating (the supervisor's own claim)."""
    limits = LimitClaims()
    limits.set("station", min(config.station.max_current_a, connector.max_current_a))
    return limits


@dataclass
class SafetyHardware:
    """What the supervisor runs: the guarded connectors and what to close at the end."""

    clock: Clock
    connectors: list[Guarded]
    closers: list[Callable[[], None]] = field(default_factory=list)
    #: Whether a hardware heartbeat is wired (status: "heartbeat").
    heartbeat: bool = False
    #: Background jobs of the simulation (its clock and meter registers kept across restarts).
    jobs: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Run once the loops are closed: the simulated meters' registers saved as they end.
    at_close: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for c in self.connectors:
            c.evse.close()
        for last_word in self.at_close:
            last_word()
        for closer in reversed(self.closers):
            try:
                closer()
            except Exception:  # noqa: BLE001 - the others are still closed
                log.exception("closing a board part failed")


def build_board(config: Config, *, pin_factory: Any = None, i2c_bus: Any = None, sysfs_root: Any = None,
                clock: Clock | None = None,
                blocking_sleep: Callable[[float], None] | None = None) -> SafetyHardware:
    """The safety devices of ``[board]`` under one safety loop (the board has one connector)."""
    from chargepoint.supervisor.board import (
        Parts,
        contactor_device,
        fault_inputs,
        heartbeat_output,
        heartbeat_readback,
        phase_contactor_output,
        pilot_device,
        shunt_trip_output,
    )

    board = config.board
    if board is None:
        raise ValueError("hal backend 'raspberrypi' needs a [board] section")
    clock = clock or RealClock()
    connector = config.connectors[0]
    parts = Parts()
    try:
        pilot = parts.add(pilot_device(board, clock, pin_factory, i2c_bus, sysfs_root,
                                       blocking_sleep or time.sleep))
        contactor = parts.add(contactor_device(board, pin_factory))
        faults = parts.add(fault_inputs(board, pin_factory))
        heartbeat = parts.add(heartbeat_output(board, pin_factory))
        readback = parts.add(heartbeat_readback(board, pilot, pin_factory, clock))
        shunt_trip = parts.add(shunt_trip_output(board, pin_factory))
        phase_contactor = parts.add(phase_contactor_output(board, pin_factory))
        c = board.classification
        safety = evse_config(config, bands=c.bands, hysteresis_v=c.hysteresis_v,
                             debounce_samples=c.debounce_samples, diode_tolerance_v=c.diode_tolerance_v)
        limits = station_claims(config, connector)
        evse = EvseController(pilot, contactor, faults, clock, limits, safety,
                              name=f"connector-{connector.id}", heartbeat=heartbeat, shunt_trip=shunt_trip,
                              heartbeat_readback=readback, phase_contactor=phase_contactor)
    except BaseException:
        parts.close()
        raise
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    log.info("board %s (%s): pilot PWM GPIO%d via %s, ADC %s, contactor GPIO%d%s",
             board.name or "unnamed", board.model, board.pwm.gpio, board.pwm.backend,
             board.adc.type, board.contactor.pin,
             "" if board.contactor.aux_pin is not None else " without auxiliary contact")
    return SafetyHardware(clock, [Guarded(connector.id, evse, limits)], parts.closers,
                          heartbeat=heartbeat is not None)


def build_simulation(config: Config, clock: Clock | None = None) -> SafetyHardware:
    """One simulated world per connector, on the sim clock (sped up when ``simulation.speed`` says)."""
    from hal.clock import ScaledClock
    from hal.sim.driver import MeterRegisterFile
    from hal.sim.world import SimEV, SimHeartbeat, SimWorld

    sim = config.simulation
    keeper = None
    if clock is None:
        clock, keeper = sim_clock(config)
    guarded = []
    jobs: list[Callable[[], Awaitable[None]]] = [keeper] if keeper is not None else []
    at_close: list[Callable[[], None]] = []
    for connector in config.connectors:
        register = MeterRegisterFile(meter_register_path(config, connector.id))
        world = SimWorld(
            clock,
            meter_start_wh=register.load() if sim.persist_meter else 0.0,
            ev=SimEV(max_current_a=sim.ev_max_current_a, phases=sim.ev_phases,
                     capacity_wh=sim.ev_capacity_wh, soc=sim.ev_soc),
            voltage_v=sim.voltage_v,
            cable_ohms=sim.cable_ohms,
            phase_contactor=sim.phase_contactor,
        )
        if isinstance(clock, ScaledClock):
            # The heartbeat watches the loop's own timing, which a sped-up simulation does not speed
            # up: its pump runs in real time, as on a board.
            world.heartbeat = SimHeartbeat(time.monotonic)
        limits = station_claims(config, connector)
        evse = EvseController(world.pilot, world.contactor, world.faults, clock, limits, evse_config(config),
                              name=f"connector-{connector.id}", heartbeat=world.heartbeat,
                              heartbeat_readback=world.heartbeat, phase_contactor=world.phase_contactor)
        guarded.append(Guarded(connector.id, evse, limits, lock=world.lock, world=world))
        if sim.persist_meter:
            jobs.append(partial(register.keep, world, clock, config.meter.poll_interval_s))
            at_close.append(lambda register=register, world=world: register.save(world.meter.energy_wh))
        if sim.driver == "cycle" and not sim.driver_card:
            # The EV that comes and goes by itself is physics: it keeps its rhythm when the daemon
            # restarts. A driver who taps a card needs the daemon's reader (backends/remote.py).
            from hal.sim.driver import drive_cycles

            jobs.append(partial(drive_cycles, world, clock, charge_s=sim.cycle_charge_s,
                                idle_s=sim.cycle_idle_s))
    return SafetyHardware(clock, guarded, jobs=jobs, at_close=at_close)


def sim_clock(config: Config) -> tuple[Clock, Callable[[], Awaitable[None]] | None]:
    """The simulation's clock, and the job that keeps it from going back across restarts.

    Real time, or sped up (``simulation.speed``): then it resumes where the last
    run left off, so that nothing stamped before a restart lies in its future.
    """
    speed = config.simulation.speed
    if speed == 1.0:
        return RealClock(), None
    from hal.sim.driver import SimClockFile

    clock_file = SimClockFile(sim_clock_path(config))
    scaled = clock_file.clock(speed, time.time())
    return scaled, partial(clock_file.keep, scaled)


def sim_clock_path(config: Config) -> Path:
    return Path(config.station.state_dir) / "sim-clock.txt"


def meter_register_path(config: Config, connector_id: int) -> Path:
    return Path(config.station.state_dir) / f"sim-meter-{connector_id}.txt"
