"""From the ``[meter]`` configuration to a :class:`hal.interfaces.Meter` per connector.

The daemon (whatever its hal backend) and ``chargepoint meter`` build meters
here, so a meter configured for the station is read the same way when a
technician tests it from the command line. ``hal.meters`` (and with it
pymodbus) is imported only when a Modbus meter is configured: the plain
simulation does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chargepoint.config import Config, ConnectorConfig, MeterConfig
from hal.clock import Clock
from hal.interfaces import Meter

if TYPE_CHECKING:
    from hal.meters.bus import BusPool, BusSettings
    from hal.meters.registermap import RegisterMap

#: Line voltage assumed for the plausibility limit: 230 V + 10 %.
MAX_LINE_VOLTAGE_V = 253.0


def register_map(meter: MeterConfig) -> RegisterMap:
    from hal.meters.registermap import load_map

    return load_map(meter.model, path=meter.map_file or None)


def bus_settings(meter: MeterConfig) -> BusSettings:
    from hal.meters.bus import BusSettings

    return BusSettings(transport=meter.transport, port=meter.port, baudrate=meter.baudrate,
                       parity=meter.parity, stopbits=meter.stopbits, host=meter.host,
                       tcp_port=meter.tcp_port, timeout_s=meter.timeout_s)


def unit_id(meter: MeterConfig, connector: ConnectorConfig) -> int:
    """Connector N's meter: its own meter_unit_id, else meter.unit_id + N - 1."""
    return connector.meter_unit_id or meter.unit_id + connector.id - 1


def max_power_w(meter: MeterConfig, connector: ConnectorConfig) -> float:
    """The most the connector's circuit can draw, for the import register's plausibility."""
    return meter.max_power_w or 3 * MAX_LINE_VOLTAGE_V * connector.max_current_a


def bus_pool(config: Config) -> BusPool | None:
    """A pool to share buses between the connectors' meters (None unless kind is "modbus")."""
    if config.meter.kind != "modbus":
        return None
    from hal.meters.bus import BusPool

    return BusPool()


def build_meter(config: Config, connector: ConnectorConfig, clock: Clock, *,
                pool: BusPool | None = None, sim_meter: Meter | None = None) -> Meter:
    """The meter of ``connector`` as ``config.meter.kind`` says.

    ``sim_meter`` is the physical simulation's meter (kinds "sim" and
    "sim-modbus"); ``pool`` shares one bus between the meters on one line
    (kind "modbus"; pass the same pool for every connector).
    """
    meter = config.meter
    if meter.kind in ("sim", "sim-modbus"):
        if sim_meter is None:
            raise ValueError(f"meter kind {meter.kind!r} needs the simulated hardware (hal backend 'sim')")
        if meter.kind == "sim":
            return sim_meter
        from hal.meters.simdevice import LoopbackSimMeter

        # Loopback answers at once: a short timeout, and no retries, so that
        # each failure queued on the simulated meter fails one reading.
        return LoopbackSimMeter(sim_meter, register_map(meter), unit_id=unit_id(meter, connector),
                                clock=clock, timeout_s=min(meter.timeout_s, 0.25), retries=0,
                                max_power_w=max_power_w(meter, connector))
    from hal.meters.bus import BusPool
    from hal.meters.modbus_meter import ModbusMeter

    pool = pool or BusPool()
    return ModbusMeter(pool.get(bus_settings(meter)), register_map(meter), unit_id(meter, connector),
                       clock=clock, retries=meter.retries, max_power_w=max_power_w(meter, connector),
                       name=f"connector {connector.id} meter")
