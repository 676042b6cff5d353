"""The station core in simulated time: sessions, status facts, availability, authorization,
power-loss recovery and unlocking, over the physical simulation, with no sockets and no network.

How the rig (``Rig``) drives it:

* Time is a ``ManualClock`` that moves only when the rig advances it. ManualClock's own async
  ``sleep`` polls the clock every millisecond of *real* time, so a sleeping task would notice an
  advance only after real time had passed; ``LoopClock`` keeps ManualClock's time and its blocking
  sleep and only turns the async sleep into a future that ``advance`` resolves. The station's timers
  (sample interval, connection timeout, the wait for the contactor) fire exactly when simulated time
  reaches them, and no test waits on the wall clock.
* ``Station.start`` runs as in the daemon: it hooks the safety loop's status callback (through
  ``call_soon_threadsafe``) and spawns the meter poller. Only ``evse.start`` is a no-op: the rig calls
  ``evse.step()`` itself, once per tick, so the safety loop runs in step with the clock.
* One tick: step the safety loop (its status reaches the station through the hook), let the event
  loop run, advance the clock by ``TICK``, let the event loop run again. ``TICK`` is a power of two
  so that simulated times add up exactly and sample timestamps can be compared with ``==``.
* Simulated time never passes while real threads work: the plug lock runs in the event loop's
  default executor and the state database in the store's thread, both counted by ``ThreadWork``,
  and the rig waits for that work to come back before it advances the clock. So a slow thread (a
  loaded machine, an fsync) cannot turn into simulated seconds.
* Anything that waits on the safety loop (a stop waits for the contactor to open) is run as a task
  while the rig ticks (``Rig.finish``); conditions are awaited in simulated time (``Rig.run_until``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chargepoint.config import Config, parse
from chargepoint.core.commands import AvailabilityChange, StartResult, UnlockResult
from chargepoint.core.events import (
    Activity,
    ActivityChanged,
    AuthResult,
    AuthStatus,
    IdToken,
    MeterSample,
    ReadingContext,
    StatusChanged,
    StopReason,
    TokenType,
    TransactionEvent,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.meter_poll import IDLE_METER_POLL_S
from chargepoint.core.settings import SetResult, Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Outbox
from chargepoint.core.storage.store import Store
from chargepoint.safety.evse import EvseFault
from hal.clock import ManualClock
from hal.interfaces import ConnectorLock, MeterFailureKind
from hal.sim.world import SimEV, SimWorld
from tests.unit.assembly import assemble_connector

T = TypeVar("T")

#: One tick of simulated time: 1/128 s (close to the safety loop's 10 ms), exact in binary.
TICK = 1 / 128
#: Event-loop turns a settle gives (again after any thread work came back): enough for a woken
#: task, and the tasks it spawns, to run on to their next wait.
SETTLE_ROUNDS = 4
#: The simulated meter's register when the rig is built (Wh).
METER_START_WH = 12_345.0
SAMPLE_INTERVAL_S = 2
CARD = IdToken("CARD", TokenType.ISO14443)
REMOTE = IdToken("REMOTE", TokenType.CENTRAL)


class LoopClock(ManualClock):
    """A ManualClock whose async sleepers wake on ``advance`` instead of polling real time."""

    def __init__(self) -> None:
        super().__init__()
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    async def sleep(self, seconds: float) -> None:
        deadline = self.monotonic() + seconds
        if deadline <= self.monotonic():
            await asyncio.sleep(0)
            return
        waiter = asyncio.get_running_loop().create_future()
        entry = (deadline, waiter)
        self._sleepers.append(entry)
        try:
            await waiter
        finally:
            self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        now = self.monotonic()
        for deadline, waiter in list(self._sleepers):
            if deadline <= now and not waiter.done():
                waiter.set_result(None)


class ThreadWork:
    """Work handed to threads that the event loop has not taken back yet (see the module)."""

    def __init__(self) -> None:
        self.pending = 0
        #: Work that came back so far (the rig gives the loop fresh turns after each).
        self.finished = 0
        #: False while a test deliberately lets simulated time pass over blocked thread work.
        self.waited_for = True
        self._idle = asyncio.Event()
        self._idle.set()

    def enter(self) -> None:
        self.pending += 1
        self._idle.clear()

    def leave(self) -> None:
        self.pending -= 1
        self.finished += 1
        if not self.pending:
            self._idle.set()

    def watch(self, future: Future[Any]) -> None:
        """Count ``future`` (just submitted from the loop) until the loop has seen it done.

        The done callback is added on the next loop turn, after the submitter chained its own
        wait onto the future, so the submitter is woken no later than the count drops."""
        loop = asyncio.get_running_loop()
        self.enter()
        loop.call_soon(future.add_done_callback, lambda _: loop.call_soon_threadsafe(self.leave))

    async def idle(self) -> None:
        await self._idle.wait()


class CountingExecutor(ThreadPoolExecutor):
    """The event loop's default executor (``asyncio.to_thread``: the plug lock), counted."""

    def __init__(self, work: ThreadWork) -> None:
        super().__init__(max_workers=4, thread_name_prefix="to-thread")
        self.work = work

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        future = super().submit(fn, *args, **kwargs)
        self.work.watch(future)
        return future


class CountingStore(Store):
    """The real SQLite store, its thread's work counted once ``work`` is set."""

    work: ThreadWork | None = None

    async def call(self, fn: Callable[..., T], *args: object) -> T:
        if self.work is None:
            return await super().call(fn, *args)
        self.work.enter()
        try:
            return await super().call(fn, *args)
        finally:
            self.work.leave()

    def submit(self, fn: Callable[..., object], *args: object) -> Future[object]:
        future = super().submit(fn, *args)
        if self.work is not None:
            self.work.watch(future)
        return future


