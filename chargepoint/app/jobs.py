"""The daemon's long-running jobs, kept running: a job that fails is said and started again.

A background job (the meter poll, the MQTT bridge, the energy manager, the
certificate expiry watch) that raised used to end without a word: its task held
the exception until the daemon stopped, and the feature was gone until the next
restart while the station looked healthy. Each job now runs under
:func:`keep_running`: a failure is logged (the first with its traceback, the
ones after as one counted line), and the job starts again after a pause that
doubles up to a minute, so a fault that persists does not flood the log or the
CPU. A job that returns has finished its work and is not restarted;
cancellation (the daemon stopping) ends it at once.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger(__name__)

#: The first pause before a failed job starts again, and the longest (seconds).
FIRST_PAUSE_S = 1.0
LONGEST_PAUSE_S = 60.0
#: A job that ran this long before failing starts again after the first pause.
STEADY_S = 300.0


def job_name(job: Callable[[], Awaitable[object]]) -> str:
    """``EnergyManager.run`` rather than ``<bound method ...>``: what a technician can look up."""
    function = job.func if isinstance(job, functools.partial) else job
    return getattr(function, "__qualname__", None) or repr(job)


def start_jobs(jobs: Iterable[Callable[[], Awaitable[object]]]) -> list[asyncio.Task[None]]:
    """A task per job, each under :func:`keep_running`."""
    return [asyncio.ensure_future(keep_running(job)) for job in jobs]


async def keep_running(job: Callable[[], Awaitable[object]], *,
                       sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
                       monotonic: Callable[[], float] | None = None) -> None:
    """Run ``job()`` until it returns; after a failure say so and run it again."""
    clock = monotonic or asyncio.get_running_loop().time
    name = job_name(job)
    failures = 0
    pause = FIRST_PAUSE_S
    while True:
        started = clock()
        try:
            await job()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of a job is reported, then retried
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # Stopping: the job's own clean-up failed (a last save on a full disk) and replaced
                # the cancellation; it is not started again.
                log.warning("background job %s failed while stopping: %s: %s", name, type(exc).__name__, exc)
                raise asyncio.CancelledError from exc
            failures += 1
            if clock() - started >= STEADY_S:
                pause = FIRST_PAUSE_S
            if failures == 1:
                log.error("background job %s failed; starting it again in %g s", name, pause, exc_info=True)
            else:
                log.error("background job %s failed again (%d times so far): %s: %s; starting it again "
                          "in %g s", name, failures, type(exc).__name__, exc, pause)
        await sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE_S)
