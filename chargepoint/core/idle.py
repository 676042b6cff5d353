"""Whether the station (or one EVSE) is busy with a transaction, and waiting until it is not.

A reset "on idle" (2.0.1 OnIdle, and whatever a later version calls it) is the
station's decision: it restarts once no transaction runs. The adapters ask
here instead of each polling the station on their own. The wait wakes on every
connector status change the station reports and looks again every second:
a transaction's record is let go after the status change its stop causes (the
connector says Finishing while the stop is still being written), so the
second look is what sees most ends.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from chargepoint.core.station import Station


class Sleeper(Protocol):
    async def sleep(self, seconds: float) -> None: ...


#: Station seconds between looks when no status change came.
RECHECK_S = 1.0


def busy(station: Station, evse_id: int | None = None) -> bool:
    """A transaction runs on ``evse_id`` (None: on any EVSE)."""
    return any(evse_id is None or evse == evse_id for evse, _ in station.active_transactions())


async def until_idle(station: Station, clock: Sleeper, evse_id: int | None = None) -> None:
    """Return once no transaction runs on ``evse_id`` (None: anywhere)."""
    changed = asyncio.Event()

    def listener(_status: object) -> None:
        changed.set()

    station.status_listeners.append(listener)
    try:
        while busy(station, evse_id):
            changed.clear()
            recheck = asyncio.ensure_future(clock.sleep(RECHECK_S))
            woken = asyncio.ensure_future(changed.wait())
            try:
                await asyncio.wait({recheck, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (recheck, woken):
                    waiter.cancel()
                await asyncio.gather(recheck, woken, return_exceptions=True)
    finally:
        station.status_listeners.remove(listener)
