"""Modbus transports: RTU over RS-485 (pyserial) and Modbus TCP, on pymodbus's async clients.

A :class:`ModbusBus` is one physical line (or one TCP connection): one
pymodbus client and one lock, shared by every meter on it, so that a station's
own meter and a second meter for the grid connection take turns on one RS-485
adapter. :class:`BusPool` hands out one bus per port.

Every read returns registers or a :class:`~hal.interfaces.MeterFailure`;
nothing here raises for bus trouble. Failures are told apart from what came
back on the wire (recorded through pymodbus's ``trace_packet`` hook):

* ``no_answer``: not one byte within the timeout (meter off, wrong unit id,
  broken A/B wire);
* ``timeout``: bytes came, but no complete frame in time (a frame cut short);
* ``crc``: a complete RTU frame whose checksum is wrong (noise, termination);
* ``exception_response``: the meter answered with a Modbus exception;
* ``disconnected``: the serial port cannot be opened or went away (a USB
  RS-485 adapter unplugged), or the TCP connection is refused or lost. A port
  that cannot be opened is told apart by why (``extra["cause"]``): it does not
  exist (``missing``: adapter unplugged, wrong path) or this user may not open
  it (``permission``: not in the group that owns it, usually dialout), each
  with its own advice in the detail.

The client is created on first use and re-created after the port vanished:
each read that finds the bus closed tries to reopen it once, so a USB adapter
that comes back (same device path) is picked up by the next poll.

pymodbus retries and reconnects are switched off (``retries=0``,
``reconnect_delay=0``): the meter decides about retries, and the poll loop is
the reconnect loop, so nothing runs behind the station's back.
"""

from __future__ import annotations

import asyncio
import errno
import grp
import logging
import os
import pwd
import time
from dataclasses import dataclass
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException
from pymodbus.framer.rtu import FramerRTU

from hal.interfaces import MeterFailure, MeterFailureKind

log = logging.getLogger(__name__)

# pymodbus logs every failed request at ERROR (with frame dumps). Here a
# failure is a value that the station counts and logs once, in its own words,
# so the library's chatter is kept out unless someone asked for it.
_pymodbus_log = logging.getLogger("pymodbus")
if _pymodbus_log.level == logging.NOTSET:
    _pymodbus_log.setLevel(logging.CRITICAL)

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target failed to respond",
}

#: Consecutive silent requests after which a TCP connection is replaced
#: (a half-open connection or a gateway that lost its state).
TCP_SILENCE_RECONNECT = 3


@dataclass(frozen=True)
class BusSettings:
    """Where a bus is and how to talk on it."""

    transport: str = "rtu"
    port: str = "/dev/ttyUSB0"
    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    host: str = ""
    tcp_port: int = 502
    timeout_s: float = 0.5

    def __post_init__(self) -> None:
        if self.transport not in ("rtu", "tcp"):
            raise ValueError(f"transport must be 'rtu' or 'tcp', not {self.transport!r}")
        if self.transport == "tcp" and not self.host:
            raise ValueError("a Modbus TCP bus needs a host")
        if self.parity not in ("N", "E", "O"):
            raise ValueError(f"parity must be N, E or O, not {self.parity!r}")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")

    @property
    def key(self) -> str:
        """What identifies the line: two meters with the same key share a bus."""
        return f"rtu:{self.port}" if self.transport == "rtu" else f"tcp:{self.host}:{self.tcp_port}"

    def describe(self) -> str:
        if self.transport == "rtu":
            return f"{self.port} {self.baudrate} {self.bytesize}{self.parity}{self.stopbits}"
        return f"{self.host}:{self.tcp_port}"

    @property
    def char_time_s(self) -> float:
        """Time on the wire of one character (start, data, parity, stop bits)."""
        bits = 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits
        return bits / self.baudrate

    @property
    def frame_gap_s(self) -> float:
        """The silence that separates RTU frames: 3.5 characters, 1.75 ms above 19200 baud."""
        if self.transport != "rtu":
            return 0.0
        return 0.00175 if self.baudrate > 19200 else 3.5 * self.char_time_s


