"""A damaged state database: a clear error with its path, or set aside when configured.

Corrupt pages behind page 1 must not open fine and fail later as a raw
``sqlite3.DatabaseError``; a zero-length file must not start silently as a new
database; bytes that are not text over the schema must not end in a raw
``UnicodeDecodeError`` (SQLite quotes them in its message); another program's
SQLite file must not get our tables added to it. Each damage here is made for
real on a SQLite file written by the store itself (or by another program), and
must be refused with the file's path in one line (the file left as it was), or
with ``recreate_if_corrupt`` be moved aside, kept with its WAL, for a fresh
store that works. A full disk is not damage: it is refused, never set aside.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from chargepoint.core.events import IdToken, MeterSample, ReadingContext, TransactionStarted
from chargepoint.core.storage.outbox import Outbox
from chargepoint.core.storage.store import DB_NAME, MIGRATIONS, Store, StoreError
from hal.interfaces import MeterReading

#: Enough queued samples for the outbox table to span several pages.
SAMPLES = 120


def sample(seq: int) -> MeterSample:
    reading = MeterReading(timestamp=1000.0 + seq, energy_import_wh=10.0 * seq, power_w=11040.0,
                           currents_a=(16.0, 16.0, 16.0), voltages_v=(230.0, 230.0, 230.0))
    return MeterSample(1, "L1", reading, ReadingContext.PERIODIC, 16.0)


async def filled_database(state: Path) -> Path:
    """A state database written by the store: a transaction and SAMPLES queued samples."""
    store = await Store.open(state)
    box = Outbox()
    await box.attach(store)
    await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 0.0, 1000.0))
    for seq in range(SAMPLES):
        await box.put(sample(seq))
    await store.close()  # waits for the queued writes; the last close checkpoints the WAL
    path = state / DB_NAME
    assert not path.with_name(DB_NAME + "-wal").exists()
    return path


def corrupt_pages(path: Path) -> None:
    """Overwrite the whole page (not page 1) that holds the queued sample of second 1060."""
    data = path.read_bytes()
    page_size = int.from_bytes(data[16:18], "big")
    at = data.index(b'"timestamp":1060.0')
    start = at - at % page_size
    assert start >= page_size and len(data) >= 4 * page_size, "the outbox must span several pages"
    path.write_bytes(data[:start] + bytes([0xA5]) * page_size + data[start + page_size:])


def zero_length(path: Path) -> None:
    path.write_bytes(b"")


def garbage(path: Path) -> None:
    path.write_bytes(os.urandom(3 * 4096))


def truncated(path: Path) -> None:
    os.truncate(path, path.stat().st_size // 2)


def undecodable_row(path: Path) -> None:
    """Queued message 7 cut short: the file is sound, one row of billing data is not."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("UPDATE outbox SET event = substr(event, 1, 40) WHERE seq = 7")
    db.close()


def _page_size(data: bytes) -> int:
    return int.from_bytes(data[16:18], "big")


def random_pages(path: Path) -> None:
    """Random bytes over every page but the first (a fixed seed: the same damage each run)."""
    data = path.read_bytes()
    size = _page_size(data)
    path.write_bytes(data[:size] + random.Random(7).randbytes(len(data) - size))


def non_text_over_the_schema(path: Path) -> None:
    """Bytes that are not UTF-8 over the text of a trigger in the schema.

    SQLite reports the syntax error quoting them, and its message can then not
    be decoded: the first statement on the file raised ``UnicodeDecodeError``.
    """
    data = bytearray(path.read_bytes())
    noise = random.Random(3).randbytes(40)
    hits = 0
    start = data.find(b"BEGIN")
    while start != -1:
        data[start:start + 40] = bytes(0x80 | b for b in noise)  # continuation bytes: never valid UTF-8
        hits += 1
        start = data.find(b"BEGIN", start + 40)
    assert hits, "the schema has trigger bodies to damage"
    path.write_bytes(bytes(data))


def zeroed_pages(path: Path) -> None:
    """Zeros over the page of the queued sample of second 1060, as a lost write of a flash block leaves."""
    data = path.read_bytes()
    size = _page_size(data)
    at = data.index(b'"timestamp":1060.0')
    start = at - at % size
    path.write_bytes(data[:start] + bytes(size) + data[start + size:])


