"""sd_notify, the watchdog's gating on the safety loops, and journald log levels.

The gating is tested on an injected clock with stand-in loops; one test runs a
real safety loop on the simulated hardware whose pilot read is made to hang,
against a fake NOTIFY_SOCKET (a datagram socket of the test's own).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chargepoint.app.watchdog import (
    JournalFormatter,
    Notifier,
    Watchdog,
    stderr_is_journal,
    watchdog_interval,
)
from chargepoint.safety.evse import EvseController
from chargepoint.safety.limits import LimitClaims
from hal.clock import RealClock
from hal.sim.world import SimWorld


class NotifyReceiver:
    """A stand-in for systemd's notification socket that reads continuously, as systemd does
    (a Unix datagram queue holds only a few messages)."""

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="cp-notify-", dir="/tmp")  # sun_path is short
        self.path = os.path.join(self.directory, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self._said: list[str] = []
        self._taken = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            with self._lock:
                self._said.append(message)

    def new(self) -> list[str]:
        """What arrived since the last call (after a moment for datagrams in flight)."""
        self._stop.wait(0.1)
        with self._lock:
            messages, self._taken = self._said[self._taken:], len(self._said)
        return messages

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sock.close()
        os.unlink(self.path)
        os.rmdir(self.directory)


@pytest.fixture
def notify() -> Iterator[NotifyReceiver]:
    receiver = NotifyReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


class Loop:
    """A stand-in safety loop: steps when the test says so."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.last_step_monotonic = 0.0

    def step(self) -> None:
        self.last_step_monotonic += 0.01


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_notifier_sends_datagrams_and_is_silent_without_systemd(notify):
    notifier = Notifier({"NOTIFY_SOCKET": notify.path})
    assert notifier.enabled and notifier.send("READY=1", "STATUS=up")
    assert notify.new() == ["READY=1\nSTATUS=up"]
    notifier.close()
    silent = Notifier({})
    assert not silent.enabled and not silent.send("READY=1")


def test_notifier_reaches_an_abstract_socket():
    name = f"cp-notify-test-{os.getpid()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name)
    try:
        assert Notifier({"NOTIFY_SOCKET": "@" + name}).send("WATCHDOG=1")
        assert receiver.recv(100) == b"WATCHDOG=1"
    finally:
        receiver.close()


def test_a_gone_systemd_never_raises(tmp_path: Path):
    assert not Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")}).send("WATCHDOG=1")


