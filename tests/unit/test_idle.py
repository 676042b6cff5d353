"""The station's own answer to "is anything charging?", and the wait for a reset on idle."""

from __future__ import annotations

import asyncio

from chargepoint.core import idle
from chargepoint.core.idle import RECHECK_S
from tests.unit.test_station import Bench, bench  # noqa: F401 - the station rig's fixture


async def test_a_reset_on_idle_waits_for_the_transaction_and_comes_as_it_ends(bench: Bench) -> None:  # noqa: F811
    rig = await bench.rig()
    assert not idle.busy(rig.station) and not idle.busy(rig.station, 1)
    await asyncio.wait_for(idle.until_idle(rig.station, rig.clock), 5)  # idle: at once

    await rig.tap()
    rig.world.plug_in()
    await rig.run_until(lambda: rig.started, 1.0, "TransactionStarted")
    assert idle.busy(rig.station) and idle.busy(rig.station, 1) and not idle.busy(rig.station, 2)

    waiting = asyncio.ensure_future(idle.until_idle(rig.station, rig.clock))
    await rig.run(3 * RECHECK_S)  # the rechecks come and go: still charging
    assert not waiting.done()

    await rig.tap()  # the second tap ends the transaction
    await rig.run_until(waiting.done, RECHECK_S + 0.1, "the wait to end with the transaction")
    assert not idle.busy(rig.station)
    listeners = [getattr(f, "__qualname__", "") for f in rig.station.status_listeners]
    assert not any("until_idle" in name for name in listeners), "the wait leaves no listener behind"