def zeroed_first_page(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(bytes(_page_size(data)) + data[_page_size(data):])


def foreign_database(path: Path) -> None:
    """Another program's SQLite file (no schema version) where ours should be."""
    path.unlink()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
    db.execute("INSERT INTO moz_places (url) VALUES ('https://example.org/')")
    db.close()


def foreign_with_its_own_marks(path: Path) -> None:
    """Another program's file that sets an application id and a version of its own (here 3)."""
    path.unlink()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA application_id = 1196444487")  # a GeoPackage
    db.execute("PRAGMA user_version = 3")
    db.execute("CREATE TABLE gpkg_contents (table_name TEXT PRIMARY KEY)")
    db.close()


def foreign_with_our_version_number(path: Path) -> None:
    """A file claiming schema version 5 without the tables version 5 has."""
    path.unlink()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA user_version = 5")
    db.execute("CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    db.close()


def newer_schema(path: Path) -> None:
    """A file a newer release wrote (and migrated past what this release knows)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    db.close()


DAMAGES: list[Callable[[Path], None]] = [
    corrupt_pages, zero_length, garbage, truncated, random_pages, non_text_over_the_schema, zeroed_pages,
    zeroed_first_page, foreign_database, foreign_with_its_own_marks, foreign_with_our_version_number,
    newer_schema]

#: What each damage is refused for (after the path), as a technician reads it.
REASONS = {
    "non_text_over_the_schema": "the database schema is damaged",
    "foreign_database": "not a chargepoint state database: an SQLite file without a schema version, "
                        "holding the tables moz_places",
    "foreign_with_its_own_marks": "not a chargepoint state database: another program's SQLite file "
                                  "(application id 0x47504b47)",
    "foreign_with_our_version_number": "not a chargepoint state database, or a damaged one: schema version 5 "
                                       "without the tables",
    "newer_schema": f"schema version {len(MIGRATIONS) + 1} is newer than this release understands",
    "zero_length": "the state database is empty",
}


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
async def test_damage_is_refused_with_the_path_and_the_file_left_alone(tmp_path: Path, damage) -> None:
    path = await filled_database(tmp_path)
    damage(path)
    before = path.read_bytes()
    with pytest.raises(StoreError) as refused:
        await Store.open(tmp_path)
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and message.isprintable(), message
    assert REASONS.get(damage.__name__, "") in message
    assert path.read_bytes() == before, "a refused file is not touched"
    assert list(tmp_path.glob(f"{DB_NAME}.corrupt-*")) == []


@pytest.mark.parametrize("damage", DAMAGES, ids=lambda d: d.__name__)
async def test_damage_is_set_aside_for_a_fresh_store_when_configured(tmp_path: Path, damage, caplog) -> None:
    path = await filled_database(tmp_path)
    damage(path)
    before = path.read_bytes()
    with caplog.at_level(logging.ERROR, logger="chargepoint.core.storage.store"):
        store = await Store.open(tmp_path, recreate_if_corrupt=True)
    try:
        assert await store.call(store.schema_version) == len(MIGRATIONS)
        assert await store.call(store.check_integrity) == "ok"
        box = Outbox()
        await box.attach(store)
        assert len(box) == 0, "nothing of the damaged file is used"
        await box.put(TransactionStarted(1, "L2", IdToken("TAG"), 0.0, 5.0))
    finally:
        await store.close()
    [aside] = tmp_path.glob(f"{DB_NAME}.corrupt-*")
    assert aside.read_bytes() == before, "the damaged file is kept as it was, for inspection"
    [line] = [r.getMessage() for r in caplog.records if "moved to" in r.getMessage()]
    assert str(path) in line and str(aside) in line and "\n" not in line and line.isprintable()


def with_committed_wal(path: Path, damage: Callable[[Path], None]) -> bytes:
    """Commit a setting that stays in the WAL (as a power cut leaves it), then ``damage`` the file.

    Returns the WAL's bytes.
    """
    wal = path.with_name(DB_NAME + "-wal")
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO settings (name, value) VALUES ('newest', 'committed')")
    shutil.copy(wal, path.with_name("wal"))
    db.close()  # checkpoints and deletes the WAL: put the copy back after the damage
    damage(path)
    path.with_name("wal").rename(wal)
    return wal.read_bytes()


async def test_the_wal_of_a_lost_file_goes_aside_with_it(tmp_path: Path) -> None:
    """A fresh database would delete a WAL it does not recognise, and with it the newest writes."""
    committed = with_committed_wal(await filled_database(tmp_path), zero_length)
    store = await Store.open(tmp_path, recreate_if_corrupt=True)
    try:
        assert await store.call(store.load_settings) == {}, "nothing of the old WAL is in the new file"
    finally:
        await store.close()
    [aside] = tmp_path.glob(f"{DB_NAME}.corrupt-*[0-9]")
    assert aside.read_bytes() == b"" and aside.with_name(aside.name + "-wal").read_bytes() == committed


async def test_what_a_damaged_file_committed_last_is_kept_aside(tmp_path: Path) -> None:
    with_committed_wal(await filled_database(tmp_path), corrupt_pages)
    store = await Store.open(tmp_path, recreate_if_corrupt=True)
    await store.close()
    [aside] = tmp_path.glob(f"{DB_NAME}.corrupt-*[0-9]")
    old = sqlite3.connect(f"file:{aside}?mode=ro", uri=True)  # with its WAL, if it still has one
    try:
        assert old.execute("SELECT value FROM settings WHERE name = 'newest'").fetchone() == ("committed",)
    finally:
        old.close()


async def test_a_missing_file_is_a_new_database(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "new")
    assert await store.call(store.schema_version) == len(MIGRATIONS)
    await store.close()


async def test_an_undecodable_queued_message_is_named_and_nothing_is_taken_over(tmp_path: Path) -> None:
    path = await filled_database(tmp_path)
    undecodable_row(path)
    store = await Store.open(tmp_path)  # the file itself is sound
    box = Outbox()
    try:
        with pytest.raises(StoreError, match=rf"^{path}: queued transaction message 7 cannot be decoded"):
            await box.attach(store)
        assert len(box) == 0 and box.store is None
    finally:
        await store.close()


async def test_unreadable_pages_met_by_the_outbox_are_a_store_error_with_the_path(tmp_path: Path) -> None:
    """The second line of defence: damage the check at opening did not see (it came later)."""
    path = await filled_database(tmp_path)
    corrupt_pages(path)
    store = Store(path)
    # as if opened (and checked) before the damage
    store._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        with pytest.raises(StoreError, match=rf"^{path}: cannot read the queued transaction messages: "):
            await Outbox().attach(store)
    finally:
        await store.close()
