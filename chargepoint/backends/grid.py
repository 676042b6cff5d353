"""From ``[load.meter]`` to a :class:`hal.grid.GridMeter`: a real one, or the simulated house's.

A real grid meter on the station meter's RS-485 line uses that line's bus (one
client, one lock, so their requests never collide); on another line or over
TCP it gets its own. The simulated kinds put a :class:`hal.sim.house.SimHouse`
around the simulated connectors: read directly ("sim") or served over Modbus TCP
on loopback and read by the real driver ("sim-modbus"), as the station meter's
simulation is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chargepoint.backends.hardware import Hardware
from chargepoint.backends.metering import bus_settings, register_map
from chargepoint.config import Config
from hal.grid import GridMeter

if TYPE_CHECKING:  # a real grid meter never loads the simulated house
    from hal.sim.house import Currents, SimHouse
    from hal.sim.world import SimWorld


def station_currents(worlds: dict[int, SimWorld]) -> Currents:
    """What the simulated connectors draw per phase together (a 1-phase EV on L1)."""
    out = [0.0, 0.0, 0.0]
    for world in worlds.values():
        amps, phases = world.ev.current_a, world.ev.phases
        for p in range(phases):
            out[p] += amps
    return out[0], out[1], out[2]


def build_house(config: Config, hardware: Hardware) -> SimHouse:
    from hal.sim.house import SimHouse

    h = config.house
    return SimHouse(hardware.clock, lambda: station_currents(hardware.worlds), base_load_w=h.base_load_w,
                    pv_peak_w=h.pv_peak_w, cloudiness=h.cloudiness, seed=h.seed, day_start_h=h.day_start_h,
                    time_factor=h.time_factor, voltage_v=config.simulation.voltage_v)


def build_grid_meter(config: Config, hardware: Hardware) -> tuple[GridMeter, SimHouse | None]:
    """The grid meter, and the simulated house behind it (None for a real meter)."""
    grid = config.load.meter
    if grid.kind in ("sim", "sim-modbus"):
        if not hardware.worlds:
            raise ValueError(f"grid meter kind {grid.kind!r} needs the simulated hardware "
                             "(hal backend 'sim')")
        house = build_house(config, hardware)
        if grid.kind == "sim":
            from hal.sim.house import SimGridMeter

            return SimGridMeter(house), house
        from hal.meters.grid_meter import LoopbackGridMeter

        return LoopbackGridMeter(house.read_values, register_map(grid), unit_id=grid.unit_id,
                                 clock=hardware.clock, timeout_s=min(grid.timeout_s, 0.25)), house
    from hal.meters.bus import ModbusBus
    from hal.meters.grid_meter import ModbusGridMeter

    settings = bus_settings(grid)
    bus = next((c.meter.bus for c in hardware.connectors  # type: ignore[attr-defined]
                if isinstance(getattr(c.meter, "bus", None), ModbusBus)
                and c.meter.bus.settings.key == settings.key), None)  # type: ignore[attr-defined]
    return ModbusGridMeter(bus or ModbusBus(settings), register_map(grid), grid.unit_id, clock=hardware.clock,
                           retries=grid.retries), None