def test_watchdog_interval_is_half_of_watchdog_sec_for_this_process():
    assert watchdog_interval({"WATCHDOG_USEC": "10000000"}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}) == 5.0
    assert watchdog_interval({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({}) is None


def test_pings_only_while_every_safety_loop_steps(notify):
    path = notify.path
    now = FakeTime()
    loops = [Loop("connector-1"), Loop("connector-2")]
    hung: list[object] = []
    dog = Watchdog(loops, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}, stale_s=2.0,
                   on_hang=hung.append, monotonic=now)
    assert dog.interval_s == 0.5
    for _ in range(8):  # 2 s of healthy loops, a look every 0.25 s: a ping every 0.5 s
        for loop in loops:
            loop.step()
        dog.check()
        now.now += 0.25
    assert notify.new() == ["WATCHDOG=1"] * 4
    for _ in range(12):  # connector-2 stops stepping; 3 s pass
        loops[0].step()
        dog.check()
        now.now += 0.25
    said = notify.new()
    assert said[-1].startswith("STATUS=safety loop connector-2 stopped stepping for more than 2 s")
    assert "WATCHDOG=1" not in said[said.index(said[-1]):]
    assert hung == [loops[1]] and dog.failed is not None
    for _ in range(8):  # it steps again: too late, pings never resume
        for loop in loops:
            loop.step()
        dog.check()
        now.now += 0.25
    assert notify.new() == [] and hung == [loops[1]]


def test_no_pings_without_a_watchdog_but_hangs_are_still_found(notify):
    path = notify.path
    now = FakeTime()
    loop = Loop("connector-1")
    hung: list[object] = []
    dog = Watchdog([loop], env={"NOTIFY_SOCKET": path}, stale_s=1.0, on_hang=hung.append, monotonic=now)
    for _ in range(8):
        dog.check()
        now.now += 0.25
    assert hung == [loop]
    assert notify.new() == ["STATUS=safety loop connector-1 stopped stepping for more than 1 s"]


async def test_ready_waits_for_the_safety_loops_to_step(notify):
    path = notify.path
    loop = Loop("connector-1")
    dog = Watchdog([loop], env={"NOTIFY_SOCKET": path})
    assert not await dog.ready("station X", timeout_s=0.05)
    assert notify.new() == []
    stepping = asyncio.get_running_loop().call_later(0.02, loop.step)
    assert await dog.ready("station X", timeout_s=5.0)
    stepping.cancel()
    dog.stopping()
    assert notify.new() == ["READY=1\nSTATUS=station X", "STOPPING=1\nSTATUS=stopping"]


async def test_pings_stop_when_a_real_safety_loop_hangs_in_a_pilot_read(notify):
    """The safety loop of the simulated hardware, whose pilot read is made to block.

    The loop runs in its real thread; the watchdog's time is the test's, and each
    check is made once the loop has stepped (healthy) or once its read is known
    to block (hung), so the outcome does not depend on how busy the machine is.
    """
    path = notify.path
    world = SimWorld(RealClock())
    limits = LimitClaims()
    limits.set("station", 16.0)
    evse = EvseController(world.pilot, world.contactor, world.faults, RealClock(), limits, name="connector-1")
    flowing = threading.Event()
    flowing.set()
    blocked = threading.Event()
    read = world.pilot.read

    def blocking_read():  # blocks (bounded) while the test holds the gate
        if not flowing.is_set():
            blocked.set()
        flowing.wait(30.0)
        return read()

    world.pilot.read = blocking_read  # type: ignore[method-assign]
    hung: list[object] = []
    now = FakeTime()
    dog = Watchdog([evse], env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"}, stale_s=0.3,
                   on_hang=hung.append, monotonic=now)

    async def stepped_since(value: float) -> None:
        while evse.last_step_monotonic == value:
            await asyncio.sleep(0.001)

    evse.start()
    try:
        assert await asyncio.wait_for(dog.ready("test"), 30)
        for _ in range(3):  # healthy: a step between checks, a ping each time
            await asyncio.wait_for(stepped_since(evse.last_step_monotonic), 30)
            now.now += 0.1
            dog.check()
        assert dog.pings == 3 and dog.failed is None
        flowing.clear()
        assert await asyncio.to_thread(blocked.wait, 30.0), "the loop never reached its pilot read"
        for _ in range(10):  # hung: declared once past stale_s, and quiet from then on
            now.now += 0.1
            dog.check()
    finally:
        flowing.set()
        evse.close()
    said = notify.new()
    assert said[0] == "READY=1\nSTATUS=test"
    hang = next(i for i, m in enumerate(said) if m.startswith("STATUS=safety loop connector-1"))
    assert said[1:hang] == ["WATCHDOG=1"] * (hang - 1) and hang >= 4
    assert "WATCHDOG=1" not in said[hang:]
    assert dog.failed is not None and hung == [evse]


def test_journal_formatter_prefixes_every_line_with_the_level():
    formatter = JournalFormatter()

    def line(level: int, message: str) -> str:
        return formatter.format(logging.LogRecord("chargepoint.x", level, __file__, 1, message, None, None))

    assert line(logging.INFO, "hello") == "<6>chargepoint.x: hello"
    assert line(logging.WARNING, "careful") == "<4>chargepoint.x: careful"
    assert line(logging.ERROR, "a\nb") == "<3>chargepoint.x: a\n<3>b"
    assert line(logging.CRITICAL, "x").startswith("<2>")
    assert line(logging.DEBUG, "x").startswith("<7>")


def test_stderr_is_the_journal_only_when_journal_stream_names_it(tmp_path: Path):
    with open(tmp_path / "log", "w") as stream:
        st = os.fstat(stream.fileno())
        assert stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, fd=stream.fileno())
        assert not stderr_is_journal({"JOURNAL_STREAM": "1:2"}, fd=stream.fileno())
        assert not stderr_is_journal({}, fd=stream.fileno())