class RecordingOutbox(Outbox):
    """An outbox that also keeps every event put into it, in order (nothing is acknowledged here)."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[TransactionEvent] = []

    async def put(self, event: TransactionEvent) -> Any:
        self.events.append(event)
        return await super().put(event)

    def put_activity(self, event: ActivityChanged) -> None:
        self.events.append(event)
        super().put_activity(event)


class RecordingLock:
    """The sim plug lock, recording for each command the thread that drove it and what was
    true at that moment: the contactor's command, the current the EV drew, the stops queued."""

    def __init__(self, inner: ConnectorLock, world: SimWorld, outbox: RecordingOutbox) -> None:
        self.inner = inner
        self.world = world
        self.outbox = outbox
        self.calls: list[tuple[bool, int, bool, float, int]] = []

    def set_locked(self, locked: bool) -> bool:
        stops = sum(isinstance(e, TransactionStopped) for e in self.outbox.events)
        self.calls.append((locked, threading.get_ident(), self.world.contactor.commanded,
                           self.world.ev.current_a, stops))
        return self.inner.set_locked(locked)

    def locked(self) -> bool:
        return self.inner.locked()


class GatedLock:
    """The sim plug lock behind a gate: a command blocks its worker thread until the test opens
    the gate (a slow actuator), so the test can act while a transaction start is half done.
    Its test sets ``ThreadWork.waited_for`` False meanwhile, or the rig would wait for it."""

    def __init__(self, inner: ConnectorLock) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.entered = threading.Event()

    def set_locked(self, locked: bool) -> bool:
        self.entered.set()
        self.gate.wait(timeout=10.0)  # a safety net only: every test opens the gate
        return self.inner.set_locked(locked)

    def locked(self) -> bool:
        return self.inner.locked()


def make_config(tmp_path: Path) -> Config:
    """A minimal configuration: one connector on the sim hal (the CSMS URL is never dialled)."""
    return parse({
        "station": {"identity": "CP-UNIT", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": "ws://csms.invalid/ocpp",
                 "meter_value_sample_interval_s": SAMPLE_INTERVAL_S},
    }, "<test>")


class Rig:
    """One simulated connector under a Station, stepped by hand in simulated time (see the module)."""

    def __init__(self, config: Config, clock: LoopClock, world: SimWorld, outbox: RecordingOutbox,
                 lock: ConnectorLock | None, work: ThreadWork) -> None:
        self.clock = clock
        self.work = work
        self.world = world
        self.outbox = outbox
        hw = assemble_connector(config, config.connectors[0], clock, pilot=world.pilot,
                                contactor=world.contactor, faults=world.faults, meter=world.meter,
                                lock=lock)
        self.evse = hw.evse
        self.evse.start = lambda: None  # type: ignore[method-assign]  # stepped by the rig instead
        self.persisted: list[tuple[int, bool]] = []
        self.settings = Settings(config)
        self.station = Station([hw], clock, outbox, self.settings,
                               persist_availability=lambda changes: self.persisted.extend(changes.items()))
        self.statuses: list[StatusChanged] = []
        self.station.status_listeners.append(self.statuses.append)
        self.auth_calls: list[str] = []
        self.auth_answer = AuthStatus.ACCEPTED
        self.station.authorizer = self.authorize

    async def authorize(self, token: IdToken) -> AuthResult:
        """The CSMS as the station's authorizer: answers ``auth_answer`` at once."""
        self.auth_calls.append(token.value)
        return AuthResult(self.auth_answer)

    # -- time -----------------------------------------------------------------------------
    async def settle(self) -> None:
        """Let the event loop run until the station's tasks wait on simulated time again: a few
        turns after the last thread work came back, and none while any is out."""
        while True:
            finished = self.work.finished
            for _ in range(SETTLE_ROUNDS):
                await asyncio.sleep(0)
            if self.work.pending and self.work.waited_for:
                await self.work.idle()
            elif self.work.finished == finished or not self.work.waited_for:
                return

    async def tick(self) -> None:
        self.evse.step()
        await self.settle()
        self.clock.advance(TICK)
        await self.settle()

    async def run(self, seconds: float) -> None:
        for _ in range(round(seconds / TICK)):
            await self.tick()

    async def run_until(self, condition: Callable[[], Any], within_s: float, what: str) -> float:
        """Tick until ``condition`` holds; the simulated seconds it took (fails past ``within_s``)."""
        start = self.clock.monotonic()
        await self.settle()
        while not condition():
            if self.clock.monotonic() - start > within_s:
                raise AssertionError(f"{what}: not within {within_s} simulated seconds")
            await self.tick()
        return self.clock.monotonic() - start

    async def finish(self, work: Coroutine[Any, Any, T] | Awaitable[T], within_s: float = 10.0) -> T:
        """Run ``work`` while the rig ticks (it may wait for the safety loop); its result."""
        task = asyncio.ensure_future(work)
        try:
            await self.run_until(task.done, within_s, "the awaited station call")
        finally:
            if not task.done():
                task.cancel()
        return task.result()

    # -- the driver -------------------------------------------------------------------------
    async def tap(self, token: IdToken = CARD) -> AuthStatus | None:
        return await self.finish(self.station.card_presented(token))

    async def charge(self, token: IdToken = CARD) -> TransactionStarted:
        """Tap, plug in, and wait until the station says charging and the contacts have closed
        (the station follows the commanded contactor; the contacts settle a moment later)."""
        assert await self.tap(token) == AuthStatus.ACCEPTED
        self.world.plug_in()
        await self.run_until(lambda: self.status.activity == Activity.CHARGING
                             and self.world.contactor.closed, 3.0, "charging with the contacts closed")
        return self.started[-1]

    # -- what the station says ---------------------------------------------------------------
    @property
    def status(self) -> StatusChanged:
        return self.station.status_of(1)

    @property
    def started(self) -> list[TransactionStarted]:
        return [e for e in self.outbox.events if isinstance(e, TransactionStarted)]

    @property
    def stopped(self) -> list[TransactionStopped]:
        return [e for e in self.outbox.events if isinstance(e, TransactionStopped)]

    @property
    def samples(self) -> list[MeterSample]:
        return [e for e in self.outbox.events
                if isinstance(e, MeterSample) and e.context == ReadingContext.PERIODIC]

    def facts(self, evse_id: int = 1) -> list[StatusChanged]:
        return [s for s in self.statuses if s.evse_id == evse_id]


