"""Fixtures: a loopback CSMS and an in-process station daemon on the sim hal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.loopback_csms import LoopbackCsms

#: The simulation runs this many times faster than real time in these tests.
SPEED = 10.0


def station_config(url: str, state_dir: str, **sections: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "station": {"identity": "CP-TEST-1", "state_dir": state_dir},
        "ocpp": {"csms_url": url, "meter_value_sample_interval_s": 10,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "simulation": {"speed": SPEED},
        "meter": {"poll_interval_s": 1.0},
    }
    for name, values in sections.items():
        data.setdefault(name, {}).update(values)
    return data


@pytest.fixture
async def csms() -> AsyncIterator[LoopbackCsms]:
    server = await LoopbackCsms().start()
    yield server
    await server.close()


@asynccontextmanager
async def running(config: dict[str, Any]) -> AsyncIterator[Daemon]:
    daemon = Daemon(parse(config, "<test>"))
    task = asyncio.ensure_future(daemon.run())
    try:
        yield daemon
    finally:
        daemon.stop()
        # stopping may take: the transaction (contactor <= 8 s), the queue (<= 5 s), the link
        await asyncio.wait_for(task, 40)


@pytest.fixture
def station(csms: LoopbackCsms, tmp_path: Path) -> Callable[..., Any]:
    """``async with station(**sections) as daemon``: a daemon connected to ``csms``.

    Daemons made by one test share a state directory, as a restarted station would.
    """
    def make(**sections: dict[str, Any]) -> Any:
        return running(station_config(csms.url, str(tmp_path / "state"), **sections))
    return make


async def until(condition: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy (real time, bounded); returns its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)


class StationLog:
    """The lines the station logged during a test (INFO and up, loggers under ``chargepoint``).

    A test that checks that something did *not* happen waits first for the line in
    which the station states its decision, so the check comes after the decision
    instead of after a guess at how long deciding takes.
    """

    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.caplog.records
                if r.name == "chargepoint" or r.name.startswith("chargepoint.")]

    def matching(self, text: str) -> list[str]:
        return [m for m in self.messages() if text in m]

    async def wait_for(self, text: str, count: int = 1, timeout: float = 10.0) -> list[str]:
        """Wait until ``count`` lines contain ``text``; those lines."""
        await until(lambda: len(self.matching(text)) >= count, timeout,
                    f"{count} x log line with {text!r}")
        return self.matching(text)


@pytest.fixture
def station_log(caplog: pytest.LogCaptureFixture) -> StationLog:
    """The station's log, captured at INFO from the start of the test."""
    caplog.set_level(logging.INFO, logger="chargepoint")
    return StationLog(caplog)


async def charging(csms: Any, daemon: Daemon, card: str = "CAFE0001") -> Any:
    """Once the station has booted: plug in, tap ``card``, wait for Charging; the sim world."""
    world = daemon.hardware.worlds[1]
    await csms.wait_for("StatusNotification", connector_id=1)
    world.plug_in()
    world.card_reader.tap(card)
    await csms.wait_for("StatusNotification", connector_id=1, status="Charging")
    return world
