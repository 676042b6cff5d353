"""The daemon under systemd's eyes: READY=1, watchdog pings, journald levels, a hung safety loop.

The subprocess daemon of the CLI rig runs with a fake NOTIFY_SOCKET, WATCHDOG_USEC
and JOURNAL_STREAM; the hang is injected into an in-process daemon's simulated
pilot, whose read then blocks.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import tempfile
import threading
from typing import TYPE_CHECKING

from tests.integration.conftest import charging, until

if TYPE_CHECKING:
    from tests.integration.control_rig import Rig

pytest_plugins = ("tests.integration.control_rig",)  # the rig fixture


def test_ready_then_watchdog_pings_from_the_daemon_process(rig: Rig):
    said = rig.received()
    assert said and said[0] == "READY=1\nSTATUS=CP-CLI-1: 1 connector(s)"
    pings = len([m for m in said if m == "WATCHDOG=1"])
    rig.wait(lambda: len([m for m in rig.received() if m == "WATCHDOG=1"]) >= pings + 2, "two more pings", 10)


def test_log_lines_carry_syslog_levels_for_journald(rig: Rig):
    lines = [line for line in rig.log.read_text().splitlines() if line]
    assert lines and all(re.match(r"<[0-7]>", line) for line in lines), lines[:5]
    assert "<6>chargepoint.app.daemon: station CP-CLI-1 running with 1 connector(s)" in lines
    assert any(line.startswith("<6>chargepoint.app.watchdog: told systemd: ready") for line in lines)


async def test_a_hung_safety_loop_stops_the_pings_opens_the_contactor_and_fails_the_daemon(
        station, csms, monkeypatch):
    directory = tempfile.mkdtemp(prefix="cp-notify-", dir="/tmp")
    path = os.path.join(directory, "notify")
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.settimeout(0.05)
    said: list[str] = []
    reading = threading.Event()
    reading.set()

    def read() -> None:  # continuously, as systemd does: the datagram queue is short
        while reading.is_set():
            try:
                said.append(receiver.recv(4096).decode())
            except TimeoutError:
                continue

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    flowing = threading.Event()
    flowing.set()
    try:
        async with station(control={"enabled": False}) as daemon:
            world = await charging(csms, daemon)
            assert world.contactor.commanded
            await until(lambda: daemon.watchdog.pings >= 2, what="watchdog pings")
            read = world.pilot.read

            def blocking_read():  # the ADC stops answering (bounded, so the thread ends)
                flowing.wait(20.0)
                return read()

            world.pilot.read = blocking_read
            flowing.clear()
            await until(lambda: daemon.failure is not None, timeout=15, what="the hang to be noticed")
            assert "safety loop connector-1 stopped stepping" in daemon.failure
            await until(lambda: not world.contactor.commanded, what="the contactor opened")
            assert world.pilot.duty_percent == 100.0
            pings = daemon.watchdog.pings
            await asyncio.sleep(0.5)  # two and a half ping intervals: none may come
            assert daemon.watchdog.pings == pings
    finally:
        flowing.set()
        await asyncio.sleep(0.1)
        reading.clear()
        reader.join(1.0)
        receiver.close()
        os.unlink(path)
        os.rmdir(directory)
    assert said[0].startswith("READY=1")
    hang = next(i for i, m in enumerate(said) if m.startswith("STATUS=safety loop connector-1"))
    assert "WATCHDOG=1" in said[:hang]
    assert "WATCHDOG=1" not in said[hang:]
    assert any(m.startswith("STOPPING=1") for m in said[hang:])
