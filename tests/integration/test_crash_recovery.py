"""Never lose a transaction: SIGKILL the daemon at random moments, many times.

The daemon runs as a subprocess on the sim hal with a driver that plugs in and
out by itself (free vend), against a loopback CSMS that keeps its own ledger of
every message. The CSMS is down for some of the runs, so kills also land while
offline and while the queue drains. At the end the ledger must hold every
session exactly once, with a start and a stop, and the energy billed must add
up to what the simulated meter measured.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.loopback_csms import LoopbackCsms
from tests.integration.loopback_csms201 import LoopbackCsms201

# The safety supervisor keeps each car charging across the kills (sessions end by the driver's
# unplug): fewer kills than when each one ended a session still land in every phase of one.
KILLS = 26
KILLS_201 = 12
SPEED = 30.0
SAMPLE_S = 10  # simulated seconds between periodic MeterValues
EV_POWER_W = 3 * 230 * 16


def write_config(path: Path, url: str, state: Path, versions: str = '["2.0.1", "1.6"]') -> None:
    path.write_text(f"""
[station]
identity = "CP-CRASH-1"
state_dir = "{state}"
free_vend = true
free_vend_id_tag = "CRASHTEST"
[ocpp]
csms_url = "{url}"
versions = {versions}
meter_value_sample_interval_s = {SAMPLE_S}
reconnect_min_s = 0.1
reconnect_max_s = 0.3
response_timeout_s = 2
[simulation]
speed = {SPEED}
driver = "cycle"
cycle_charge_s = 40
cycle_idle_s = 8
ev_capacity_wh = 400000
[meter]
poll_interval_s = 1.0
[control]
socket = "{path.parent / 'control.sock'}"
""")


class Daemon:
    """The daemon as a subprocess, and its systemd readiness (READY=1 on a notify socket of the test's)."""

    def __init__(self, process: asyncio.subprocess.Process, notify: socket.socket) -> None:
        self.process = process
        self.notify = notify

    async def ready(self, timeout: float = 30.0) -> None:
        """Until the daemon says READY=1: hal, store and safety loops up (its start is over)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            try:
                if b"READY=1" in self.notify.recv(4096):
                    return
            except BlockingIOError:
                assert self.process.returncode is None, "the daemon died during its start"
                await asyncio.sleep(0.02)
        raise AssertionError(f"the daemon was not ready within {timeout} s")


async def start_daemon(config: Path) -> Daemon:
    log = (config.parent / "daemon.log").open("ab")
    path = config.parent / "notify.sock"
    path.unlink(missing_ok=True)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(path))
    notify.setblocking(False)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chargepoint.cli", "run", "--config", str(config), "--log-level", "warning",
        stdout=asyncio.subprocess.DEVNULL, stderr=log, env={**os.environ, "NOTIFY_SOCKET": str(path)})
    return Daemon(process, notify)


async def kill(daemon: Daemon, config: Path) -> None:
    process = daemon.process
    assert process.returncode is None, (
        "the daemon died by itself:\n" + (config.parent / "daemon.log").read_text()[-3000:])
    process.send_signal(signal.SIGKILL)
    await process.wait()
    daemon.notify.close()


async def kill_at_random_moments(csms: LoopbackCsms | LoopbackCsms201, config: Path, kills: int,
                                 sessions: Callable[[], int], enough: int) -> None:
    """``kills`` runs, each SIGKILLed at a random moment (the CSMS away for some), then a clean one
    that lasts until the CSMS has seen ``enough`` sessions (``sessions()`` counts them; bounded).

    How many sessions the killed runs begin depends on how fast the machine starts a daemon;
    on a loaded one a few fewer. The last run charges on until the count means something."""
    rng = random.Random(20261124)
    port = csms.port
    online = True
    try:
        for run in range(kills):
            if run % 10 == 5 and online:  # the CSMS goes away for a few runs
                await csms.close()
                online = False
            elif run % 10 == 8 and not online:
                await (csms.start_on(port) if isinstance(csms, LoopbackCsms) else csms.start(port))
                online = True
            daemon = await start_daemon(config)
            if run % 5 == 4:  # killed during its start (recovery, the store opening)
                await asyncio.sleep(rng.uniform(0.05, 0.6))
            else:  # killed while it runs: the moment counts from its start being over, however slow
                await daemon.ready()
                await asyncio.sleep(rng.uniform(0.0, 1.3))
            await kill(daemon, config)
        if not online:
            await (csms.start_on(port) if isinstance(csms, LoopbackCsms) else csms.start(port))
        # a last, undisturbed run: everything left in the queue is delivered
        daemon = await start_daemon(config)
        await daemon.ready()
        await asyncio.sleep(2.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30.0
        while sessions() < enough and loop.time() < deadline:
            await asyncio.sleep(0.1)
        daemon.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(daemon.process.wait(), 30) == 0
        daemon.notify.close()
        # The simulation is the supervisor's (started on demand): it ends with the daemon's stop,
        # saving the meter's register, and removes its socket last.
        channel = config.parent / "state" / "safety.sock"
        for _ in range(200):
            if not channel.exists():
                break
            await asyncio.sleep(0.05)
        assert not channel.exists(), "the supervisor did not end with the daemon"
    finally:
        await csms.close()


def session_starts(csms: LoopbackCsms) -> list[Any]:
    """The distinct StartTransactions (a resend after a kill is the same start)."""
    return list({(s.payload["connector_id"], s.payload["meter_start"], s.payload["timestamp"]): s
                 for s in csms.of("StartTransaction")}.values())


def transactions_201(csms: LoopbackCsms201) -> int:
    """The transactions whose Started the CSMS has seen."""
    return len({r.payload["transaction_info"]["transaction_id"] for r in csms.of("TransactionEvent")
                if r.payload["event_type"] == "Started"})


async def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path):
    csms = await LoopbackCsms().start()
    config = tmp_path / "station.toml"
    state = tmp_path / "state"
    write_config(config, csms.url, state, versions='["1.6"]')
    await kill_at_random_moments(csms, config, KILLS, lambda: len(session_starts(csms)), 10)

    # OCPP 1.6 delivery is at least once: a kill between the CSMS's answer and the
    # station recording it sends the same message again, identical to the byte,
    # which the CSMS recognises (see LoopbackCsms.start_transaction). What must
    # never happen is a session lost, or one session billed as two.
    starts = session_starts(csms)
    stops = list({(s.payload["transaction_id"], s.payload["meter_stop"], s.payload["timestamp"]): s
                  for s in csms.of("StopTransaction")}.values())
    assert len(starts) >= 10, f"too few sessions to mean anything: {len(starts)}"
    # every transaction stopped exactly once
    tx_ids = list(range(100, 100 + len(starts)))
    stopped = [s.payload["transaction_id"] for s in stops]
    assert sorted(stopped) == tx_ids, "missing StopTransaction, or two different stops of one transaction"
    assert all(s.payload["transaction_id"] in tx_ids for s in csms.of("MeterValues"))
    # the queue is empty on disk
    db = sqlite3.connect(state / "chargepoint.sqlite")
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM transactions WHERE open = 1").fetchone()[0] == 0
    # energy: sessions bill disjoint stretches of the meter, and the meter's
    # whole advance is billed but for at most one sample interval per kill
    ranges = sorted((s.payload["meter_start"], stop.payload["meter_stop"])
                    for s, stop in zip(starts, sorted(stops, key=lambda r: r.payload["transaction_id"]),
                                       strict=True))
    assert all(end >= begin for begin, end in ranges)
    slack = EV_POWER_W * 1.0 / 3600 + 2  # the sim meter saves its register every simulated second
    for (_, end), (begin, _) in zip(ranges, ranges[1:], strict=False):
        assert begin >= end - slack, f"sessions overlap on the meter: {end} then {begin}"
    meter_wh = float((state / "sim-meter-1.txt").read_text())
    billed = sum(end - begin for begin, end in ranges)
    per_kill = EV_POWER_W * SAMPLE_S / 3600 + slack
    # 1.6 bills whole Wh, both ends rounded up by one rule: sessions that follow each other closely (the
    # supervisor keeps each car charging across the kills, so most end by the driver's unplug) meet at
    # the same Wh, never share one. Beyond the meter only by the last stop's rounding and by the slack
    # a kill may leave between a stop and the next start (see above).
    overlap = sum(max(0, end - begin) for (_, end), (begin, _) in zip(ranges, ranges[1:], strict=False))
    assert billed <= meter_wh + 1 + overlap, ranges
    assert meter_wh - billed <= (KILLS + 1) * per_kill, (meter_wh, billed)


def assert_whole_transactions_201(csms: LoopbackCsms201, state: Path) -> dict[str, dict[int, dict]]:
    """Every transaction the CSMS heard of (at least five) has one Started and one Ended, its
    messages numbered 0..n without a gap, a resend being the message first sent (offline flag and
    all); nothing is left queued or open. Returns each transaction's messages by seqNo."""
    by_tx: dict[str, dict[int, dict]] = {}
    for received in csms.of("TransactionEvent"):
        event = received.payload
        numbered = by_tx.setdefault(event["transaction_info"]["transaction_id"], {})
        assert numbered.setdefault(event["seq_no"], event) == event, "two messages under one seqNo"
    assert len(by_tx) >= 5, f"too few transactions to mean anything: {len(by_tx)}"
    for tx_id, numbered in by_tx.items():
        kinds = [numbered[n]["event_type"] for n in sorted(numbered)]
        assert sorted(numbered) == list(range(len(numbered))), f"{tx_id}: seqNo gap {sorted(numbered)}"
        assert kinds[0] == "Started" and kinds.count("Started") == 1, f"{tx_id}: {kinds}"
        assert kinds[-1] == "Ended" and kinds.count("Ended") == 1, f"{tx_id}: {kinds}"
    db = sqlite3.connect(state / "chargepoint.sqlite")
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM transactions WHERE open = 1").fetchone()[0] == 0
    return by_tx


async def test_sigkill_in_201_every_transaction_started_and_ended_once_numbered_without_gaps(tmp_path):
    """The same in OCPP 2.0.1: each transaction (the station's own id) has one Started and one
    Ended, its messages numbered 0..n without a gap; a message resent after a kill is the one first
    sent (its number, its offline flag and all)."""
    csms = await LoopbackCsms201().start()
    config = tmp_path / "station.toml"
    state = tmp_path / "state"
    write_config(config, csms.url, state, versions='["2.0.1"]')
    await kill_at_random_moments(csms, config, KILLS_201, lambda: transactions_201(csms), 5)

    assert_whole_transactions_201(csms, state)