class ModbusBus:
    """One line and its client, shared by the meters on it (see the module doc)."""

    def __init__(self, settings: BusSettings) -> None:
        self.settings = settings
        self.lock = asyncio.Lock()
        self.users = 0
        self._client: Any = None
        self._rx = b""
        self._lost = False
        self._silent = 0
        self._last_frame = 0.0
        self._closed = False

    # ----------------------------------------------------------- lifecycle
    def acquire(self) -> ModbusBus:
        """One more meter uses this bus (each :class:`ModbusMeter` does this once)."""
        self.users += 1
        self._closed = False
        return self

    async def release(self) -> None:
        """One user is done; the last one closes the port."""
        self.users = max(0, self.users - 1)
        if self.users == 0:
            await self.close()

    async def close(self) -> None:
        self._closed = True
        self._drop_client()

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.connected

    def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001 - a dead port may fail to close; it is gone either way
                log.debug("closing %s failed", self.settings.describe(), exc_info=True)

    def _new_client(self) -> Any:
        s = self.settings
        common: dict[str, Any] = dict(timeout=s.timeout_s, retries=0, reconnect_delay=0,
                                      trace_packet=self._trace_packet,
                                      trace_connect=self._trace_connect)
        if s.transport == "rtu":
            client = AsyncModbusSerialClient(s.port, baudrate=s.baudrate, bytesize=s.bytesize,
                                             parity=s.parity, stopbits=s.stopbits, **common)
        else:
            client = AsyncModbusTcpClient(s.host, port=s.tcp_port, **common)
        # Silence is reported, not acted on by the library: it would close a TCP
        # connection on its own after a few unanswered requests.
        client.set_max_no_responses(1_000_000)
        return client

    async def _connect(self) -> MeterFailure | None:
        if self.connected:
            return None
        self._drop_client()
        client = self._new_client()
        reason = ""
        try:
            ok = await asyncio.wait_for(client.connect(), self.settings.timeout_s + 1.0)
        except Exception as exc:  # noqa: BLE001 - e.g. termios.error for settings a port refuses
            ok = False
            reason = f" ({exc})"
            log.debug("connect %s: %r", self.settings.describe(), exc)
        if not ok or not client.connected:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
            if self.settings.transport == "rtu":
                # Why the port did not open tells the technician what to do; pymodbus only says no.
                why = await asyncio.to_thread(port_problem, self.settings.port)
                if why is not None:
                    cause, text = why
                    return MeterFailure(MeterFailureKind.DISCONNECTED,
                                        f"cannot open {self.settings.port}: {text}", {"cause": cause})
            what = "cannot open" if self.settings.transport == "rtu" else "cannot connect to"
            return MeterFailure(MeterFailureKind.DISCONNECTED, f"{what} {self.settings.describe()}{reason}")
        self._client = client
        self._silent = 0
        log.info("Modbus bus %s open", self.settings.describe())
        return None

    # ----------------------------------------------------------------- I/O
    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            # The line is busy until the last byte came: the inter-frame
            # silence counts from here.
            self._last_frame = time.monotonic()
            if len(data) > len(self._rx):
                # pymodbus passes the whole receive buffer each time: the longest
                # one seen is what arrived for the request in flight.
                self._rx = bytes(data)
        return data

    def _trace_connect(self, connected: bool) -> None:
        if not connected:
            self._lost = True

    async def _quiet_line(self) -> None:
        """Keep the inter-frame silence RTU requires before the next request."""
        wait = self._last_frame + self.settings.frame_gap_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)

    async def read(self, unit: int, function: int, address: int, count: int) -> list[int] | MeterFailure:
        """Read ``count`` registers with function 3 or 4; the caller holds :attr:`lock`."""
        try:
            return await self._read(unit, function, address, count)
        except Exception as exc:  # noqa: BLE001 - a failure is a value; a crashed poll loop is worse
            log.error("Modbus read on %s failed unexpectedly", self.settings.describe(), exc_info=True)
            self._drop_client()
            return MeterFailure(MeterFailureKind.DISCONNECTED, f"{self.settings.describe()}: {exc!r}")

    async def _read(self, unit: int, function: int, address: int, count: int) -> list[int] | MeterFailure:
        if self._closed:
            return MeterFailure(MeterFailureKind.DISCONNECTED, "bus closed")
        failure = await self._connect()
        if failure is not None:
            return failure
        client = self._client
        await self._quiet_line()
        self._rx = b""
        self._lost = False
        call = client.read_holding_registers if function == 3 else client.read_input_registers
        try:
            # pymodbus bounds the wait for the answer by the timeout; the outer
            # bound is for the library itself (its lock has no timeout).
            response = await asyncio.wait_for(call(address, count=count, device_id=unit),
                                              self.settings.timeout_s * 2 + 1.0)
        except ConnectionException as exc:
            self._drop_client()
            return MeterFailure(MeterFailureKind.DISCONNECTED, f"{self.settings.describe()}: {exc}")
        except (ModbusException, TimeoutError) as exc:
            self._last_frame = time.monotonic()  # whatever was on the line has had its time
            return self._silence(unit, function, exc)
        except OSError as exc:
            self._drop_client()
            return MeterFailure(MeterFailureKind.DISCONNECTED,
                                f"{self.settings.describe()}: {exc.strerror or exc}")
        self._silent = 0
        if response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            return MeterFailure(MeterFailureKind.EXCEPTION_RESPONSE,
                                f"unit {unit} answered exception {code:02d} ({name}) "
                                f"to function {function} at {address:#06x}",
                                {"exception_code": str(code)})
        registers = list(getattr(response, "registers", []))
        if response.function_code != function or len(registers) != count:
            return MeterFailure(MeterFailureKind.TIMEOUT,
                                f"unit {unit}: unexpected answer (function {response.function_code}, "
                                f"{len(registers)} of {count} registers)")
        return registers

    def _silence(self, unit: int, function: int, exc: BaseException) -> MeterFailure:
        """Classify a request that got no usable answer, from the bytes that did come."""
        rx = self._rx
        port_gone = self._lost or not (self._client is not None and self._client.connected)
        if port_gone and self.settings.transport == "rtu":
            self._drop_client()
            return MeterFailure(MeterFailureKind.DISCONNECTED, f"{self.settings.port} went away")
        self._silent += 1
        if self.settings.transport == "tcp" and (port_gone or self._silent >= TCP_SILENCE_RECONNECT):
            self._drop_client()
            if port_gone:
                return MeterFailure(MeterFailureKind.DISCONNECTED,
                                    f"{self.settings.describe()}: connection lost")
        timeout = f"{self.settings.timeout_s:g} s"
        if not rx:
            return MeterFailure(MeterFailureKind.NO_ANSWER, f"no answer from unit {unit} within {timeout}")
        if self.settings.transport != "rtu":
            return MeterFailure(MeterFailureKind.TIMEOUT,
                                f"unit {unit}: incomplete answer ({len(rx)} bytes) within {timeout}")
        expected = _rtu_frame_length(rx)
        if expected is None or len(rx) < expected:
            return MeterFailure(MeterFailureKind.TIMEOUT,
                                f"unit {unit}: frame cut short ({len(rx)} bytes) within {timeout}")
        frame = rx[:expected]
        crc = (frame[-2] << 8) | frame[-1]
        if not FramerRTU.check_CRC(frame[:-2], crc):
            return MeterFailure(MeterFailureKind.CRC, f"unit {unit}: CRC error in a {expected}-byte answer")
        if frame[0] != unit:
            return MeterFailure(MeterFailureKind.NO_ANSWER,
                                f"no answer from unit {unit}; unit {frame[0]} answered instead")
        return MeterFailure(MeterFailureKind.TIMEOUT, f"unit {unit}: answer not accepted ({exc})")


