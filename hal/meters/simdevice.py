"""A simulated Modbus energy meter: a pymodbus server holding a model's register layout.

:class:`SimModbusDevice` answers on Modbus TCP or on a serial port (RTU, e.g.
one end of a socat pty pair) exactly where and how the real model would: the
registers the map uses and those its ``readable`` spans declare exist, every
other address is answered with exception 02 (illegal data address), values are
written in the model's own format by the same register map the driver reads
with. Values come from a dict or, at every request, from a source (an async
callable returning a :class:`~hal.interfaces.MeterReading`, a dict of
quantities or a :class:`~hal.interfaces.MeterFailure`), so it can serve the
physical simulation's meter (:class:`LoopbackSimMeter`, the daemon's
``sim-modbus`` meter kind).

Faults for tests and the demo: ``silent`` (answers nothing), ``unit_id``
(requests for other units go unanswered, as on a real bus),
``exception_code`` (every request is answered with that exception),
``corrupt`` (the next N answers leave with a wrong last byte: a CRC error on
RTU; on TCP, which has no checksum, they are lost instead). A source
returning a failure turns into the matching fault on the wire for that
request.

Run one from a shell for commissioning practice::

    python -m hal.meters.simdevice --model sdm630 --tcp 127.0.0.1:5020
    chargepoint meter --model sdm630 --host 127.0.0.1 --tcp-port 5020
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from hal.clock import Clock, RealClock
from hal.interfaces import Meter, MeterFailure, MeterFailureKind, MeterReading
from hal.meters.bus import BusSettings, ModbusBus
from hal.meters.modbus_meter import ModbusMeter
from hal.meters.registermap import RegisterMap, encode_field, load_map, reading_values

Values = Mapping[str, float | None]
Source = Callable[[], Awaitable[MeterReading | MeterFailure | Values]]


class SimModbusDevice:
    """A meter of ``register_map``'s model on the wire (see the module doc).

    :meth:`serve_tcp` / :meth:`serve_rtu` put it alone on a line; several
    devices with different unit ids share one line through :class:`SimModbusLine`.
    """

    def __init__(self, register_map: RegisterMap, values: Values | None = None, *,
                 source: Source | None = None, unit_id: int = 1) -> None:
        self.map = register_map
        self.values: dict[str, float | None] = dict(values or {})
        self.source = source
        self.unit_id = unit_id
        self.silent = False
        self.exception_code: int | None = None
        self.corrupt = 0
        #: Requests addressed to this unit, answered or not.
        self.requests = 0
        self._line: SimModbusLine | None = None

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen for Modbus TCP; returns the bound port (``port=0``: a free one)."""
        await self.close()
        self._line = SimModbusLine([self])
        return await self._line.serve_tcp(host, port)

    async def serve_rtu(self, port: str, *, baudrate: int = 9600, parity: str = "N",
                        stopbits: int = 1) -> None:
        """Answer Modbus RTU on a serial port (a real one or a pty)."""
        await self.close()
        self._line = SimModbusLine([self])
        await self._line.serve_rtu(port, baudrate=baudrate, parity=parity, stopbits=stopbits)

    async def close(self) -> None:
        line, self._line = self._line, None
        if line is not None:
            await line.close()

    def _blocks(self) -> tuple[list[SimData], list[SimData]]:
        """Holding and input register blocks: what the model defines, nothing more."""
        blocks: dict[int, list[SimData]] = {3: [], 4: []}
        for function in (3, 4):
            ranges = [(f.address, f.end - 1) for f in self.map.fields if f.function == function]
            ranges += [(s.first, s.last) for s in self.map.readable if s.function == function]
            for first, last in _merge(ranges):
                blocks[function].append(SimData(first, count=last - first + 1, values=0,
                                                datatype=DataType.REGISTERS))
            if not blocks[function]:
                # Nothing of this function code: one invalid register, so every
                # read of it is answered with exception 02.
                blocks[function].append(SimData(0xFFFE, count=1, datatype=DataType.INVALID))
        return blocks[3], blocks[4]

    async def _current(self) -> Values | MeterFailure:
        if self.source is None:
            return self.values
        result = await self.source()
        if isinstance(result, MeterReading):
            return reading_values(result)
        return result


