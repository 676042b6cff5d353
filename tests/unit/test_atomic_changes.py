"""Each change of what the state database keeps is all or nothing across a kill at any instant.

A kill is injected at every write boundary, deterministically: the store's own
connection traces each statement it is about to run, and at that instant the
database file and its WAL are copied as they are. That copy is what the disk
holds if the process died then (the kernel keeps what was written; a power cut
with ``synchronous=FULL`` keeps no more than that, and never half a commit).
Each copy is opened by a fresh store, as the daemon opens it after a restart,
and must show the state before the change or the state after it, nothing in
between. One test kills a real process (``os._exit``) at the statement after
the first write of a profile replacement, as a power cut there would.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypeVar

import pytest

from chargepoint.config import parse
from chargepoint.core.authorization import Entry, LocalAuthorization
from chargepoint.core.cards import Card, LocalCards
from chargepoint.core.energy import limit_store
from chargepoint.core.energy.schedule import ChargingProfile, Kind, Period, Purpose, RateUnit, Schedule
from chargepoint.core.energy.smart_charging import CLAIM, SmartCharging
from chargepoint.core.events import AuthStatus
from chargepoint.core.operator_limit import OperatorLimits
from chargepoint.core.settings import Settings
from chargepoint.core.storage import atomic, outbox_db
from chargepoint.core.storage.store import DB_NAME, Store
from chargepoint.safety.limits import LimitClaims
from hal.clock import ManualClock
from tests.unit.test_reservations import CARD, _reserve, _rig
from tests.unit.test_station import Bench, CountingExecutor, ThreadWork

T = TypeVar("T")
NOW = 1_700_000_000.0
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def bench(tmp_path: Path):
    work = ThreadWork()
    asyncio.get_running_loop().set_default_executor(CountingExecutor(work))
    bench = Bench(tmp_path, work)
    yield bench
    await bench.close()


# ------------------------------------------------------------------------------ the kill points
async def kill_points(store: Store, change: Callable[[], Awaitable[object]], into: Path) -> list[Path]:
    """Run ``change`` with a copy of the database taken before each statement the store runs, and
    one after it: the state directories a kill at each instant would leave."""
    points: list[Path] = []

    def copy() -> None:
        point = into / f"kill-{len(points):03d}"
        point.mkdir(parents=True)
        for suffix in ("", "-wal"):  # no -shm: the next opener rebuilds it from the WAL
            source = store.path.with_name(store.path.name + suffix)
            if source.exists():
                shutil.copyfile(source, point / (DB_NAME + suffix))
        points.append(point)

    await store.call(store.db.set_trace_callback, lambda statement: copy())
    try:
        await change()
    finally:
        await store.call(store.db.set_trace_callback, None)
    await store.call(copy)
    assert len(points) >= 2, "the change ran no statement"
    return points


async def after_kill(points: list[Path], read: Callable[[Store], Awaitable[T]]) -> list[T]:
    """What a fresh store (the daemon after a restart) reads from each kill point."""
    seen = []
    for point in points:
        store = await Store.open(point)
        try:
            seen.append(await read(store))
        finally:
            await store.close()
    return seen


def all_or_nothing(seen: list[T], before: T, after: T) -> None:
    assert seen[0] == before and seen[-1] == after, (seen[0], seen[-1])
    half = [(n, state) for n, state in enumerate(seen) if state not in (before, after)]
    assert not half, f"half-done after a kill before statement {half[0][0]}: {half[0][1]}"


def rows(sql: str) -> Callable[[Store], Awaitable[list[tuple[Any, ...]]]]:
    async def read(store: Store) -> list[tuple[Any, ...]]:
        return await store.call(lambda: store.db.execute(sql).fetchall())
    return read


# ------------------------------------------------------------------------- smart charging
class Facts:
    """The station as smart charging and the operator's limit read it: two idle EVSEs."""

    def __init__(self) -> None:
        self.clock = ManualClock(0.0, wall_start=NOW)
        self.connectors = {1: object(), 2: object()}
        self.status_listeners: list[Any] = []
        self.recovery_listeners: list[Any] = []
        self._limits = {e: LimitClaims() for e in self.connectors}

    def view(self, evse_id: int) -> Any:
        return SimpleNamespace(session=None)

    def hardware(self, evse_id: int) -> Any:
        return SimpleNamespace(limits=self._limits[evse_id])


def station_max(pid: int, amps: float) -> ChargingProfile:
    """A station maximum profile at stack level 0 (what 1.6 calls ChargePointMaxProfile)."""
    return ChargingProfile(pid, 0, Purpose.STATION_MAX, 0, Kind.ABSOLUTE,
                           Schedule(RateUnit.AMPS, (Period(0, amps),), NOW - 60))


async def engine_on(store: Store) -> tuple[SmartCharging, Facts]:
    facts = Facts()
    engine = SmartCharging(facts)
    await engine.attach(store)
    engine.start()
    return engine, facts


