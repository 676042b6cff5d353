"""The outbox on a real SQLite file: order, ids and open transactions survive a restart."""

from __future__ import annotations

import sqlite3

import pytest

from chargepoint.core.events import (
    IdToken,
    MeterSample,
    ReadingContext,
    StopReason,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.storage.outbox import Outbox, decode, encode
from chargepoint.core.storage.store import MIGRATIONS, Store, StoreError
from hal.interfaces import MeterReading


def reading(wh: float, at: float) -> MeterReading:
    return MeterReading(timestamp=at, energy_import_wh=wh, power_w=11040.0,
                        currents_a=(16.0, 16.0, 16.0), voltages_v=(230.0, 230.0, 230.0))


def sample(wh: float, at: float, local: str = "L1") -> MeterSample:
    return MeterSample(1, local, reading(wh, at), ReadingContext.PERIODIC, 16.0)


async def reopen(path) -> tuple[Store, Outbox]:
    store = await Store.open(path)
    box = Outbox()
    await box.attach(store)
    return store, box


def test_events_round_trip_through_json():
    stop = TransactionStopped(1, "L1", 30.5, 9.0, StopReason.POWER_LOSS, IdToken("TAG"),
                              (sample(10.0, 1.0), sample(30.5, 9.0)))
    for event in (TransactionStarted(1, "L1", IdToken("TAG"), 10.0, 1.0), sample(20.0, 5.0), stop):
        assert decode(encode(event)) == event


async def test_queue_and_transaction_ids_survive_a_restart(tmp_path):
    store, box = await reopen(tmp_path)
    start = await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 10.0, 1.0))
    await box.put(sample(20.0, 5.0))
    await box.ack(start, remote_id="77")
    await box.put(TransactionStopped(1, "L1", 30.0, 9.0, StopReason.LOCAL, IdToken("TAG")))
    await store.close()

    store, box = await reopen(tmp_path)
    assert [type(e.event).__name__ for e in box._queue] == ["MeterSample", "TransactionStopped"]
    assert box.remote_id("L1") == "77"
    later = await box.put(TransactionStarted(1, "L2", IdToken("TAG"), 30.0, 10.0))
    assert later.seq > box._queue[0].seq, "sequence numbers keep growing across restarts"
    while box.head() is not None:
        await box.ack(box.head(), remote_id="78" if box.head() is later else None)
    await store.close()
    db = sqlite3.connect(tmp_path / "chargepoint.sqlite")
    assert db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 0
    assert db.execute("SELECT local_id FROM transactions").fetchall() == [("L2",)]


async def test_open_transactions_keep_their_last_persisted_reading(tmp_path):
    store, box = await reopen(tmp_path)
    await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 100.0, 1.0))
    await box.put(sample(150.0, 60.0))
    await box.put(sample(200.0, 120.0))
    await store.call(lambda: None)  # samples are written without waiting; let them land
    await store.close()

    store, box = await reopen(tmp_path)
    [cut] = await box.open_transactions()
    assert (cut.local_id, cut.meter_start_wh) == ("L1", 100.0)
    assert (cut.last_meter_wh, cut.last_meter_at) == (200.0, 120.0)
    await box.put(TransactionStopped(1, "L1", 200.0, 120.0, StopReason.POWER_LOSS))
    assert await box.open_transactions() == []
    await store.close()


async def test_the_remote_start_a_transaction_answers_survives_a_restart(tmp_path):
    """The request id is the transaction's: in its queued start and in its row, for a resumed one."""
    store, box = await reopen(tmp_path)
    started = TransactionStarted(1, "L1", IdToken("CAFE"), 100.0, 1.0, remote_start_id=42)
    await box.put(started)
    await store.close()

    store, box = await reopen(tmp_path)
    assert [e.event for e in box._queue] == [started]
    [cut] = await box.open_transactions()
    assert cut.remote_start_id == 42
    await store.close()


async def test_periodic_samples_are_thinned_but_starts_and_stops_never(tmp_path):
    store = await Store.open(tmp_path)
    box = Outbox(max_entries=6)
    await box.attach(store)
    await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 0.0, 0.0))
    for minute in range(1, 8):
        await box.put(sample(minute * 100.0, minute * 60.0))
    await box.put(TransactionStopped(1, "L1", 800.0, 480.0, StopReason.LOCAL))
    await box.put(TransactionStarted(1, "L2", IdToken("TAG"), 800.0, 500.0))
    kinds = [type(e.event).__name__ for e in box._queue]
    assert kinds.count("TransactionStarted") == 2 and kinds.count("TransactionStopped") == 1
    assert len(box) == 6 and box.thinned == 4
    kept = [e.event.reading.timestamp for e in box._queue if isinstance(e.event, MeterSample)]
    assert kept == sorted(kept) and kept[-1] == 420.0, "the newest reading stays"
    await store.close()
    store, again = await reopen(tmp_path)
    assert [e.seq for e in again._queue] == [e.seq for e in box._queue], "thinning reached the disk"
    await store.close()


async def test_a_database_from_a_newer_release_is_refused(tmp_path):
    store = await Store.open(tmp_path)
    await store.close()
    db = sqlite3.connect(tmp_path / "chargepoint.sqlite")
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(StoreError, match="newer than this release"):
        await Store.open(tmp_path)


async def test_a_corrupt_database_is_refused_with_its_path(tmp_path):
    (tmp_path / "chargepoint.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="chargepoint.sqlite"):
        await Store.open(tmp_path)


async def test_a_corrupt_database_is_set_aside_only_when_configured(tmp_path):
    bad = tmp_path / "chargepoint.sqlite"
    bad.write_bytes(b"this is not a database" * 100)
    store = await Store.open(tmp_path, recreate_if_corrupt=True)
    await store.close()
    aside = list(tmp_path.glob("chargepoint.sqlite.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not")


async def test_an_older_schema_is_upgraded_in_place_keeping_its_data(tmp_path):
    db = sqlite3.connect(tmp_path / "chargepoint.sqlite")
    for statement in filter(str.strip, MIGRATIONS[0].split(";")):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.execute("INSERT INTO settings VALUES ('HeartbeatInterval', '42')")
    db.commit()
    db.close()
    store = await Store.open(tmp_path)
    assert await store.call(store.load_settings) == {"HeartbeatInterval": "42"}
    assert await store.call(lambda: store.db.execute("PRAGMA user_version").fetchone()[0]) == len(MIGRATIONS)
    await store.close()
