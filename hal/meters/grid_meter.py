"""A grid meter of any mapped model on a Modbus bus: :class:`hal.grid.GridMeter` over ModbusMeter.

The station meter's driver reads the registers (the map, the bus lock, the
retries); this only turns the decoded values into signed phase currents. The
import register is not checked for plausibility as a station meter's is: no one
bills from it, and a grid meter whose register jumps still measures current.
It may sit on the station meter's RS-485 line: pass that line's
:class:`~hal.meters.bus.ModbusBus` and the shared lock keeps their requests apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from hal.clock import Clock, RealClock
from hal.grid import GridReading, signed_currents
from hal.interfaces import MeterFailure, MeterFailureKind
from hal.meters.bus import ModbusBus
from hal.meters.modbus_meter import ModbusMeter
from hal.meters.registermap import RegisterMap

#: What a simulated grid meter serves: the quantities now, or a failure (it then answers nothing).
Source = Callable[[], Awaitable[Mapping[str, float | None] | MeterFailure]]


class ModbusGridMeter:
    """The house connection's meter, read through the register map of its model."""

    def __init__(self, bus: ModbusBus, register_map: RegisterMap, unit_id: int, *, clock: Clock | None = None,
                 retries: int = 1) -> None:
        self.clock: Clock = clock or RealClock()
        self.meter = ModbusMeter(bus, register_map, unit_id, clock=self.clock, retries=retries,
                                 name=f"grid meter {register_map.model}@{bus.settings.describe()}#{unit_id}")

    @property
    def name(self) -> str:
        return self.meter.name

    async def read(self) -> GridReading | MeterFailure:
        values = await self.meter.read_values()
        if isinstance(values, MeterFailure):
            return values
        currents = signed_currents(values)
        if currents is None:
            return MeterFailure(MeterFailureKind.IMPLAUSIBLE,
                                f"{self.name}: the map gives no current or power for every phase")
        return GridReading(self.clock.monotonic(), currents, values.get("power"))

    async def close(self) -> None:
        await self.meter.close()


class LoopbackGridMeter:
    """A simulated house's grid meter served as Modbus TCP on loopback and read by the real driver.

    The grid meter kind "sim-modbus": the house's values travel through the
    register map's encoding, a pymodbus server, a socket and the decoder, as
    a real grid meter's would. Server and client start on the first read.
    """

    def __init__(self, source: Source, register_map: RegisterMap, *, unit_id: int = 1,
                 clock: Clock | None = None, timeout_s: float = 0.25) -> None:
        self.source = source
        self.map = register_map
        self.unit_id = unit_id
        self.clock: Clock = clock or RealClock()
        self.timeout_s = timeout_s
        self.device: Any = None
        self.meter: ModbusGridMeter | None = None
        #: The loopback TCP port served (0 until the first read starts the server).
        self.port = 0
        self._closed = False
        #: One read or the close at a time: a close during the first read (which starts the server)
        #: must not leave a server behind that nothing closes.
        self._lock = asyncio.Lock()

    async def _start(self) -> ModbusGridMeter:
        from hal.meters.bus import BusSettings
        from hal.meters.simdevice import SimModbusDevice

        self.device = SimModbusDevice(self.map, source=self.source, unit_id=self.unit_id)
        port = self.port = await self.device.serve_tcp("127.0.0.1", 0)
        bus = ModbusBus(BusSettings("tcp", host="127.0.0.1", tcp_port=port, timeout_s=self.timeout_s))
        self.meter = ModbusGridMeter(bus, self.map, self.unit_id, clock=self.clock, retries=0)
        return self.meter

    async def read(self) -> GridReading | MeterFailure:
        async with self._lock:
            if self._closed:
                return MeterFailure(MeterFailureKind.DISCONNECTED, "sim-modbus grid meter: closed")
            meter = self.meter or await self._start()
            return await meter.read()

    async def close(self) -> None:
        async with self._lock:
            self._closed = True
            meter, device, self.meter, self.device = self.meter, self.device, None, None
            if meter is not None:
                await meter.close()
            if device is not None:
                await device.close()