async def offered_after_restart(store: Store) -> tuple[list[int], float | None]:
    """The profiles a restarted engine finds, and the smart-charging limit it puts on EVSE 1."""
    engine, facts = await engine_on(store)
    try:
        return sorted(engine.profiles), facts.hardware(1).limits.get(CLAIM)
    finally:
        engine.close()


async def test_a_station_maximum_replaced_at_the_same_level_survives_a_kill_between_the_writes(
        tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state")
    engine, _ = await engine_on(store)
    assert engine.install(station_max(1, 8.0)) is None
    await engine.durable()

    async def replace() -> None:
        assert engine.install(station_max(2, 10.0)) is None  # same purpose and level: 1 goes
        await engine.durable()

    points = await kill_points(store, replace, tmp_path / "kills")
    engine.close()
    await store.close()
    seen = await after_kill(points, offered_after_restart)
    all_or_nothing(seen, before=([1], 8.0), after=([2], 10.0))


async def test_a_clear_of_several_profiles_and_a_limit_on_several_connectors_are_one_change_each(
        tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state")
    engine, facts = await engine_on(store)
    for pid, evse in ((1, 1), (2, 2), (3, 1)):
        profile = ChargingProfile(pid, evse, Purpose.TX_DEFAULT, pid, Kind.ABSOLUTE,
                                  Schedule(RateUnit.AMPS, (Period(0, 10.0 + pid),), NOW - 60))
        assert engine.install(profile) is None
    await engine.durable()

    async def clear() -> None:
        assert sorted(engine.clear(purpose=Purpose.TX_DEFAULT)) == [1, 2, 3]
        await engine.durable()

    points = await kill_points(store, clear, tmp_path / "clear")
    all_or_nothing(await after_kill(points, rows("SELECT id FROM charging_profiles ORDER BY id")),
                   before=[(1,), (2,), (3,)], after=[])
    engine.close()

    operator = OperatorLimits(facts)  # type: ignore[arg-type]
    await operator.attach(store)
    await operator.set([1, 2], 16.0)
    points = await kill_points(store, lambda: operator.set([1, 2], 10.0), tmp_path / "limit")
    await store.close()
    all_or_nothing(await after_kill(points, rows("SELECT evse_id, amps FROM operator_limits ORDER BY 1")),
                   before=[(1, 16.0), (2, 16.0)], after=[(1, 10.0), (2, 10.0)])


async def test_a_transaction_profile_whose_transaction_did_not_come_back_goes_after_the_recovery(
        bench: Bench, tmp_path: Path) -> None:
    """A kill between a transaction's end and the removal of its profiles (or a power cut that ends
    the transaction as PowerLoss) leaves the profile on disk: it goes once the station has
    recovered its transactions."""
    store = await Store.open(tmp_path / "state-db")
    tx_profile = ChargingProfile(5, 1, Purpose.TX, 0, Kind.RELATIVE,
                                 Schedule(RateUnit.AMPS, (Period(0, 6.0),)), transaction_id="tx-gone")
    await store.call(limit_store.write_profiles, store, [], [tx_profile, station_max(1, 8.0)])
    rig = await bench.rig()
    engine = SmartCharging(rig.station)
    await engine.attach(store)
    engine.start()
    assert sorted(engine.profiles) == [1, 5]
    await rig.station.recover([], resume=False)  # its transaction did not come back
    await engine.durable()
    engine.close()
    assert sorted(engine.profiles) == [1]
    assert await rows("SELECT id FROM charging_profiles")(store) == [(1,)]
    await store.close()


#: Run in a child process: replace profile 1 (8 A) by profile 2 and die at the statement
#: that follows the change's first write, as a power cut there would.
KILLED_REPLACEMENT = """
import asyncio, os, sys
from chargepoint.core.storage.store import Store
from tests.unit.test_atomic_changes import engine_on, station_max

async def main():
    store = await Store.open(sys.argv[1])
    engine, _ = await engine_on(store)
    writes = []
    def die_after_the_first_write(statement):
        if statement.split()[0].upper() in ("INSERT", "DELETE", "UPDATE", "COMMIT"):
            writes.append(statement)
            if len(writes) == 2:
                os._exit(9)
    await store.call(store.db.set_trace_callback, die_after_the_first_write)
    engine.install(station_max(2, 10.0))
    await engine.durable()
    os._exit(0)

asyncio.run(main())
"""


async def test_a_process_killed_inside_a_profile_replacement_keeps_the_old_limit(tmp_path: Path) -> None:
    state = tmp_path / "state"
    store = await Store.open(state)
    engine, _ = await engine_on(store)
    assert engine.install(station_max(1, 8.0)) is None
    await engine.durable()
    engine.close()
    await store.close()

    child = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", KILLED_REPLACEMENT, str(state)],
                                    cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert child.returncode == 9, child.stderr

    store = await Store.open(state)
    try:
        profiles, offered = await offered_after_restart(store)
    finally:
        await store.close()
    assert (profiles, offered) == ([1], 8.0), "the 8 A station maximum is still in force"


# ----------------------------------------------------------------- availability and settings
async def test_the_whole_station_made_inoperative_is_kept_for_every_connector_or_for_none(
        bench: Bench, tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state-db")
    rig = await _rig(bench, tmp_path, connectors=2)
    rig.station.persist_availability = lambda changes: store.submit(atomic.save_availability, store, changes)
    rig.station.change_availability(0, False)
    await store.call(lambda: None)  # the write queued before has run

    async def operative_again() -> None:
        rig.station.change_availability(0, True)
        await store.call(lambda: None)

    points = await kill_points(store, operative_again, tmp_path / "kills")
    await store.close()
    all_or_nothing(await after_kill(points, lambda s: s.call(s.load_availability)),
                   before={1: False, 2: False}, after={1: True, 2: True})


async def test_a_setting_reset_forgets_every_name_it_was_stored_under_together(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state")
    names = ["heartbeat_interval_s", "HeartbeatInterval"]  # neutral, and an earlier release's key
    for name in names:
        await store.call(store.save_setting, name, "60")
    points = await kill_points(store, lambda: store.call(atomic.forget_settings, store, names),
                               tmp_path / "kills")
    await store.close()
    all_or_nothing(await after_kill(points, lambda s: s.call(s.load_settings)),
                   before={"heartbeat_interval_s": "60", "HeartbeatInterval": "60"}, after={})


# ------------------------------------------------------------ lists and reservations
async def test_a_local_list_update_and_a_batch_of_cards_are_all_or_nothing(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state")
    settings = Settings(parse({"station": {"identity": "X"}, "ocpp": {"csms_url": "ws://h"}}))
    auth = LocalAuthorization(settings, ManualClock(0.0, wall_start=NOW))
    await auth.attach(store)
    await auth.update_list(1, True, [("A", Entry(AuthStatus.ACCEPTED)), ("B", Entry(AuthStatus.ACCEPTED))])
    points = await kill_points(store, lambda: auth.update_list(
        2, True, [("C", Entry(AuthStatus.ACCEPTED)), ("D", Entry(AuthStatus.BLOCKED))]), tmp_path / "list")

    async def the_list(s: Store) -> tuple[int, list[str]]:
        again = LocalAuthorization(settings, ManualClock(0.0, wall_start=NOW))
        await again.attach(s)
        return again.list_version, sorted(again.local_list)

    all_or_nothing(await after_kill(points, the_list), before=(1, ["A", "B"]), after=(2, ["C", "D"]))

    cards = LocalCards(ManualClock(0.0, wall_start=NOW))
    await cards.attach(store)
    points = await kill_points(store, lambda: cards.put([Card("E1", "van"), Card("E2", "car")]),
                               tmp_path / "cards")
    await store.close()
    all_or_nothing(await after_kill(points, rows("SELECT id_tag FROM cards ORDER BY 1")),
                   before=[], after=[("E1",), ("E2",)])


async def test_a_reservation_replaced_under_its_id_is_the_old_one_or_the_new_one(
        bench: Bench, tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state-db")
    rig = await _rig(bench, tmp_path, connectors=2, store=store)
    assert await _reserve(rig, 7, 1) == "accepted"
    points = await kill_points(store, lambda: _reserve(rig, 7, 2), tmp_path / "kills")
    await store.close()
    seen = await after_kill(points, rows("SELECT id, evse_id FROM reservations"))
    all_or_nothing(seen, before=[(7, 1)], after=[(7, 2)])



async def test_a_reservation_used_by_a_start_goes_with_the_start_or_stays_without_it(
        bench: Bench, tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "state-db")
    rig = await _rig(bench, tmp_path, store=store)
    assert await _reserve(rig, 7, 1) == "accepted"
    assert await rig.tap(CARD) == AuthStatus.ACCEPTED
    rig.world.plug_in()
    await rig.run_until(lambda: rig.started, 2.0, "the transaction")
    start = rig.started[0]
    assert start.reservation_id == 7 and rig.station.reservations.all() == []
    await store.call(lambda: None)
    assert await rows("SELECT id FROM reservations")(store) == [(7,)], \
        "the claim alone writes nothing: the row goes with the start's write"

    points = await kill_points(store, lambda: store.call(outbox_db.write_put, store, 1, start, None),
                               tmp_path / "kills")
    await store.close()

    async def both(s: Store) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        return (await rows("SELECT id FROM reservations")(s),
                await rows("SELECT local_id FROM transactions")(s))

    all_or_nothing(await after_kill(points, both), before=([(7,)], []), after=([], [(start.local_id,)]))