class Bench:
    """Makes started rigs and counted stores for one test, and closes them all afterwards."""

    def __init__(self, tmp_path: Path, work: ThreadWork) -> None:
        self.tmp_path = tmp_path
        self.work = work
        self.rigs: list[Rig] = []
        self.stores: list[Store] = []

    async def rig(self, *, outbox: RecordingOutbox | None = None, world: SimWorld | None = None,
                  clock: LoopClock | None = None, lock: ConnectorLock | None | str = "sim",
                  cable_ohms: float | None = 220.0, **settings: str) -> Rig:
        """A started rig; ``lock`` is the sim world's own unless given (None: no lock)."""
        clock = clock or LoopClock()
        world = world or SimWorld(clock, meter_start_wh=METER_START_WH, cable_ohms=cable_ohms)
        outbox = outbox if outbox is not None else RecordingOutbox()
        plug_lock = world.lock if lock == "sim" else lock
        assert not isinstance(plug_lock, str)
        rig = Rig(make_config(self.tmp_path), clock, world, outbox, plug_lock, self.work)
        for name, text in settings.items():
            assert rig.settings.set(name, text) == SetResult.ACCEPTED, name
        self.rigs.append(rig)
        await rig.station.start()
        await rig.run(0.1)  # the safety loop reads the pilot: state A
        return rig

    async def store(self, state_dir: Path) -> Store:
        """The real state database in ``state_dir``, its thread's work counted."""
        store = await CountingStore.open(state_dir)
        assert isinstance(store, CountingStore)
        store.work = self.work
        self.stores.append(store)
        return store

    async def close(self) -> None:
        for rig in self.rigs:
            await rig.station.close()
        for store in self.stores:
            await store.close()


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    work = ThreadWork()
    asyncio.get_running_loop().set_default_executor(CountingExecutor(work))
    bench = Bench(tmp_path, work)
    yield bench
    await bench.close()


# ----------------------------------------------------------------------------- 1. sessions
async def test_card_session_starts_samples_and_stops_on_second_tap(bench: Bench) -> None:
    """The whole local session: what is billed (start, samples, stop) and what the hardware does."""
    rig = await bench.rig()
    assert await rig.tap() == AuthStatus.ACCEPTED
    assert rig.auth_calls == ["CARD"]
    assert rig.outbox.events == [], "no transaction before the EV is plugged in"

    rig.world.plug_in()
    await rig.run_until(lambda: rig.started, 1.0, "TransactionStarted")
    started = rig.started[0]
    assert (started.evse_id, started.token, started.meter_start_wh) == (1, CARD, METER_START_WH)
    assert rig.world.lock.locked(), "the plug is locked for the transaction"
    await rig.run_until(lambda: rig.world.contactor.closed, 3.0, "contactor closed once the EV asks")
    assert rig.world.ev.state == "C" and rig.evse.status.charging_allowed

    await rig.run_until(lambda: len(rig.samples) == 3, 3 * SAMPLE_INTERVAL_S + 1, "three samples")
    assert [s.reading.timestamp for s in rig.samples] == [
        started.timestamp + k * SAMPLE_INTERVAL_S for k in (1, 2, 3)], "one sample per interval"
    assert all(s.local_id == started.local_id and s.offered_a for s in rig.samples)
    energies = [started.meter_start_wh, *(s.reading.energy_import_wh for s in rig.samples)]
    assert energies == sorted(energies) and energies[-1] > energies[0], "the EV draws energy"

    assert await rig.tap() is None, "the second tap of the same card ends the transaction"
    assert len(rig.stopped) == 1
    stop = rig.stopped[0]
    assert (stop.local_id, stop.reason, stop.token) == (started.local_id, StopReason.LOCAL, CARD)
    assert stop.meter_stop_wh >= started.meter_start_wh
    assert stop.meter_stop_wh == rig.world.meter.energy_wh > started.meter_start_wh
    assert [s.context for s in stop.samples] == [
        ReadingContext.TRANSACTION_BEGIN, *[ReadingContext.PERIODIC] * 3, ReadingContext.TRANSACTION_END]
    assert not rig.evse.status.contactor_closed and not rig.evse.status.charging_allowed
    await rig.run_until(lambda: not rig.world.contactor.closed, 0.1, "contacts open")
    assert (rig.status.activity, rig.status.plugged) == (Activity.FINISHING, True)

    rig.world.unplug()
    await rig.run_until(lambda: not rig.status.plugged, 1.0, "unplug seen")
    assert (rig.status.activity, rig.status.operative, rig.status.fault) == (Activity.IDLE, True, None)
    await rig.run_until(lambda: not rig.world.lock.locked(), 1.0, "plug lock released")
    assert len(rig.stopped) == 1 and rig.station.active_transactions() == []


