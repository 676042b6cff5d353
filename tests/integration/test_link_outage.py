"""A CSMS outage as the technician sees it: told once, retries as retries, status, reconnect, queue.

The link runs against a real loopback port: first nothing listens (connection
refused), then the loopback CSMS, then nothing again. The daemon tests use the
station service API and the real CLI over the control socket.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from websockets.asyncio.client import ClientConnection

from chargepoint.cli import main
from chargepoint.connection import Credentials, Link, LinkSettings
from tests.integration.conftest import running, station_config, until
from tests.integration.loopback_csms import LoopbackCsms
from tests.loglines import Lines


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Reader:
    """A session that only reads until the connection ends."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws

    async def run(self) -> None:
        async for _ in self.ws:
            pass


def make_link(port: int, minimum_s: float = 0.05, maximum_s: float = 0.2) -> Link:
    settings = LinkSettings(url=f"ws://127.0.0.1:{port}/ocpp", identity="CP-OUT", subprotocol="ocpp1.6",
                            reconnect_min_s=minimum_s, reconnect_max_s=maximum_s, open_timeout_s=2.0)
    return Link(settings, Reader, credentials=lambda: Credentials(0, ""), ping_interval=lambda: 0.0)


async def test_an_outage_is_told_once_then_retries_and_the_way_back() -> None:
    lines = Lines()
    logger = logging.getLogger("chargepoint.connection")
    logger.addHandler(lines)
    logger.setLevel(logging.INFO)
    port = free_port()
    link = make_link(port)
    task = asyncio.ensure_future(link.run())
    csms = LoopbackCsms()
    try:
        await until(lambda: link.outage.attempts >= 4, 10, "four failed attempts")
        o = link.outage
        assert o.since is not None and o.repeats == o.attempts
        assert "ConnectionRefusedError" in (o.last_error or "")
        assert link.next_attempt_in() is not None
        warnings = [line for line in lines.lines if line.startswith("WARNING")]
        assert len(warnings) == 1 and "cannot connect to" in warnings[0]
        assert "ConnectionRefused" in warnings[0]
        assert "reconnect attempt 2 failed (the same error, 2 times in a row)" in lines.text()
        assert "lost" not in lines.text()

        await csms.start_on(port)
        await until(link.connected.is_set, 10, "connected")
        assert link.outage.since is None and link.next_attempt_in() is None
        assert "again after" in lines.lines[-1] and "failed attempt(s)" in lines.lines[-1]

        lines.lines.clear()
        await csms.close()  # the CSMS goes away: one "lost", then retries
        await until(lambda: link.outage.attempts >= 3, 10, "three failed attempts")
        text = lines.text()
        assert text.count("lost") == 1 and text.index("lost") < text.index("reconnect attempt")
        assert sum(line.startswith("WARNING") for line in lines.lines) <= 2  # the loss, and a new error once
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await csms.close()
        logger.removeHandler(lines)


async def test_retry_now_ends_a_long_wait() -> None:
    link = make_link(free_port(), minimum_s=60.0, maximum_s=60.0)
    task = asyncio.ensure_future(link.run())
    try:
        await until(lambda: link.outage.attempts == 1, 10, "the first failure")
        wait = link.next_attempt_in()
        assert wait is not None and wait > 50
        assert await link.retry_now() is False  # it was not connected
        await until(lambda: link.outage.attempts == 2, 5, "an attempt at once, not in a minute")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def cli(socket_path: str, *args: str) -> Any:
    return CliRunner().invoke(main, [*args, "--socket", socket_path])


async def test_offline_status_reconnect_and_queue_ages_across_a_restart(tmp_path: Path) -> None:
    """Offline at 20x: status says since when, the last error once and the next attempt; reconnect
    tries at once; the queue lists start and samples with their ages, not negative after a restart."""
    dead = free_port()
    socket_path = str(tmp_path / "control.sock")
    config = station_config(f"ws://127.0.0.1:{dead}", str(tmp_path / "state"),
                            ocpp={"reconnect_min_s": 30.0, "reconnect_max_s": 30.0},
                            simulation={"speed": 20.0}, control={"socket": socket_path})
    async with running(config) as daemon:
        await until(lambda: daemon.link.outage.attempts >= 1, 10, "the first failed attempt")
        daemon.service.start("OFFLINE-1", 1, authorize=False)
        daemon.hardware.worlds[1].plug_in()
        await until(lambda: len(daemon.outbox) >= 3, 20, "a start and two samples queued")
        status = await asyncio.to_thread(cli, socket_path, "status")
        assert status.exit_code == 0, status.stdout
        line = next(line for line in status.stdout.splitlines() if "CSMS" in line)
        assert "NOT connected since" in line and "last error: ConnectionRefusedError" in line
        assert "next attempt in" in line and line.count("ConnectionRefusedError") == 1

        attempts = daemon.link.outage.attempts
        again = await asyncio.to_thread(cli, socket_path, "reconnect")
        assert again.exit_code == 0 and "now" in again.stdout
        await until(lambda: daemon.link.outage.attempts > attempts, 5, "an attempt at once")

        await until(lambda: any(type(e.event).__name__ == "MeterSample" for e in daemon.outbox.entries()),
                    10, "a sample queued")
        listed = await asyncio.to_thread(cli, socket_path, "queue", "--json")
        first = json.loads(listed.stdout)
        kinds = [m["kind"] for m in first["messages"]]
        assert kinds[0] == "start" and "sample" in kinds and first["not_listed"] == 0
        assert set(kinds) <= {"start", "sample", "activity"}, kinds
        assert all(m["age_s"] >= 0 for m in first["messages"])
        assert first["messages"][0]["local_id"] and first["messages"][0]["connector"] == 1
        text = await asyncio.to_thread(cli, socket_path, "queue")
        assert "start" in text.stdout and "sample" in text.stdout and "message(s) queued" in text.stdout
    async with running(config) as daemon:
        async def queue() -> dict[str, Any]:
            listed = await asyncio.to_thread(cli, socket_path, "queue", "--json")
            return json.loads(listed.stdout)

        after = await queue()
        for _ in range(200):  # until the restarted daemon serves its control socket
            if "messages" in after:
                break
            await asyncio.sleep(0.05)
            after = await queue()
        ages = [m["age_s"] for m in after["messages"]]
        assert ages and all(age >= 0 for age in ages), ages
        assert ages == sorted(ages, reverse=True)  # oldest first
