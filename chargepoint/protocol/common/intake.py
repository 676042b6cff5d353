"""CALLs from the CSMS: a bounded queue, one CALL handled per loop turn, a busy answer beyond it.

OCPP lets the CSMS have one CALL outstanding, but nothing stops a broken or
hostile one from sending thousands at once. Handling them as they are read (a
task each, run back to back) kept the event loop in one turn for seconds: the
watchdog pings stopped, the control socket and the web API stopped answering.
So the common peer (``peer.RobustPeer``) puts each CALL into a ``CallIntake``:

- up to ``limit`` CALLs wait; one task handles them in the order they came,
  one per loop turn (it lets the loop turn after each);
- a CALL that finds the queue full is answered at once with a CALLERROR that
  says the station is busy (the peer sends it), the connection stays open;
- refusals are counted, not logged one by one: one WARNING line with the count
  when the queue next runs empty, when the connection closes, or every
  ``REPORT_EVERY_S`` while a flood goes on.

The frame reader lets the loop turn every ``FRAMES_PER_TURN`` frames (in the
peer), so the work in one loop turn is at most that many frames read (each
parsed, and at most answered busy) plus one CALL handled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: CALLs from the CSMS that may wait while one is handled. The CSMS should send one at a time;
#: a few more cover one that does not wait for each answer without a busy answer.
CALL_QUEUE_MAX = 16
#: Frames the peer reads before it lets the loop turn.
FRAMES_PER_TURN = 8
#: During a flood that does not stop, the count of busy answers is logged this often (seconds).
REPORT_EVERY_S = 60.0


class CallIntake:
    """A bounded queue of raw CALL frames and the one task that handles them, in order.

    ``handle`` processes one CALL frame (and sends its answer); ``refuse``
    answers one CALL, by message id, as busy with the description given.
    """

    def __init__(self, handle: Callable[[str | bytes], Awaitable[None]],
                 refuse: Callable[[str, str], Awaitable[None]], limit: int = CALL_QUEUE_MAX,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.handle = handle
        self.refuse = refuse
        self.limit = limit
        self.monotonic = monotonic
        self._waiting: deque[str | bytes] = deque()
        self._arrived = asyncio.Event()
        self._worker: asyncio.Task[None] | None = None
        #: Busy answers since the count was last logged, and when that count began.
        self.refused = 0
        self._refusing_since = 0.0

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    async def offer(self, unique_id: str, raw: str | bytes) -> None:
        """Queue CALL ``raw``, or answer it busy at once if ``limit`` CALLs already wait."""
        if len(self._waiting) >= self.limit:
            if not self.refused:
                self._refusing_since = self.monotonic()
            self.refused += 1
            await self.refuse(unique_id, f"busy: {len(self._waiting)} requests waiting")
            if self.monotonic() - self._refusing_since >= REPORT_EVERY_S:
                self.report("so far")
            return
        self._waiting.append(raw)
        self._arrived.set()
        if self._worker is None or self._worker.done():
            self._worker = asyncio.ensure_future(self._work())

    async def _work(self) -> None:
        while True:
            while not self._waiting:
                self._arrived.clear()
                if self.refused:
                    self.report("the queue is empty again")
                await self._arrived.wait()
            raw = self._waiting.popleft()
            try:
                await self.handle(raw)
            except Exception:
                log.exception("handling a CALL from the CSMS failed")
            await asyncio.sleep(0)  # one CALL per loop turn: a long queue cannot hold the loop

    def report(self, why: str) -> None:
        """The one line about busy answers since the last one, then the count starts again."""
        log.warning("answered %d CALLs from the CSMS busy (GenericError) in %.1f s: %d were already "
                    "waiting; %s", self.refused, self.monotonic() - self._refusing_since, self.limit, why)
        self.refused = 0

    async def close(self) -> None:
        """Stop handling (the connection is closing): the waiting CALLs are dropped, the count logged."""
        self._waiting.clear()
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        if self.refused:
            self.report("the connection closed")