# -------------------------------------------------------------------------- 2. status facts
async def test_status_facts_follow_the_session_without_duplicates(bench: Bench) -> None:
    """Each step of a session is one status change, in order, and nothing is said twice."""
    rig = await bench.rig()
    assert rig.status.activity == Activity.IDLE
    await rig.tap()
    assert (rig.status.activity, rig.status.plugged) == (Activity.AUTHORIZED, False)
    rig.world.plug_in()
    await rig.run_until(lambda: rig.status.activity == Activity.CHARGING, 3.0, "charging")
    await rig.run(1.0)
    await rig.tap()
    assert rig.status.activity == Activity.FINISHING
    await rig.run(1.0)
    rig.world.unplug()
    await rig.run_until(lambda: not rig.status.plugged, 1.0, "unplug seen")
    await rig.run(1.0)

    seen = [(s.activity, s.plugged) for s in rig.facts()]
    assert seen == [
        (Activity.IDLE, False),  # at start
        (Activity.AUTHORIZED, False),  # tapped, no EV
        (Activity.AUTHORIZED, True),  # EV plugged in, the start is being recorded
        (Activity.STARTING, True),  # recorded; the safety loop has not taken up the permission
        (Activity.SUSPENDED_EV, True),  # PWM on; the EV takes its reaction time to close S2
        (Activity.CHARGING, True),
        (Activity.FINISHING, True),  # stopped, still plugged
        (Activity.IDLE, False),  # unplugged
    ]
    facts = [s.facts for s in rig.facts()]
    assert all(a != b for a, b in zip(facts, facts[1:], strict=False)), "the same facts reported twice"
    times = [s.timestamp for s in rig.facts()]
    assert times == sorted(times)


async def test_meter_failures_are_reported_once_not_per_failed_read(bench: Bench) -> None:
    """Every failed read asks for a status report; only the changes reach the listeners."""
    rig = await bench.rig()
    before = len(rig.facts())
    rig.world.meter.fail_next(MeterFailureKind.TIMEOUT, 5)
    # An idle meter is read every IDLE_METER_POLL_S; after a failed read every second: five
    # failures, then it answers again.
    await rig.run(IDLE_METER_POLL_S + 8.0)
    new = rig.facts()[before:]
    assert [s.warning for s in new] == ["power_meter_failure", None]
    assert new[0].activity == Activity.IDLE and new[0].operative


# --------------------------------------------------------------------------- 3. availability
async def test_inoperative_connector_refuses_cards(bench: Bench) -> None:
    """Out of service while idle: accepted at once, persisted, and no card gets a session."""
    rig = await bench.rig()
    assert rig.station.change_availability(1, False) is AvailabilityChange.ACCEPTED
    assert rig.persisted == [(1, False)]
    assert (rig.status.operative, rig.status.activity) == (False, Activity.IDLE)
    assert rig.station.status_of(0).operative is False
    assert rig.facts(0)[-1].operative is False and rig.facts()[-1].operative is False
    assert rig.station.start_refusal(1) == "connector 1 is inoperative"

    assert await rig.tap() is None, "no free connector"
    assert rig.auth_calls == [], "the CSMS is not asked for a card that cannot charge"
    rig.world.plug_in()
    await rig.run(2.0)
    assert rig.outbox.events == [] and not rig.evse.status.charging_allowed
    assert rig.status.activity == Activity.IDLE

    assert rig.station.change_availability(1, True) is AvailabilityChange.ACCEPTED
    assert rig.persisted == [(1, False), (1, True)]
    assert rig.status.operative and rig.station.status_of(0).operative


async def test_a_pending_authorization_ends_when_the_connector_goes_out_of_service(bench: Bench) -> None:
    """Only a running transaction delays the change; a driver still on the way loses the claim."""
    rig = await bench.rig()
    await rig.tap()
    assert rig.station.change_availability(1, False) is AvailabilityChange.ACCEPTED
    assert (rig.status.activity, rig.status.operative) == (Activity.IDLE, False)
    rig.world.plug_in()
    await rig.run(2.0)
    assert rig.outbox.events == [] and rig.station.view(1).session is None


async def test_unavailability_during_a_transaction_is_scheduled(bench: Bench) -> None:
    """A running transaction is not cut: the change waits for its end, then applies and persists."""
    rig = await bench.rig()
    await rig.charge()
    assert rig.station.change_availability(1, False) is AvailabilityChange.SCHEDULED
    assert rig.status.operative and rig.persisted == []
    assert rig.station.view(1).scheduled_operative is False
    await rig.run(1.0)
    assert rig.world.contactor.closed and rig.stopped == [], "charging goes on"

    await rig.tap()
    assert rig.stopped[0].reason == StopReason.LOCAL
    assert rig.persisted == [(1, False)]
    assert (rig.status.operative, rig.status.activity) == (False, Activity.FINISHING)
    assert rig.station.view(1).scheduled_operative is None
    assert rig.facts()[-1].operative is False
    assert rig.station.start_refusal(1) == "connector 1 is inoperative"


async def test_availability_of_an_unknown_evse_is_rejected(bench: Bench) -> None:
    """A change for an EVSE the station does not have changes, persists and reports nothing."""
    rig = await bench.rig()
    reported = len(rig.statuses)
    assert rig.station.change_availability(9, False) is AvailabilityChange.REJECTED
    assert rig.persisted == [] and rig.status.operative and len(rig.statuses) == reported


async def test_station_status_follows_a_scheduled_unavailability(bench: Bench) -> None:
    """With its only connector out of service the station (EVSE 0) is inoperative: say so.

    Regression: a change scheduled during a transaction was applied by stop_transaction without
    reporting EVSE 0, so listeners (the CSMS) never heard that the station went inoperative."""
    rig = await bench.rig()
    await rig.charge()
    assert rig.station.change_availability(0, False) is AvailabilityChange.SCHEDULED
    await rig.tap()
    assert rig.station.status_of(0).operative is False
    assert rig.facts(0)[-1].operative is False, "EVSE 0's change was never reported"


