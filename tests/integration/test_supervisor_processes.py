"""The two processes for real: SIGKILL the daemon while charging, SIGKILL the supervisor.

The supervisor (``python -m chargepoint.supervisor``) and the daemon (``chargepoint
run``) run as subprocesses on the simulation, sped up 10x, against a loopback
CSMS. The test watches the supervisor as a read-only peer of its channel: every
state event it publishes, stamped on the supervisor's own (simulated) clock, so
"nothing changed until the grace ended" is read from the events themselves,
never from a sleep.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chargepoint.supervisor import wire
from chargepoint.supervisor.client import SupervisorClient
from tests.integration.loopback_csms import LoopbackCsms
from tests.integration.loopback_csms201 import LoopbackCsms201

SPEED = 20.0
GRACE_S = 300.0  # simulated: 15 s real; a daemon restart took 3 to 8 s on a loaded two-core machine
CURRENT_A = 10.0  # below the orphan cap (16 A): the duty does not change when the daemon goes


def write_config(path: Path, url: str, version: str) -> None:
    path.write_text(f"""
[station]
identity = "CP-SUPERVISED-1"
state_dir = "{path.parent / 'state'}"
free_vend = true
max_current_a = {CURRENT_A}
[ocpp]
csms_url = "{url}"
versions = ["{version}"]
meter_value_sample_interval_s = 10
reconnect_min_s = 0.1
reconnect_max_s = 0.3
[simulation]
speed = {SPEED}
[safety]
orphan_grace_s = {GRACE_S}
orphan_limit_a = 16
[control]
socket = "{path.parent / 'control.sock'}"
[meter]
poll_interval_s = 1.0
""")


class Watcher:
    """A read-only peer of the channel that keeps every state event of connector 1."""

    def __init__(self, path: str) -> None:
        self.client = SupervisorClient(path, read_only=True)
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()

    async def start(self) -> None:
        hello = await asyncio.to_thread(self.client.connect, 20.0)
        assert hello["role"] == "read"
        took = self.client._took

        def keep(message: dict[str, Any]) -> None:
            if message.get("event") == "state" and message.get("connector") == 1:
                self.events.append(message["status"])
                self._loop.call_soon_threadsafe(self.changed.set)
            took(message)

        self.client._took = keep  # type: ignore[method-assign]
        self.client.start()

    def state(self) -> dict[str, Any]:
        return self.client.request("state")["connectors"][0]["status"]

    async def until(self, what: str, condition: Any, timeout: float = 30.0, since: int = 0) -> dict[str, Any]:
        """The first state event from the ``since``-th on (seen or to come) that meets ``condition``."""
        async def wait() -> dict[str, Any]:
            seen = since
            while True:
                for status in self.events[seen:]:
                    if condition(status):
                        return status
                seen = len(self.events)
                self.changed.clear()
                await self.changed.wait()
        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"no state event with {what}: {self.events[-3:]}") from None

    def close(self) -> None:
        self.client.close()


async def run(config: Path, *args: str, log: str) -> asyncio.subprocess.Process:
    """``chargepoint ARGS --config CONFIG`` (or the supervisor, for ``supervise``), its output to ``log``."""
    module = ("-m", "chargepoint.supervisor") if args[0] == "supervise" else ("-m", "chargepoint.cli", *args)
    return await spawn(*module, "--config", str(config), log=config.parent / log)


async def spawn(*args: str, log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, *args, stdout=asyncio.subprocess.DEVNULL, stderr=log.open("ab"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"})


async def cli(config: Path, *args: str) -> None:
    process = await run(config, *args, log="cli.log")
    assert await process.wait() == 0, (config.parent / "cli.log").read_text()[-2000:]


async def daemon_up(config: Path, timeout: float = 20.0) -> None:
    """Until the daemon answers on its control socket (it has attached to the supervisor by then)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        process = await run(config, "status", log="cli.log")
        if await process.wait() == 0:
            return
        assert asyncio.get_running_loop().time() < deadline, "the daemon did not come up"
        await asyncio.sleep(0.2)


