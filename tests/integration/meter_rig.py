"""Real serial lines for the meter tests and the benchmark: socat pty pairs and a relay.

* :class:`PtyPair`: ``socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B``,
  the two /dev/pts paths parsed from socat's stderr, reachable through the
  stable link paths; :meth:`PtyPair.stop` then :meth:`PtyPair.start` makes
  the line vanish and come back on the same paths, like a USB RS-485 adapter
  unplugged and plugged in again.
* :class:`LineRelay`: joins two pty pairs (client <-> relay <-> meter) and
  forwards bytes both ways (in a thread); it can corrupt or cut short the meter's answers
  (CRC errors, truncated frames) and can pace bytes at a baud rate, so a pty
  behaves like an RS-485 line of that speed (the benchmark).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import termios
import threading
import time
import tty
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from hal.meters.bus import BusSettings, ModbusBus
from hal.meters.modbus_meter import ModbusMeter
from hal.meters.registermap import RegisterMap
from hal.meters.simdevice import SimModbusDevice, SimModbusLine

SOCAT = shutil.which("socat")
PTY_LINE = re.compile(r"PTY is (/dev/pts/\d+)")


class PtyPair:
    """Two connected pseudo-terminals with stable names (see the module doc)."""

    def __init__(self, a: Path, b: Path) -> None:
        self.a = Path(a)
        self.b = Path(b)
        self.pts: tuple[str, str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 5.0) -> PtyPair:
        if SOCAT is None:
            raise RuntimeError("socat is not installed (make test installs it)")
        self._proc = subprocess.Popen(
            [SOCAT, "-d", "-d", f"pty,raw,echo=0,link={self.a}", f"pty,raw,echo=0,link={self.b}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        assert self._proc.stderr is not None
        found: list[str] = []
        text = b""
        deadline = time.monotonic() + timeout
        fd = self._proc.stderr.fileno()
        while len(found) < 2:
            left = deadline - time.monotonic()
            if left <= 0 or self._proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"socat did not report two ptys: {text.decode(errors='replace')}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                text += chunk
                found = PTY_LINE.findall(text.decode(errors="replace"))
        self.pts = (found[0], found[1])
        while not (self.a.exists() and self.b.exists()):
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("socat's link paths did not appear")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()
        # socat removes its links on SIGTERM; make sure, for the next start.
        for link in (self.a, self.b):
            if link.is_symlink():
                link.unlink()


def open_raw(path: Path | str) -> int:
    """A pty end as a non-blocking raw file descriptor."""
    fd = os.open(str(path), os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[3] &= ~termios.ECHO
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd


class LineRelay:
    """Forwards between two pty ends in a thread of its own (see the module doc).

    ``client_end`` is the pty the Modbus client's pair ends in on the relay's
    side, ``meter_end`` the one the simulated meter's pair ends in. Bytes from
    the meter can be corrupted (``corrupt = True``: the last byte of each
    chunk inverted) or cut short (``truncate = N``: the last N bytes of each
    chunk dropped). With ``baudrate``, every chunk is delivered only after
    the time its bytes take on a half-duplex line of that speed
    (``bits_per_char`` per byte), one after the other. A thread with
    ``select`` timeouts keeps that timing to tens of microseconds, where an
    event loop's timers would add up to a millisecond per chunk.
    """

    def __init__(self, client_end: Path | str, meter_end: Path | str, *, baudrate: int | None = None,
                 bits_per_char: int = 11) -> None:
        self.client_end = client_end
        self.meter_end = meter_end
        self.char_time_s = bits_per_char / baudrate if baudrate else 0.0
        self.corrupt = False
        self.truncate = 0
        self.bytes_to_meter = 0
        self.bytes_to_client = 0
        self._fds: tuple[int, int] | None = None
        self._wake: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False

    def start(self) -> LineRelay:
        self._fds = (open_raw(self.client_end), open_raw(self.meter_end))
        self._wake = os.pipe()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="line-relay", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None or self._wake is None:
            return
        self._stopping = True
        os.write(self._wake[1], b"x")
        thread.join(5)
        for fd in (*(self._fds or ()), *self._wake):
            os.close(fd)
        self._fds = self._wake = None

    def _run(self) -> None:
        assert self._fds is not None and self._wake is not None
        client_fd, meter_fd = self._fds
        pending: deque[tuple[float, int, bytes]] = deque()
        line_free_at = 0.0
        while not self._stopping:
            timeout = max(0.0, pending[0][0] - time.monotonic()) if pending else 0.5
            ready, _, _ = select.select([client_fd, meter_fd, self._wake[0]], [], [], timeout)
            for src in ready:
                if src == self._wake[0]:
                    return
                try:
                    data = os.read(src, 4096)
                except BlockingIOError:
                    continue
                except OSError:
                    return  # a pty went away
                from_meter = src == meter_fd
                if from_meter:
                    if self.truncate:
                        data = data[:-self.truncate]
                    if self.corrupt and data:
                        data = data[:-1] + bytes([data[-1] ^ 0xFF])
                    self.bytes_to_client += len(data)
                else:
                    self.bytes_to_meter += len(data)
                if data:
                    line_free_at = max(time.monotonic(), line_free_at) + len(data) * self.char_time_s
                    pending.append((line_free_at, client_fd if from_meter else meter_fd, data))
            now = time.monotonic()
            while pending and pending[0][0] <= now:
                _, dst, data = pending.popleft()
                self._write(dst, data)

    @staticmethod
    def _write(fd: int, data: bytes) -> None:
        while data:
            try:
                written = os.write(fd, data)
            except BlockingIOError:
                time.sleep(0.0002)
                continue
            except OSError:
                return
            data = data[written:]


# ----------------------------------------------------------------- helpers
#: Values a meter holds in the tests (canonical units); every map picks its own.
VALUES: dict[str, float | None] = {
    "energy_import": 12_345_678.0, "energy_export": 4321.0, "power": -1234.5,
    "power_l1": 411.5, "power_l2": 412.0, "power_l3": -2058.0,
    "current_l1": 1.786, "current_l2": 16.002, "current_l3": 31.99,
    "voltage_l1": 230.1, "voltage_l2": 229.9, "voltage_l3": 231.4,
    "frequency": 49.98, "power_factor": 0.987,
    "power_factor_l1": 0.999, "power_factor_l2": -0.5, "power_factor_l3": 0.91,
}


def assert_values(register_map: RegisterMap, values: object) -> None:
    """What arrived is what the meter holds, to the resolution of its registers."""
    assert isinstance(values, dict), values
    assert set(values) == set(register_map.quantities)
    for f in register_map.fields:
        expected = VALUES[f.quantity]
        assert expected is not None
        tolerance = max(f.resolution / 2 + 1e-9, abs(expected) * 1e-6)
        assert abs(values[f.quantity] - expected) <= tolerance, (f.quantity, values[f.quantity], expected)


@asynccontextmanager
async def rtu_line(tmp_path: Path, *devices: SimModbusDevice, name: str = "bus") -> AsyncIterator[PtyPair]:
    """A socat pty pair with ``devices`` answering on its meter end; yields the pair (client: .a)."""
    pair = PtyPair(tmp_path / f"{name}-client", tmp_path / f"{name}-meter").start()
    line = SimModbusLine(list(devices))
    await line.serve_rtu(str(pair.b))
    try:
        yield pair
    finally:
        await line.close()
        pair.stop()


def rtu_meter(pair: PtyPair, register_map: RegisterMap, unit: int, *, timeout_s: float = 0.3,
              retries: int = 0, **kwargs: object) -> ModbusMeter:
    bus = ModbusBus(BusSettings("rtu", port=str(pair.a), baudrate=9600, timeout_s=timeout_s))
    return ModbusMeter(bus, register_map, unit, retries=retries, **kwargs)  # type: ignore[arg-type]


def tcp_meter(port: int, register_map: RegisterMap, unit: int, *, timeout_s: float = 0.3,
              retries: int = 0, **kwargs: object) -> ModbusMeter:
    bus = ModbusBus(BusSettings("tcp", host="127.0.0.1", tcp_port=port, timeout_s=timeout_s))
    return ModbusMeter(bus, register_map, unit, retries=retries, **kwargs)  # type: ignore[arg-type]