async def test_station_status_is_not_repeated_when_nothing_changed(bench: Bench) -> None:
    """EVSE 0 is reported like the connectors: only when its facts change.

    Regression: every change_availability reported EVSE 0 again, changed or not."""
    rig = await bench.rig()
    rig.station.change_availability(1, False)
    rig.station.change_availability(1, True)
    before = len(rig.facts(0))
    assert rig.station.change_availability(1, True) is AvailabilityChange.ACCEPTED  # already operative
    assert len(rig.facts(0)) == before, "the same EVSE 0 facts were reported again"


# -------------------------------------------------------------------------- 4. authorization
async def test_remote_start_authorized_first_and_refused_begins_nothing(bench: Bench) -> None:
    """The answer comes at once; a CSMS that then blocks the identifier leaves the connector free."""
    rig = await bench.rig()
    rig.auth_answer = AuthStatus.BLOCKED
    result = rig.station.remote_start(REMOTE, 1, authorize_first=True)
    assert result == StartResult(True, 1, waiting_for_ev=True)
    await rig.run(1.0)
    assert rig.auth_calls == ["REMOTE"]
    assert rig.station.view(1).session is None and rig.status.activity == Activity.IDLE
    rig.world.plug_in()
    await rig.run(3.0)
    assert rig.outbox.events == [] and not rig.evse.status.charging_allowed
    assert not rig.world.contactor.closed


async def test_remote_start_without_authorization_waits_for_the_ev(bench: Bench) -> None:
    """Not asking the CSMS: the session begins at once and the transaction when the EV comes."""
    rig = await bench.rig()
    assert rig.station.remote_start(REMOTE, None) == StartResult(True, 1, waiting_for_ev=True)
    assert rig.auth_calls == [] and rig.status.activity == Activity.AUTHORIZED
    rig.world.plug_in()
    await rig.run_until(lambda: rig.world.contactor.closed, 3.0, "charging")
    assert [e.token for e in rig.started] == [REMOTE], "the central token, type and all"


async def test_remote_start_with_the_ev_already_plugged_in(bench: Bench) -> None:
    """With the EV already there the answer says so, and the transaction begins at once."""
    rig = await bench.rig()
    rig.world.plug_in()
    await rig.run(0.5)
    assert rig.station.remote_start(REMOTE, 1) == StartResult(True, 1, waiting_for_ev=False)
    await rig.run_until(lambda: rig.started, 1.0, "TransactionStarted")


async def test_start_refusals_say_why(bench: Bench) -> None:
    """Busy, inoperative, unknown and faulted connectors refuse with their reason; finishing does not."""
    rig = await bench.rig()
    other = IdToken("OTHER", TokenType.CENTRAL)
    assert rig.station.remote_start(other, 9) == StartResult(False, 9, "there is no connector 9")

    rig.station.change_availability(1, False)
    assert rig.station.remote_start(other, 1) == StartResult(False, 1, "connector 1 is inoperative")
    rig.station.change_availability(1, True)

    assert rig.station.remote_start(REMOTE, 1).accepted
    busy = "connector 1 already has a session for REMOTE"
    assert rig.station.remote_start(other, 1) == StartResult(False, 1, busy)
    assert rig.station.remote_start(other, None) == StartResult(
        False, None, f"no connector is free: {busy}")
    assert rig.station.view(1).session.token == REMOTE  # type: ignore[union-attr]

    rig.world.plug_in()
    await rig.run_until(lambda: rig.world.contactor.closed, 3.0, "charging")
    await rig.finish(rig.station.stop_transaction(1, StopReason.REMOTE))
    # Finishing (the EV still plugged in) may take a new session: Finishing -> Preparing.
    assert rig.station.status_of(1).activity == Activity.FINISHING
    assert rig.station.remote_start(other, 1).accepted
    await rig.run_until(lambda: len(rig.started) == 2, 3.0, "a second transaction on the plugged EV")
    await rig.finish(rig.station.stop_transaction(1, StopReason.REMOTE))

    rig.world.unplug()
    await rig.run(0.5)
    rig.world.faults.trip("rcd")
    await rig.run(0.1)
    assert rig.station.remote_start(other, 1) == StartResult(False, 1, "connector 1 is faulted (rcd)")
    assert rig.status.fault == "rcd"
    assert len(rig.started) == 2


async def test_authorization_lapses_after_the_connection_timeout(bench: Bench) -> None:
    """A tap with no EV holds the connector for connection_timeout_s of simulated time, no longer."""
    rig = await bench.rig(connection_timeout_s="30")
    assert await rig.tap() == AuthStatus.ACCEPTED
    await rig.run(30 - TICK)
    assert rig.status.activity == Activity.AUTHORIZED, "lapsed early"
    await rig.run(2 * TICK)
    assert rig.status.activity == Activity.IDLE and rig.station.view(1).session is None
    assert rig.facts()[-1].activity == Activity.IDLE

    rig.world.plug_in()
    await rig.run(2.0)
    assert rig.outbox.events == [] and not rig.evse.status.charging_allowed


async def test_second_tap_before_plugging_in_cancels(bench: Bench) -> None:
    """A driver who changes their mind before plugging in frees the connector; nothing is billed."""
    rig = await bench.rig()
    await rig.tap()
    assert await rig.tap() is None
    assert rig.status.activity == Activity.IDLE
    rig.world.plug_in()
    await rig.run(2.0)
    assert rig.outbox.events == []