async def until(what: str, condition: Any, timeout: float = 20.0) -> None:
    """Poll the CSMS's ledger (it is filled by the CSMS's own event loop, this one)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    await process.wait()


@pytest.fixture(params=["1.6", "2.0.1"])
async def station(request: Any, tmp_path: Path) -> Any:
    csms: Any = await (LoopbackCsms().start() if request.param == "1.6" else LoopbackCsms201().start())
    config = tmp_path / "station.toml"
    write_config(config, csms.url, request.param)
    supervisor = await run(config, "supervise", log="supervisor.log")
    watcher = Watcher(str(tmp_path / "state" / "safety.sock"))
    await watcher.start()
    processes = [supervisor]
    try:
        yield request.param, csms, config, watcher, processes
    finally:
        watcher.close()
        for process in reversed(processes):  # the daemon first: it must not start a new supervisor
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                await asyncio.wait_for(process.wait(), 20)
        await csms.close()


async def charging(config: Path, watcher: Watcher, processes: list[Any]) -> asyncio.subprocess.Process:
    daemon = await run(config, "run", log="daemon.log")
    processes.append(daemon)
    await daemon_up(config)
    await cli(config, "sim", "plug")
    await watcher.until("the contactor closed", lambda s: s["contactor"] and s["allowed"])
    return daemon


def ledger(version: str, csms: Any) -> tuple[list[Any], list[Any], list[float]]:
    """(starts, stops, every energy sample) as the CSMS received them."""
    if version == "1.6":
        samples = [float(v["value"]) for m in csms.of("MeterValues") for mv in m.payload["meter_value"]
                   for v in mv["sampled_value"] if v.get("measurand", "Energy.Active.Import.Register")
                   == "Energy.Active.Import.Register"]
        return csms.of("StartTransaction"), csms.of("StopTransaction"), samples
    events = csms.of("TransactionEvent")
    samples = [float(v["value"]) for e in events for mv in e.payload.get("meter_value", [])
               for v in mv["sampled_value"] if v.get("measurand", "Energy.Active.Import.Register")
               == "Energy.Active.Import.Register"]
    return ([e for e in events if e.payload["event_type"] == "Started"],
            [e for e in events if e.payload["event_type"] == "Ended"], samples)


async def test_a_killed_daemon_back_within_the_grace_continues_and_without_it_energy_stops(station):
    """One car, two kills of the daemon. Back within the grace: the same transaction goes on (one
    start, one stop, meterStop at least every sample). Not back: the car charges on unchanged for the
    grace, then the supervisor itself stops the energy."""
    version, csms, config, watcher, processes = station
    daemon = await charging(config, watcher, processes)
    # Serving the simulated meter did not load aiohttp (pymodbus.server would, and mlockall would
    # keep all of it resident): the supervisor left it out.
    assert "/aiohttp/" not in Path(f"/proc/{processes[0].pid}/maps").read_text()
    await csms.wait_for("StartTransaction" if version == "1.6" else "TransactionEvent")
    await kill(daemon)
    processes.remove(daemon)
    seen = len(watcher.events)
    daemon = await run(config, "run", log="daemon.log")
    processes.append(daemon)
    await daemon_up(config)  # the new daemon has attached; the car never stopped:
    assert all(s["contactor"] and s["allowed"] for s in watcher.events[seen:]), watcher.events[seen:]
    await until("a meter sample from the new daemon", lambda: ledger(version, csms)[2])
    await cli(config, "sim", "unplug")
    await watcher.until("the EV gone", lambda s: s["cp"] == "A", since=seen)
    await until("the stop at the CSMS", lambda: ledger(version, csms)[1])
    starts, stops, samples = ledger(version, csms)
    assert len(starts) == 1 and len(stops) == 1
    meter_stop = float(stops[0].payload["meter_stop"]) if version == "1.6" else max(samples)
    assert meter_stop >= max(samples)
    if version == "1.6":
        assert stops[0].payload["reason"] in ("EVDisconnected", "Local")
    else:
        assert stops[0].payload["transaction_info"].get("stopped_reason", "Local") != "PowerLoss"

    # The next car, and this time the daemon does not come back.
    seen = len(watcher.events)
    await cli(config, "sim", "plug")
    await watcher.until("the contactor closed", lambda s: s["contactor"] and s["allowed"], since=seen)
    before = watcher.state()
    assert before["offered_a"] == CURRENT_A
    seen = len(watcher.events)
    await kill(daemon)
    # A technician asks the supervisor itself: no daemon attached, the car charging on its own.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chargepoint.cli", "safety", "--config", str(config), "--json",
        stdout=asyncio.subprocess.PIPE)
    said = json.loads((await process.communicate())[0])
    assert said["role"] == "read" and said["connectors"][0]["status"]["contactor"]
    stopped = await watcher.until("energy withdrawn", lambda s: not s["allowed"], timeout=GRACE_S / SPEED * 3,
                                  since=seen)
    # The grace, on the supervisor's clock: from its last step with the daemon to the withdrawal.
    assert stopped["t"] - before["t"] >= GRACE_S - 1.0
    during = [s for s in watcher.events[seen:] if s["allowed"]]
    assert all(s["contactor"] and s["duty"] == before["duty"] for s in during), during
    opened = await watcher.until("the contactor open", lambda s: not s["contactor"], since=seen)
    assert opened["duty"] == 100.0


async def test_supervisor_killed_the_daemon_reports_the_fault_and_a_new_one_starts_safe(station):
    version, csms, config, watcher, processes = station
    await charging(config, watcher, processes)
    watcher.close()
    await kill(processes[0])
    # The daemon reports the connector Faulted and ends the transaction.
    def statuses() -> list[str]:
        return [s.payload.get("status") or s.payload.get("connector_status")
                for s in csms.of("StatusNotification")]

    await until("the connector Faulted", lambda: "Faulted" in statuses())
    await until("the transaction's end", lambda: ledger(version, csms)[1])
    stop = ledger(version, csms)[1][0].payload
    reason = stop["reason"] if version == "1.6" else stop["transaction_info"]["stopped_reason"]
    assert reason == "Other"  # neither a power loss nor the driver: the station's safety part failed
    # A new supervisor (on a station systemd starts it; on the simulation the daemon does) starts
    # safe: PWM off, contactor open.
    fresh = Watcher(str(config.parent / "state" / "safety.sock"))
    await fresh.start()
    try:
        first = fresh.client.attached_states[1]["status"] if fresh.client.attached_states else fresh.state()
        assert not first["contactor"] and not first["allowed"]
        assert wire.VERSION == 1
    finally:
        fresh.close()


@asynccontextmanager
async def supervising(config: Path, log: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, Watcher]]:
    """A supervisor process and a read-only watcher on its channel; stopped by SIGTERM, which it
    must answer with exit 0 (SIGKILL only when the body failed first)."""
    supervisor = await run(config, "supervise", log=log)
    watcher = Watcher(str(config.parent / "state" / "safety.sock"))
    try:
        await watcher.start()
        yield supervisor, watcher
        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(supervisor.wait(), 20) == 0
    finally:
        watcher.close()
        if supervisor.returncode is None:
            await kill(supervisor)


async def test_a_supervisor_stopped_with_peers_attached_stops_cleanly(tmp_path: Path):
    """SIGTERM while a peer is attached: exit 0, outputs safe, and no traceback in the journal
    (a connection task left to asyncio.run's cancellation would log "Exception in callback")."""
    config = tmp_path / "station.toml"
    write_config(config, "ws://127.0.0.1:9", "1.6")
    async with supervising(config, "supervisor.log") as (_, watcher):
        assert watcher.state()["cp"] == "A"
    said = (tmp_path / "supervisor.log").read_text()
    assert "supervisor stopped: outputs safe" in said
    assert "Traceback" not in said and "Exception in callback" not in said, said[-3000:]


async def test_a_second_supervisor_on_the_same_channel_touches_nothing_and_exits(tmp_path: Path):
    """A second ``supervise`` on the same configuration (a technician's beside the service, or one a
    daemon started on demand while the first was slow) is refused before it builds anything (no
    simulated meter); the first keeps its socket and its peers."""
    config = tmp_path / "station.toml"
    write_config(config, "ws://127.0.0.1:9", "1.6")
    channel = tmp_path / "state" / "safety.sock"
    async with supervising(config, "supervisor.log") as (first, watcher):
        second = await run(config, "supervise", log="second.log")
        assert await asyncio.wait_for(second.wait(), 20) == 1
        said = (tmp_path / "second.log").read_text()
        assert f"another supervisor (pid {first.pid}) already runs on {channel}" in said, said
        assert "simulated meters" not in said and "Traceback" not in said, said
        # The first still serves its channel: the watcher's connection and a new one.
        assert watcher.state()["cp"] == "A"
        fresh = SupervisorClient(str(channel), read_only=True)
        try:
            assert (await asyncio.to_thread(fresh.connect, 5.0))["role"] == "read"
        finally:
            fresh.close()
    # Its claim went with it: a supervisor started now runs.
    assert not channel.exists()
    async with supervising(config, "again.log") as (_, watcher):
        assert watcher.state()["cp"] == "A"
