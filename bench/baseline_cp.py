"""The baseline for bench/footprint.py: the bare ``ocpp`` library's example charge point.

The footprint targets are stated relative to "what the library alone costs",
so this is the smallest honest OCPP 1.6J charge point one can write with the
library: connect, send BootNotification, then heartbeat at the interval the
CSMS accepted, with no hardware, safety loop, meter or reconnect logic. It is
written in the spirit of the library's own README example, on the same
WebSocket client and keep-alive defaults the daemon uses, so the difference
measured is what the product adds on top.

Usage: ``python bench/baseline_cp.py ws://127.0.0.1:PORT IDENTITY``. It prints
``boot accepted`` on stdout when the CSMS accepts the BootNotification (the
benchmark itself detects that moment on the CSMS side, as it does for the
daemon) and exits cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

import websockets
from ocpp.v16 import ChargePoint, call
from ocpp.v16.enums import RegistrationStatus

SUBPROTOCOL = "ocpp1.6"


class BaselineChargePoint(ChargePoint):
    """Boots, then only heartbeats: the least a 1.6J charge point must do to stay registered."""

    async def boot(self) -> int:
        """Send BootNotification until accepted; return the heartbeat interval granted."""
        while True:
            response = await self.call(
                call.BootNotification(charge_point_model="Baseline", charge_point_vendor="bench")
            )
            if response.status == RegistrationStatus.accepted:
                print("boot accepted", flush=True)
                return response.interval if response.interval > 0 else 300
            await asyncio.sleep(response.interval or 10)

    async def boot_and_idle(self) -> None:
        """Boot, then heartbeat forever at the accepted interval."""
        interval = await self.boot()
        while True:
            await asyncio.sleep(interval)
            await self.call(call.Heartbeat())


async def run(url: str, identity: str) -> None:
    """One connection for the process's lifetime; ends on SIGTERM/SIGINT."""
    async with websockets.connect(f"{url.rstrip('/')}/{identity}", subprotocols=[SUBPROTOCOL]) as ws:
        charge_point = BaselineChargePoint(identity, ws)
        work = asyncio.gather(charge_point.start(), charge_point.boot_and_idle())
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, work.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await work


def main(argv: list[str]) -> int:
    """Entry point; the ocpp library's per-frame INFO logging is silenced as in the daemon."""
    if len(argv) != 2:
        print("usage: baseline_cp.py ws://HOST:PORT IDENTITY", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(argv[0], argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
