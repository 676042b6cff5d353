"""The meter's pace: every poll_interval_s while anything can flow, every IDLE_METER_POLL_S at idle.

Driven on a ManualClock with a recording read: "no read happened" is judged
after the clock moved, never after a wall-clock sleep; a report of the
connector's facts (a plug-in) cuts the idle wait short at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from chargepoint.core.connector import ConnectorHardware, ConnectorState
from chargepoint.core.meter_poll import IDLE_METER_POLL_S, poll_meter
from chargepoint.safety.limits import LimitClaims
from hal.clock import ManualClock

POLL_S = 1.0


class Rig:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.c = ConnectorState(ConnectorHardware(evse_id=1, evse=None, meter=None,  # type: ignore[arg-type]
                                                  limits=LimitClaims()))
        self.reads: list[float] = []
        self.read_done = asyncio.Event()
        self.fail = False

    async def read(self, c: ConnectorState) -> Any:
        self.reads.append(self.clock.monotonic())
        c.meter_failures = c.meter_failures + 1 if self.fail else 0
        self.read_done.set()

    async def next_read(self) -> None:
        await asyncio.wait_for(self.read_done.wait(), 5.0)
        self.read_done.clear()

    async def advance(self, seconds: float) -> None:
        """Move the clock and let the poller run on it (a read it causes sets ``read_done``)."""
        self.clock.advance(seconds)
        for _ in range(20):
            await asyncio.sleep(0.002)


@pytest.fixture
async def rig() -> Any:
    r = Rig()
    task = asyncio.ensure_future(poll_meter(r.c, r.read, r.clock, POLL_S))
    await r.next_read()  # the first read is at once
    yield r
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_an_idle_meter_is_read_every_idle_interval(rig: Rig) -> None:
    await rig.advance(IDLE_METER_POLL_S - POLL_S)
    assert rig.reads == [0.0], "no read before the idle interval is over"
    await rig.advance(POLL_S)
    await rig.next_read()
    assert rig.reads == [0.0, IDLE_METER_POLL_S]


async def test_a_report_of_the_connector_cuts_the_idle_wait_short_and_a_plugged_ev_keeps_it_fast(
        rig: Rig) -> None:
    await rig.advance(2.0)
    rig.c.ev_present = True
    rig.c.reported_anew.set()  # what Station.report does on a plug-in
    await rig.next_read()
    assert rig.reads == [0.0, 2.0]
    await rig.advance(POLL_S)
    await rig.next_read()
    assert rig.reads[-1] == 2.0 + POLL_S


async def test_a_failing_meter_is_read_again_at_the_fast_pace(rig: Rig) -> None:
    rig.fail = True
    rig.c.reported_anew.set()
    await rig.next_read()
    assert rig.c.meter_failures == 1
    await rig.advance(POLL_S)
    await rig.next_read()
    assert rig.c.meter_failures == 2, "three reads in a row make it unavailable: seconds, not minutes"