async def test_offline_a_cached_card_is_accepted_and_a_stranger_is_not(bench: Bench) -> None:
    """No CSMS: the cache decides (local_authorize_offline), also when asking the CSMS fails."""
    rig = await bench.rig(local_authorize_offline="true")
    assert await rig.tap() == AuthStatus.ACCEPTED  # online: the answer is cached
    await rig.tap()  # cancelled before plugging in
    rig.station.authorizer = None  # offline

    assert await rig.tap(IdToken("STRANGER")) == AuthStatus.UNKNOWN
    assert rig.status.activity == Activity.IDLE

    rig.settings.set("local_authorize_offline", "false")
    assert await rig.tap() == AuthStatus.UNKNOWN, "the cache is not used offline when switched off"
    rig.settings.set("local_authorize_offline", "true")

    async def unreachable(token: IdToken) -> AuthResult:
        raise ConnectionError("CSMS gone")

    rig.station.authorizer = unreachable
    assert await rig.tap() == AuthStatus.ACCEPTED, "a failed CSMS call falls back to the cache"
    rig.station.authorizer = None
    rig.world.plug_in()
    await rig.run_until(lambda: rig.started, 1.0, "TransactionStarted")
    assert rig.started[0].token == CARD
    assert rig.auth_calls == ["CARD"], "only the first, online tap asked the CSMS"


async def test_transaction_rejected_by_the_csms_stops_deauthorized(bench: Bench) -> None:
    """The CSMS refuses the identifier of a running transaction: only that one ends, deauthorized."""
    rig = await bench.rig()
    started = await rig.charge()
    rig.station.transaction_authorized("not-a-transaction", AuthResult(AuthStatus.BLOCKED), True)
    await rig.run(1.0)
    assert rig.stopped == [] and rig.world.contactor.closed

    rig.station.transaction_authorized(started.local_id, AuthResult(AuthStatus.BLOCKED), True)
    await rig.run_until(lambda: rig.stopped, 2.0, "TransactionStopped")
    stop = rig.stopped[0]
    assert (stop.local_id, stop.reason, stop.token) == (started.local_id, StopReason.DEAUTHORIZED, None)
    assert not rig.evse.status.contactor_closed and rig.status.activity == Activity.FINISHING
    await rig.run_until(lambda: not rig.world.contactor.closed, 0.1, "contacts open")


async def test_remote_start_authorized_after_going_out_of_service_begins_nothing(
        bench: Bench) -> None:
    """The CSMS answers only after the connector was taken out of service: nothing begins.

    Regression: _authorize_then_begin re-checked only for a session, not availability, so a
    transaction started on an inoperative connector once the EV was plugged in."""
    rig = await bench.rig()
    answer: asyncio.Future[AuthResult] = asyncio.get_running_loop().create_future()

    async def slow_csms(token: IdToken) -> AuthResult:
        return await answer

    rig.station.authorizer = slow_csms
    assert rig.station.remote_start(REMOTE, 1, authorize_first=True).accepted
    await rig.run(0.5)
    assert rig.station.change_availability(1, False) is AvailabilityChange.ACCEPTED
    answer.set_result(AuthResult(AuthStatus.ACCEPTED))
    rig.world.plug_in()
    await rig.run(3.0)
    assert rig.started == [], "a transaction started on an inoperative connector"
    assert rig.station.view(1).session is None


# ------------------------------------------------------------------------ 5. power loss
async def _cut_off_transaction(bench: Bench, state_dir: Path) -> tuple[Rig, MeterSample]:
    """Charge with a real store until two samples are persisted, go on a second, then lose power
    (the process dies: nothing is stopped). Returns the dead rig and the last persisted sample."""
    store = await bench.store(state_dir)
    outbox = RecordingOutbox()
    await outbox.attach(store)
    rig = await bench.rig(outbox=outbox)
    await rig.charge()
    await rig.run_until(lambda: len(rig.samples) == 2, 2 * SAMPLE_INTERVAL_S + 1, "two samples")
    last = rig.samples[-1]
    await rig.run(1.0)
    assert rig.world.meter.energy_wh > last.reading.energy_import_wh, "charged on after the last sample"
    await rig.station.close()
    await store.close()
    return rig, last


async def _restart(bench: Bench, dead: Rig, state_dir: Path) -> tuple[Rig, Store]:
    """A new process over the same state file, and new hardware: the meter register survived,
    the EV is still plugged in."""
    store = await bench.store(state_dir)
    outbox = RecordingOutbox()
    await outbox.attach(store)
    world = SimWorld(dead.clock, meter_start_wh=dead.world.meter.energy_wh, ev=SimEV())
    world.plug_in()
    rig = await bench.rig(outbox=outbox, world=world, clock=dead.clock)
    await rig.run(0.5)
    return rig, store


async def test_power_loss_stops_the_cut_off_transaction_at_the_last_persisted_reading(
        bench: Bench, tmp_path: Path) -> None:
    """After a restart the cut-off transaction is billed up to what was on disk, not more, even
    with the EV still plugged in (resume off), and the database closes it."""
    state_dir = tmp_path / "db"
    dead, last = await _cut_off_transaction(bench, state_dir)
    started = dead.started[0]
    rig, store = await _restart(bench, dead, state_dir)
    assert len(rig.outbox) == len(dead.outbox.events), "the unsent messages survived the restart"
    cut_off = await rig.outbox.open_transactions()
    assert [(o.local_id, o.token, o.meter_start_wh) for o in cut_off] == [
        (started.local_id, CARD, started.meter_start_wh)]
    assert cut_off[0].last_meter_wh == last.reading.energy_import_wh

    await rig.station.recover(cut_off, resume=False)
    assert rig.outbox.events == [TransactionStopped(
        1, started.local_id, last.reading.energy_import_wh, last.reading.timestamp, StopReason.POWER_LOSS)]
    assert await rig.outbox.open_transactions() == []
    history = await store.call(store.recent_sessions, 5)
    assert [(h["local_id"], h["reason"], h["meter_stop_wh"]) for h in history] == [
        (started.local_id, "power_loss", last.reading.energy_import_wh)]
    await rig.run(2.0)
    assert not rig.evse.status.charging_allowed and not rig.world.contactor.closed
    assert rig.station.active_transactions() == []


