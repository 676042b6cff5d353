"""How often a connector's meter is read: fast while anything can flow, slowly at idle.

Every ``poll_interval_s`` (``[meter]``) while an EV is connected, a transaction
is open or the last read failed (so that a meter that stops answering is marked
unavailable within three reads, and one that answers again is seen at once).
Otherwise every ``IDLE_METER_POLL_S``: nothing flows, the register does not
move, and the next report of the connector's facts (a plug-in, a remote start,
a fault) cuts the wait short. Readings that must be fresh (clock-aligned data,
a transaction's samples, its start and stop) are taken when needed, whatever
the pace. At a read a second, an idle station's meter was a quarter of the
daemon's and the supervisor's idle CPU together (bench/README.md, footprint).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from chargepoint.core.connector import ConnectorState
from hal.clock import Clock

#: Seconds between reads of an idle connector's meter (never less than ``poll_interval_s``).
IDLE_METER_POLL_S = 10.0


async def poll_meter(c: ConnectorState, read: Callable[[ConnectorState], Awaitable[Any]], clock: Clock,
                     interval_s: float) -> None:
    """Read ``c``'s meter for as long as the station runs, at the pace above."""
    while True:
        c.reported_anew.clear()
        await read(c)
        if c.ev_present or c.transaction is not None or c.meter_failures:
            await clock.sleep(interval_s)
        else:
            await _idle_wait(c, clock, max(interval_s, IDLE_METER_POLL_S))


async def _idle_wait(c: ConnectorState, clock: Clock, seconds: float) -> None:
    """``seconds`` on the station's clock, or until the connector's facts are reported anew."""
    sleeping = asyncio.ensure_future(clock.sleep(seconds))
    woken = asyncio.ensure_future(c.reported_anew.wait())
    try:
        await asyncio.wait((sleeping, woken), return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeping.cancel()
        woken.cancel()