def port_problem(port: str) -> tuple[str, str] | None:
    """Why a serial port cannot be opened, as (cause, advice); None if it opens.

    Blocking (it opens the device): call it in a thread. ``missing``: no such
    device (the USB adapter is unplugged or the path is wrong); ``permission``:
    this user may not open it, which on a Pi means not being in the group that
    owns the device (dialout).
    """
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
            return "missing", ("no such device: is the RS-485 adapter plugged in, and is this its path? "
                               "(ls /dev/serial/by-id/ lists the adapters by name)")
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "permission", _permission_advice(port)
        return "error", exc.strerror or str(exc)
    os.close(fd)
    return None


def _permission_advice(port: str) -> str:
    user = _name(pwd.getpwuid, os.geteuid())
    try:
        group = _name(grp.getgrgid, os.stat(port).st_gid)
    except OSError:
        group = "dialout"
    return (f"permission denied: user {user} may not open it; add the user to the group that owns it "
            f"(sudo usermod -aG {group} {user}), then restart the service (or log in again)")


def _name(lookup: Any, number: int) -> str:
    try:
        return str(lookup(number)[0])
    except KeyError:
        return str(number)


def _rtu_frame_length(rx: bytes) -> int | None:
    """Length of the RTU response that ``rx`` starts with (reads 3/4 and exceptions)."""
    if len(rx) < 3:
        return None
    function = rx[1]
    if function & 0x80:
        return 5
    if function in (3, 4):
        return 5 + rx[2]
    return None


class BusPool:
    """One :class:`ModbusBus` per line, for the meters a station builds."""

    def __init__(self) -> None:
        self._buses: dict[str, ModbusBus] = {}

    def get(self, settings: BusSettings) -> ModbusBus:
        """The bus for ``settings.key``, shared; the same line must be configured alike."""
        bus = self._buses.get(settings.key)
        if bus is None:
            bus = self._buses[settings.key] = ModbusBus(settings)
        elif bus.settings != settings:
            raise ValueError(f"{settings.key} is already in use with other settings "
                             f"({bus.settings.describe()} vs {settings.describe()})")
        return bus
