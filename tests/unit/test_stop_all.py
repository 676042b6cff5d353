"""A shutdown's stop of every transaction waits for a stop already under way.

The daemon ends with ``stop_all`` and then drains the queue; a driver's unplug
whose stop was still reading the meter at that moment used to be skipped (it was
"already stopping"), so the drain found nothing to wait for and the stop was
queued after the daemon had stopped delivering. Driven on the station rig of
test_station with the final reading held by an event, never by a sleep.
"""

from __future__ import annotations

import asyncio
from typing import Any

from chargepoint.core.events import StopReason
from tests.unit import test_station
from tests.unit.test_station import Bench

bench = test_station.bench  # the fixture: started rigs and stores, closed after each test


async def test_stop_all_waits_for_a_stop_that_is_reading_the_meter(bench: Bench) -> None:
    rig = await bench.rig()
    await rig.charge()
    recorder = rig.station.transactions
    fresh_reading = recorder.fresh_reading
    release = asyncio.Event()
    reading_asked = asyncio.Event()

    async def held_reading(c: Any) -> Any:
        reading_asked.set()
        await release.wait()
        return await fresh_reading(c)

    recorder.fresh_reading = held_reading  # type: ignore[method-assign]
    unplug_stop = asyncio.ensure_future(rig.station.stop_transaction(1, StopReason.EV_DISCONNECTED))
    await rig.run_until(reading_asked.is_set, 3.0, "the unplug's stop reading the meter")
    shutdown = asyncio.ensure_future(rig.station.stop_all(StopReason.REBOOT))
    for _ in range(5):
        await asyncio.sleep(0)
    assert not shutdown.done(), "stop_all returned while a stop was still under way"
    assert rig.stopped == []
    release.set()
    await asyncio.wait_for(asyncio.gather(unplug_stop, shutdown), 5.0)
    assert [s.reason for s in rig.stopped] == [StopReason.EV_DISCONNECTED], "one stop, the driver's"
