"""How fast a backlog of transaction messages drains, and what charging writes to disk.

1. Drain rate. With one outstanding CALL at a time, a station can deliver at
   most one message per round trip. The run queues ``--messages`` transaction
   messages (a start, periodic samples, a stop) on disk while the CSMS is
   down, starts the bench CSMS as a separate process, and times from the
   accepted BootNotification until the queue is empty. The bound is the same
   message without persistence, in the same run over the same connection:
   ``--bound`` MeterValues of the same transaction, each built by the adapter
   from a sample as the drain builds it and sent when the last was answered,
   with nothing read from or written to the state database. Target: drain
   >= 0.9 of the bound (``DRAIN_TARGET``).

2. Write budget. An SD card wears with every write. The daemon (sim hal, run
   ``--speed`` times faster than real time, the sim meter's own register file
   switched off) charges for one simulated hour at the default sample interval
   while connected; the bytes the process wrote come from /proc/self/io:
   ``wchar`` (bytes handed to write()) and ``write_bytes`` (what reached the
   block layer, where the file system reports it).

Medians of ``--runs`` runs. This prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from chargepoint.core.events import (
    IdToken,
    MeterSample,
    ReadingContext,
    StopReason,
    TokenType,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.storage.outbox import Outbox
from chargepoint.core.storage.store import Store
from hal.interfaces import MeterReading

HOST = "127.0.0.1"
#: The drain's share of the same-message bound the station aims at (the footprint issue's target).
DRAIN_TARGET = 0.9


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def config(port: int, state: Path, **simulation: object) -> dict:
    return {
        "station": {"identity": "CP-BENCH-1", "state_dir": str(state)},
        # 1.6: the backlog and the bound are StartTransaction / MeterValues / StopTransaction.
        "ocpp": {"csms_url": f"ws://{HOST}:{port}", "versions": ["1.6"], "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.2},
        "simulation": {"persist_meter": False, **simulation},
    }


def start_csms(port: int) -> subprocess.Popen[bytes]:
    """The bench CSMS in its own process, so it does not share our event loop."""
    command = [sys.executable, "-m", "chargepoint.cli", "csms", "--quiet", "--port", str(port)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def queue_backlog(state: Path, messages: int) -> None:
    """Write a start, ``messages - 2`` periodic samples and a stop to the state database."""
    store = await Store.open(state)
    box = Outbox(store, max_entries=messages + 10)
    await box.attach(store)
    t0 = time.time() - messages * 60
    await box.put(TransactionStarted(1, "bench", IdToken("BENCHTAG"), 0.0, t0))
    for n in range(1, messages - 1):
        reading = MeterReading(timestamp=t0 + 60 * n, energy_import_wh=183.0 * n, power_w=11040.0,
                               currents_a=(16.0, 16.0, 16.0), voltages_v=(230.0, 230.0, 230.0))
        await box.put(MeterSample(1, "bench", reading, ReadingContext.PERIODIC, 16.0))
    await box.put(TransactionStopped(1, "bench", 183.0 * messages, t0 + 60 * messages, StopReason.LOCAL))
    await store.close()


async def until(condition, timeout: float, step: float = 0.005) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step took too long")
        await asyncio.sleep(step)


async def bound_rate(daemon: Daemon, transaction_id: int, count: int) -> float:
    """MeterValues per second without persistence: the drain's message and path, minus the store.

    Each is translated from a sample by the adapter (as the drain does) and sent
    through the same call path once the previous one was answered.
    """
    from ocpp.v16 import call

    from chargepoint.protocol.v16.translate import meter_value

    adapter = daemon.adapter
    measurands = daemon.settings.current.sampled_measurands
    t0 = time.time()
    began = time.perf_counter()
    for n in range(count):
        reading = MeterReading(timestamp=t0 + n, energy_import_wh=183.0 * n, power_w=11040.0,
                               currents_a=(16.0, 16.0, 16.0), voltages_v=(230.0, 230.0, 230.0))
        sample = MeterSample(1, "bound", reading, ReadingContext.PERIODIC, 16.0)
        request = call.MeterValues(connector_id=1, transaction_id=transaction_id,
                                   meter_value=[meter_value(sample, measurands)])
        await adapter.call(request, built_here=True)
    return count / (time.perf_counter() - began)


async def drain_run(messages: int, bound: int) -> tuple[float, float]:
    """One run: (messages drained per second, the bound in MeterValues per second)."""
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        state = Path(tmp)
        await queue_backlog(state, messages)
        port = free_port()
        daemon = Daemon(parse(config(port, state), "<bench>"))
        task = asyncio.ensure_future(daemon.run())
        csms = start_csms(port)
        try:
            await until(lambda: daemon.adapter is not None and daemon.adapter.accepted.is_set(), 30)
            began = time.perf_counter()
            ids: list[str] = []

            def drained() -> bool:
                remote = daemon.outbox.remote_id("bench")
                if remote is not None and not ids:
                    ids.append(remote)
                return len(daemon.outbox) == 0

            await until(drained, 600)
            rate = messages / (time.perf_counter() - began)
            return rate, await bound_rate(daemon, int(ids[0]) if ids else 1, bound)
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 30)
            csms.terminate()
            csms.wait(10)


def io_counters() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        name, value = line.split(":")
        fields[name] = int(value)
    return fields


async def write_budget_run(speed: float) -> tuple[int, int, int]:
    """Bytes written (wchar, write_bytes) for one simulated hour of charging, and samples sent."""
    with tempfile.TemporaryDirectory(prefix="bench-writes-") as tmp:
        port = free_port()
        csms = start_csms(port)
        daemon = Daemon(parse(config(port, Path(tmp), speed=speed, ev_capacity_wh=400_000), "<bench>"))
        task = asyncio.ensure_future(daemon.run())
        try:
            await until(lambda: daemon.adapter is not None and daemon.adapter.accepted.is_set(), 30)
            world = daemon.hardware.worlds[1]
            daemon.station.remote_start(IdToken("BENCHTAG", TokenType.LOCAL), 1)
            world.plug_in()
            await until(lambda: world.contactor.closed, 30)
            before = io_counters()
            await asyncio.sleep(3600 / speed)
            after = io_counters()
            tx = daemon.station.active_transactions()[0][1]
            samples = sum(1 for s in tx.samples if s.context == ReadingContext.PERIODIC)
            return after["wchar"] - before["wchar"], after["write_bytes"] - before["write_bytes"], samples
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 30)
            csms.terminate()
            csms.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="queued messages to drain")
    parser.add_argument("--runs", type=int, default=3, help="runs; medians are printed")
    parser.add_argument("--bound", type=int, default=5_000,
                        help="MeterValues sent without persistence for the bound")
    parser.add_argument("--speed", type=float, default=60.0, help="simulation speed for the write budget")
    parser.add_argument("--quick", action="store_true", help="1 run, 1,000 messages, speed 360")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs, args.messages, args.speed, args.bound = 1, 1_000, 360.0, 500
    print(f"bench/outbox.py  {datetime.date.today()}  {platform.machine()}  nproc={os.cpu_count()}  "
          f"python {platform.python_version()}")
    print(f"command: {' '.join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])])}")

    drains = []
    for run in range(1, args.runs + 1):
        rate, bound = asyncio.run(drain_run(args.messages, args.bound))
        drains.append((rate, bound))
        print(f"  drain run {run}: {rate:8.1f} msg/s   bound {bound:8.1f} msg/s   ratio {rate / bound:.2f}")
    ratios = [rate / bound for rate, bound in drains]
    rate = statistics.median(r for r, _ in drains)
    bound = statistics.median(b for _, b in drains)
    ratio = statistics.median(ratios)
    print(f"\ndrain of {args.messages:,} queued messages (median of {args.runs}):")
    print(f"  {'drain rate':<34}{rate:10.1f} msg/s")
    print(f"  {'bound (MeterValues, no store)':<34}{bound:10.1f} msg/s")
    label = f"drain / bound (target >= {DRAIN_TARGET})"
    print(f"  {label:<34}{ratio:10.2f}   {'met' if ratio >= DRAIN_TARGET else 'NOT met'}")

    budgets = [asyncio.run(write_budget_run(args.speed)) for _ in range(args.runs)]
    wchar = statistics.median(b[0] for b in budgets)
    block = statistics.median(b[1] for b in budgets)
    samples = statistics.median(b[2] for b in budgets)
    print(f"\nwrites per hour of charging at the default sample interval (60 s), median of {args.runs}:")
    print(f"  {'periodic samples queued':<28}{samples:10.0f}")
    print(f"  {'wchar (write() bytes)':<28}{wchar / 1024:10.1f} KiB/h")
    print(f"  {'write_bytes (block layer)':<28}{block / 1024:10.1f} KiB/h")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