async def test_power_loss_with_resume_carries_on_the_transaction(
        bench: Bench, tmp_path: Path) -> None:
    """With resume and the EV still plugged in the same transaction goes on: charging again,
    sampled under its id, nothing stopped and nothing started anew."""
    state_dir = tmp_path / "db"
    dead, _ = await _cut_off_transaction(bench, state_dir)
    local_id = dead.started[0].local_id
    rig, _ = await _restart(bench, dead, state_dir)
    cut_off = await rig.outbox.open_transactions()

    await rig.finish(rig.station.recover(cut_off, resume=True), within_s=5.0)
    assert [tx.local_id for _, tx in rig.station.active_transactions()] == [local_id]
    assert rig.evse.status.charging_allowed
    await rig.run_until(lambda: rig.world.contactor.closed, 3.0, "contactor closed again")
    assert rig.status.activity == Activity.CHARGING
    await rig.run_until(lambda: rig.samples, SAMPLE_INTERVAL_S + 1, "a sample after the restart")
    assert all(s.local_id == local_id for s in rig.samples)
    assert rig.stopped == [] and rig.started == [], "no stop queued and no new transaction"
    assert [o.local_id for o in await rig.outbox.open_transactions()] == [local_id]


async def test_power_loss_resume_locks_the_plug_again(bench: Bench, tmp_path: Path) -> None:
    """A resumed transaction locks the plug as a started one does, before charging.

    Regression: recover(resume=True) allowed charging without locking the plug."""
    state_dir = tmp_path / "db"
    dead, _ = await _cut_off_transaction(bench, state_dir)
    rig, _ = await _restart(bench, dead, state_dir)
    assert not rig.world.lock.locked()  # the new hardware starts unlocked
    await rig.finish(rig.station.recover(await rig.outbox.open_transactions(), resume=True))
    await rig.run_until(lambda: rig.world.contactor.closed, 3.0, "contactor closed again")
    await rig.run(0.5)
    assert rig.world.lock.locked(), "charging under load with the plug unlocked"



async def test_a_transaction_whose_ev_left_while_the_daemon_was_away_ends_as_an_unplug(
        bench: Bench, tmp_path: Path) -> None:
    """The supervisor ended the grant when the EV left (no daemon attached) and says when: the
    transaction ends as an unplug ends it, at that time and a fresh reading (the meter has not moved
    since), not at the last persisted one for power loss, nor at the time the daemon came back; the
    car plugged in since gets none of its energy."""
    state_dir = tmp_path / "db"
    dead, last = await _cut_off_transaction(bench, state_dir)
    started = dead.started[0]
    left_at = dead.clock.time()  # the supervisor saw the EV leave as the daemon died
    rig, _ = await _restart(bench, dead, state_dir)  # another car is plugged in now
    cut_off = await rig.outbox.open_transactions()
    rig.station.hold_for_recovery(cut_off, frozenset(), ev_left={1: left_at})
    await rig.finish(rig.station.recover(cut_off, resume=False), within_s=5.0)
    [stop] = [e for e in rig.outbox.events if isinstance(e, TransactionStopped)]
    assert (stop.local_id, stop.reason) == (started.local_id, StopReason.EV_DISCONNECTED)
    assert stop.meter_stop_wh == pytest.approx(dead.world.meter.energy_wh, abs=1.0)
    assert stop.meter_stop_wh > last.reading.energy_import_wh
    assert stop.timestamp == left_at < rig.clock.time()
    [end] = stop.samples
    assert end.context is ReadingContext.TRANSACTION_END and end.local_id == started.local_id
    assert (end.reading.timestamp, end.reading.energy_import_wh) == (left_at, stop.meter_stop_wh)
    assert await rig.outbox.open_transactions() == []
    await rig.run(2.0)
    assert all(tx.local_id != started.local_id for _, tx in rig.station.active_transactions())
    assert not rig.evse.status.charging_allowed and not rig.world.contactor.closed

async def test_an_earlier_cars_departure_does_not_end_a_transaction_begun_since(
        bench: Bench, tmp_path: Path) -> None:
    """The supervisor reports a departure until a daemon grants energy again; a transaction begun
    after it (its car not yet granted energy when the daemon died) is not that car's: it is cut off
    as any other, at its last persisted reading."""
    state_dir = tmp_path / "db"
    dead, last = await _cut_off_transaction(bench, state_dir)
    started = dead.started[0]
    rig, _ = await _restart(bench, dead, state_dir)
    cut_off = await rig.outbox.open_transactions()
    rig.station.hold_for_recovery(cut_off, frozenset(), ev_left={1: started.timestamp - 60.0})
    await rig.finish(rig.station.recover(cut_off, resume=False), within_s=5.0)
    [stop] = [e for e in rig.outbox.events if isinstance(e, TransactionStopped)]
    assert (stop.local_id, stop.reason) == (started.local_id, StopReason.POWER_LOSS)
    assert stop.meter_stop_wh == last.reading.energy_import_wh