class SimModbusLine:
    """One RS-485 line (or TCP endpoint) with one or more simulated meters on it.

    Requests for a unit id nobody has go unanswered, as on a real bus.
    """

    def __init__(self, devices: list[SimModbusDevice]) -> None:
        units = [d.unit_id for d in devices]
        if not devices or len(set(units)) != len(units):
            raise ValueError("a line needs devices with distinct unit ids")
        self.devices = {d.unit_id: d for d in devices}
        self._drop = False
        self._corrupt_this = False
        self._rtu = False
        self._server: ModbusTcpServer | ModbusSerialServer | None = None

    def _context(self) -> list[SimDevice]:
        bits = [SimData(0, values=False, datatype=DataType.BITS)]
        context = []
        for device in self.devices.values():
            holding, inputs = device._blocks()
            context.append(SimDevice(device.unit_id, simdata=(bits, list(bits), holding, inputs),
                                     action=self._action_for(device)))
        return context

    async def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        await self.close()
        server = ModbusTcpServer(self._context(), address=(host, port),
                                 trace_packet=self._trace_packet, trace_pdu=self._trace_pdu)
        await server.serve_forever(background=True)
        self._server, self._rtu = server, False
        return int(server.transport.sockets[0].getsockname()[1])

    async def serve_rtu(self, port: str, *, baudrate: int = 9600, parity: str = "N",
                        stopbits: int = 1) -> None:
        await self.close()
        server = ModbusSerialServer(self._context(), framer=FramerType.RTU, port=port, baudrate=baudrate,
                                    parity=parity, stopbits=stopbits, trace_packet=self._trace_packet,
                                    trace_pdu=self._trace_pdu)
        await server.serve_forever(background=True)
        self._server, self._rtu = server, True

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()

    # ---------------------------------------------------------- the wire
    def _trace_pdu(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            device = self.devices.get(pdu.dev_id)
            self._drop = device is None or device.silent
            self._corrupt_this = False
            if device is not None:
                device.requests += 1
                if device.corrupt > 0:
                    device.corrupt -= 1
                    self._corrupt_this = True
        return pdu

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        if self._drop:
            return b""
        if self._corrupt_this:
            self._corrupt_this = False
            # Modbus TCP has no checksum to break: a corrupted answer is lost.
            return data[:-1] + bytes([data[-1] ^ 0xFF]) if self._rtu else b""
        return data

    def _action_for(self, device: SimModbusDevice) -> Any:
        async def action(function: int, start: int, address: int, count: int,
                         registers: list[int], set_values: Any) -> ExcCodes | None:
            if set_values:
                return ExcCodes.ILLEGAL_FUNCTION  # a meter's measurements are read-only
            if self._drop:
                return None
            values = await device._current()
            if isinstance(values, MeterFailure):
                return self._fault(values)
            if device.exception_code is not None:
                return ExcCodes(device.exception_code)
            end = address + count
            for f in device.map.fields:
                if f.function == function and f.address < end and address < f.end:
                    registers[f.address - start:f.end - start] = encode_field(f, values.get(f.quantity))
            return None

        return action

    def _fault(self, failure: MeterFailure) -> ExcCodes | None:
        """Play a source's failure on the wire for this one request."""
        if failure.kind == MeterFailureKind.EXCEPTION_RESPONSE:
            return ExcCodes.DEVICE_FAILURE
        if failure.kind == MeterFailureKind.CRC:
            self._corrupt_this = True
            return None
        self._drop = True  # no answer, timeout, disconnected, implausible: silence
        return None


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


# ------------------------------------------------------------------ sources
def drifting_source(power_w: float = 7360.0, start_wh: float = 1_234_567.0, voltage_v: float = 230.0,
                    phases: int = 3, clock: Callable[[], float] = time.monotonic) -> Source:
    """Values of a meter feeding a constant load: the import register grows in real time."""
    t0 = clock()
    amps = power_w / (voltage_v * phases)

    async def read() -> Values:
        energy = start_wh + power_w * (clock() - t0) / 3600.0
        values: dict[str, float | None] = {"energy_import": energy, "energy_export": 0.0, "power": power_w,
                                           "frequency": 50.0, "power_factor": 1.0}
        for n in (1, 2, 3):
            live = n <= phases
            values[f"voltage_l{n}"] = voltage_v
            values[f"current_l{n}"] = amps if live else 0.0
            values[f"power_l{n}"] = amps * voltage_v if live else 0.0
            values[f"power_factor_l{n}"] = 1.0
        return values

    return read


class LoopbackSimMeter:
    """The simulation's meter served as a Modbus TCP device on loopback, read by the real driver.

    This is the daemon's ``sim-modbus`` meter kind: the physical simulation's
    values travel through the register map's encoding, a pymodbus server, a
    TCP socket, the pymodbus client and the decoder, as a real meter's would.
    Server and client start on the first read (construction needs no event
    loop); failures queued on the simulated meter (``fail_next``) turn into
    the matching fault on the wire.
    """

    def __init__(self, sim_meter: Meter, model: str | RegisterMap = "sdm630", *, unit_id: int = 1,
                 clock: Clock | None = None, timeout_s: float = 0.25, retries: int = 0,
                 max_power_w: float | None = None) -> None:
        self.sim_meter = sim_meter
        self.map = load_map(model) if isinstance(model, str) else model
        self.unit_id = unit_id
        self.clock = clock or RealClock()
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_power_w = max_power_w
        self.device: SimModbusDevice | None = None
        self.meter: ModbusMeter | None = None
        self._closed = False

    async def _start(self) -> ModbusMeter:
        self.device = SimModbusDevice(self.map, source=self.sim_meter.read, unit_id=self.unit_id)
        port = await self.device.serve_tcp("127.0.0.1", 0)
        bus = ModbusBus(BusSettings("tcp", host="127.0.0.1", tcp_port=port, timeout_s=self.timeout_s))
        self.meter = ModbusMeter(bus, self.map, self.unit_id, clock=self.clock, retries=self.retries,
                                 max_power_w=self.max_power_w, name=f"sim-modbus {self.map.model}")
        return self.meter

    async def read(self) -> MeterReading | MeterFailure:
        if self._closed:
            return MeterFailure(MeterFailureKind.DISCONNECTED, "sim-modbus: closed")
        meter = self.meter or await self._start()
        return await meter.read()

    async def close(self) -> None:
        self._closed = True
        if self.meter is not None:
            await self.meter.close()
        if self.device is not None:
            await self.device.close()
        await self.sim_meter.close()


# --------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m hal.meters.simdevice",
                                     description="Serve a simulated energy meter over Modbus.")
    parser.add_argument("--model", default="sdm630", help="register map (default: sdm630)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--tcp", metavar="HOST:PORT", help="listen for Modbus TCP")
    where.add_argument("--rtu", metavar="PORT", help="answer Modbus RTU on this serial port")
    parser.add_argument("--unit", type=int, default=1, help="unit id (default: 1)")
    parser.add_argument("--baud", type=int, default=9600)
    parser.add_argument("--parity", default="N", choices=("N", "E", "O"))
    parser.add_argument("--power", type=float, default=7360.0, help="load in W (default: 7360)")
    args = parser.parse_args(argv)

    async def serve() -> None:
        device = SimModbusDevice(load_map(args.model), source=drifting_source(args.power), unit_id=args.unit)
        if args.tcp:
            host, _, port = args.tcp.rpartition(":")
            bound = await device.serve_tcp(host or "127.0.0.1", int(port))
            print(f"{args.model} unit {args.unit} on Modbus TCP {host or '127.0.0.1'}:{bound}", flush=True)
        else:
            await device.serve_rtu(args.rtu, baudrate=args.baud, parity=args.parity)
            print(f"{args.model} unit {args.unit} on {args.rtu} (RTU {args.baud})", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await device.close()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
