"""A background job that fails is said and started again; one that ends or is cancelled is not."""

from __future__ import annotations

import asyncio
import functools
import logging

import pytest

from chargepoint.app.jobs import FIRST_PAUSE_S, LONGEST_PAUSE_S, STEADY_S, job_name, keep_running


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class MeterPoll:
    """Fails ``failures`` times (after running ``ran_s`` each time), then finishes."""

    def __init__(self, clock: Clock, failures: int, ran_s: float = 0.0) -> None:
        self.clock, self.failures, self.ran_s, self.starts = clock, failures, ran_s, 0

    async def run(self) -> None:
        self.starts += 1
        self.clock.now += self.ran_s
        if self.starts <= self.failures:
            raise OSError(f"serial port gone ({self.starts})")


async def test_a_failing_job_is_started_again_with_doubling_pauses_and_counted_lines(
        caplog: pytest.LogCaptureFixture):
    clock = Clock()
    poll = MeterPoll(clock, failures=9)
    with caplog.at_level(logging.ERROR, "chargepoint.app.jobs"):
        await keep_running(poll.run, sleep=clock.sleep, monotonic=clock.monotonic)
    assert poll.starts == 10  # nine failures, then it ran to its end
    assert clock.pauses == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert clock.pauses[0] == FIRST_PAUSE_S and max(clock.pauses) == LONGEST_PAUSE_S
    records = caplog.records
    assert len(records) == 9
    assert records[0].exc_info is not None and "MeterPoll.run failed; starting it again in 1 s" in \
        records[0].getMessage()
    assert all(r.exc_info is None for r in records[1:])  # one line each after the first
    assert records[8].getMessage() == ("background job MeterPoll.run failed again (9 times so far): "
                                       "OSError: serial port gone (9); starting it again in 60 s")


async def test_a_job_that_ran_steadily_before_failing_starts_again_after_the_first_pause():
    clock = Clock()
    poll = MeterPoll(clock, failures=3, ran_s=STEADY_S)
    await keep_running(poll.run, sleep=clock.sleep, monotonic=clock.monotonic)
    assert clock.pauses == [FIRST_PAUSE_S] * 3


async def test_a_job_that_returns_is_not_started_again():
    clock = Clock()
    poll = MeterPoll(clock, failures=0)
    await keep_running(poll.run, sleep=clock.sleep, monotonic=clock.monotonic)
    assert poll.starts == 1 and clock.pauses == []


async def test_cancelling_ends_a_job_at_once_and_is_not_a_failure(caplog: pytest.LogCaptureFixture):
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.Event().wait()

    task = asyncio.ensure_future(keep_running(forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not [r for r in caplog.records if r.name == "chargepoint.app.jobs"]


def test_names_are_what_a_technician_can_look_up():
    async def drive_cycles(world: object, charge_s: float) -> None: ...

    poll = MeterPoll(Clock(), 0)
    assert job_name(poll.run) == "MeterPoll.run"
    assert job_name(functools.partial(drive_cycles, None, charge_s=1.0)).endswith("drive_cycles")


async def test_a_job_whose_clean_up_fails_while_stopping_is_not_started_again(
        caplog: pytest.LogCaptureFixture):
    """A keeper's last save on cancellation can fail (a full disk): the stop still ends the job."""
    started = asyncio.Event()
    starts = 0

    async def keeper() -> None:
        nonlocal starts
        starts += 1
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            raise OSError(28, "No space left on device") from None

    task = asyncio.ensure_future(keep_running(keeper))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 10)
    assert starts == 1
    assert [r.getMessage() for r in caplog.records if r.name == "chargepoint.app.jobs"] == [
        "background job test_a_job_whose_clean_up_fails_while_stopping_is_not_started_again.<locals>.keeper "
        "failed while stopping: OSError: [Errno 28] No space left on device"]