# ---------------------------------------------------------------------------- 6. unlock
async def test_unlock_stops_the_transaction_first_and_drives_the_lock_off_the_loop(
        bench: Bench) -> None:
    """The plug never comes out under load, and the actuator's wait never blocks the event loop."""
    outbox, clock = RecordingOutbox(), LoopClock()
    world = SimWorld(clock, meter_start_wh=METER_START_WH)
    lock = RecordingLock(world.lock, world, outbox)  # type: ignore[arg-type]
    rig = await bench.rig(outbox=outbox, world=world, clock=clock, lock=lock)
    loop_thread = threading.get_ident()
    started = await rig.charge()

    assert await rig.finish(rig.station.unlock(1)) is UnlockResult.UNLOCKED
    assert [(s.local_id, s.reason) for s in rig.stopped] == [(started.local_id, StopReason.UNLOCK_COMMAND)]
    assert not rig.world.lock.locked()
    assert [(locked, closing, amps, stops) for locked, _, closing, amps, stops in lock.calls] == [
        (True, False, 0.0, 0),  # locked for the start, before the contactor may close
        (False, False, 0.0, 1),  # unlocked after the stop was queued: contactor open, no current
    ]
    assert all(call[1] != loop_thread for call in lock.calls), "the actuator was driven on the event loop"


async def test_unlock_without_lock_unknown_connector_and_jammed_lock(bench: Bench) -> None:
    """The other answers: a tethered cable has no lock, EVSE 9 does not exist, a jammed lock fails
    (and the transaction has been stopped all the same)."""
    tethered = await bench.rig(cable_ohms=None)
    assert await tethered.finish(tethered.station.unlock(1)) is UnlockResult.NO_LOCK
    assert await tethered.finish(tethered.station.unlock(9)) is UnlockResult.UNKNOWN_CONNECTOR

    rig = await bench.rig()
    await rig.charge()
    rig.world.lock.jam()
    assert await rig.finish(rig.station.unlock(1)) is UnlockResult.FAILED
    assert rig.stopped[0].reason == StopReason.UNLOCK_COMMAND


# ------------------------------------------------- races and faults found along the way
async def test_unplug_while_the_start_is_recorded_leaves_no_stop_before_its_start(
        bench: Bench, tmp_path: Path) -> None:
    """The driver pulls the plug while a slow lock actuator holds up the start. Whether the station
    then records a transaction (started and stopped) or none, a stop never precedes its start in
    the queue, the database keeps nothing open (which would be stopped again after a restart), and
    the plug ends up unlocked.

    Regression: the start once attached the transaction before locking and writing, so the unplug
    queued a TransactionStopped first and the later start left the database row open."""
    store = await bench.store(tmp_path / "db")
    outbox = RecordingOutbox()
    await outbox.attach(store)
    clock = LoopClock()
    world = SimWorld(clock, meter_start_wh=METER_START_WH)
    lock = GatedLock(world.lock)  # type: ignore[arg-type]
    rig = await bench.rig(outbox=outbox, world=world, clock=clock, lock=lock)
    rig.work.waited_for = False  # simulated time goes on while the actuator is stuck
    try:
        await rig.tap()
        rig.world.plug_in()
        await rig.run_until(lock.entered.is_set, 1.0, "the start locking the plug")
        rig.world.unplug()  # a slow actuator: the driver pulls the plug meanwhile
        await rig.run(1.0)
    finally:
        lock.gate.set()
    rig.work.waited_for = True
    await rig.run(3.0)
    started_ids: set[str] = set()
    for event in rig.outbox.events:
        if isinstance(event, TransactionStarted):
            started_ids.add(event.local_id)
        elif isinstance(event, TransactionStopped):
            assert event.local_id in started_ids, "a TransactionStopped was queued before its start"
    assert len(rig.started) == len(rig.stopped), "a transaction is left running without its EV"
    assert await rig.outbox.open_transactions() == [], "the database keeps a transaction open"
    assert not rig.world.lock.locked() and rig.status.activity == Activity.IDLE
    assert rig.station.view(1).session is None


async def test_unplug_after_a_pilot_fault_ends_the_transaction(bench: Bench) -> None:
    """A CP-PE short, then the driver unplugs: the transaction ends, and the next EV does not
    charge on it.

    Regression: an unplug was recognised only when the previous status was plugged (B/C/D), so
    after a fault (E) the A was missed: the transaction ran on, the plug stayed locked, and the
    next EV charged on the previous driver's transaction."""
    rig = await bench.rig()
    started = await rig.charge()
    rig.world.ev.short_circuit = True  # CP-PE short in the cable: state E
    await rig.run_until(lambda: EvseFault.SHORT in rig.evse.status.faults, 1.0, "short seen")
    await rig.run_until(lambda: not rig.world.contactor.closed, 0.1, "contacts open")
    assert rig.status.fault == "short"
    rig.world.ev.short_circuit = False
    rig.world.unplug()  # the driver pulls the faulty cable
    await rig.run(2.0)
    assert rig.evse.status.faults == frozenset() and not rig.status.plugged
    assert [(s.local_id, s.reason) for s in rig.stopped] == [(started.local_id, StopReason.EV_DISCONNECTED)]
    assert rig.status.activity == Activity.IDLE
    rig.world.plug_in()  # the next driver, who has not tapped a card
    await rig.run(3.0)
    assert not rig.world.contactor.closed, "the next EV charges on the previous driver's transaction"


async def test_close_ends_a_task_that_swallowed_its_first_cancellation(bench: Bench) -> None:
    """A library inside a station task may eat a cancellation (a Modbus read that catches it);
    close cancels again until the task ends, instead of waiting for it for ever."""
    rig = await bench.rig()
    swallowed = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # eaten, as a library's timeout handling may
        await asyncio.Event().wait()  # ... and the task runs on

    task = rig.station._spawn(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(rig.station.close(), 5.0)
    assert swallowed.is_set() and task.cancelled()
