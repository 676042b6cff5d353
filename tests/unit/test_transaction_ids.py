"""Transaction ids are stored as the text they are, whatever number SQLite could read in them.

A column of numeric affinity converts text that looks like a number: the
station-made 2.0.1 id ``827303e10063`` came back as ``inf``, ``00123`` as
``123``, in the history, the CSV export, the status and the id map after a
restart. Ids here are chosen to look like numbers; each must come back as the
same text through a restart and the history readers. A file of the schema
before ids were text is made here with that schema's own migrations and rows
converted as SQLite converted them; opening it repairs them.
"""

from __future__ import annotations

import csv
import io
import logging
import sqlite3
from pathlib import Path
from types import SimpleNamespace

from chargepoint.cli.session_csv import sessions_csv
from chargepoint.control.service import StationService
from chargepoint.core.events import IdToken, StopReason, TransactionStarted, TransactionStopped
from chargepoint.core.storage.outbox import Outbox, encode
from chargepoint.core.storage.schema import APPLICATION_ID
from chargepoint.core.storage.store import DB_NAME, MIGRATIONS, Store

#: Text SQLite reads as a number: leading zeros, an exponent, a hex id that overflows to inf,
#: signs, decimals, and the words SQLite would not take (they must stay as they are too).
IDS = ["00123", "1e5", "827303e10063", "inf", "-0", "1.50", "+7", "0x1F", "9223372036854775808", "NaN"]


async def _history(store: Store) -> list[dict[str, object]]:
    """The history as the control API answers it (``chargepoint sessions``)."""
    service = SimpleNamespace(store=store, station=SimpleNamespace(connectors=[]),
                              daemon=SimpleNamespace(cards=None), energy=None)
    return (await StationService.sessions(service, 1000))["finished"]  # type: ignore[arg-type]


def _csv_ids(finished: list[dict[str, object]]) -> list[str]:
    return [row["csms_transaction_id"] for row in csv.DictReader(io.StringIO(sessions_csv(finished)))]


async def test_ids_that_read_as_numbers_come_back_as_the_same_text(tmp_path: Path) -> None:
    store = await Store.open(tmp_path)
    try:
        box = Outbox()
        await box.attach(store)
        for n, tx_id in enumerate(IDS):  # 2.0.1: the station's id is the CSMS's
            start = await box.put(TransactionStarted(1, tx_id, IdToken("TAG"), 0.0, 100.0 * n))
            await box.ack(start, remote_id=tx_id)
        for n, tx_id in enumerate(IDS):  # stopped; the stops not yet answered
            await box.put(TransactionStopped(1, tx_id, 10.0, 100.0 * n + 50, StopReason.LOCAL))
        assert [box.remote_id(tx_id) for tx_id in IDS] == IDS
    finally:
        await store.close()

    store = await Store.open(tmp_path)  # a restart: stops not yet answered, ids from the database
    try:
        box = Outbox()
        await box.attach(store)
        assert [box.remote_id(tx_id) for tx_id in IDS] == IDS, "the id map after a restart"
        assert [box.local_id(tx_id) for tx_id in IDS] == IDS
        finished = await _history(store)
        assert [s["remote_id"] for s in reversed(finished)] == IDS, "the history"
        assert _csv_ids(finished) == IDS, "the CSV export"
        assert await store.call(lambda: store.db.execute(
            "SELECT DISTINCT typeof(remote_id) FROM sessions").fetchall()) == [("text",)]
    finally:
        await store.close()


def _schema_9_file(path: Path) -> None:
    """A state database as the release before text ids left it, with converted ids in it."""
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:9]:
        db.executescript(script)  # type: ignore[arg-type]
    db.execute("PRAGMA user_version = 9")
    db.execute("PRAGMA journal_mode = WAL")
    # open transactions (their stop not yet answered): 2.0.1 ids, a 1.6 CSMS integer, none yet
    for local_id, remote_id in [("827303e10063", "827303e10063"), ("00123", "00123"),
                                ("a1b2c3d4e5f6", "4711"), ("0badc0ffee00", None)]:
        db.execute("INSERT INTO transactions (local_id, connector_id, id_tag, meter_start_wh, started_at, "
                   "remote_id, last_meter_wh, last_meter_at, open) VALUES (?, 1, 'TAG', 0, 1, ?, 5, 2, 1)",
                   (local_id, remote_id))
        event = TransactionStarted(1, local_id, IdToken("TAG"), 0.0, 1.0)
        db.execute("INSERT INTO outbox (local_id, kind, event) VALUES (?, 'TransactionStarted', ?)",
                   (local_id, encode(event)))
    # finished sessions: 2.0.1 ids, a 1.6 integer, and a 1.6 id too large for SQLite's integers
    for seq, (local_id, remote_id) in enumerate([("1e5", "1e5"), ("000000000042", "000000000042"),
                                                 ("f00d", "17"), ("c0ffee00aa11", "99999999999999999999")]):
        db.execute("INSERT INTO sessions (seq, local_id, remote_id, connector_id, id_tag, started_at, "
                   "stopped_at, meter_start_wh, meter_stop_wh, reason) "
                   "VALUES (?, ?, ?, 1, 'TAG', 1, 2, 0, 5, 'Local')", (seq + 1, local_id, remote_id))
    kinds = db.execute("SELECT typeof(remote_id) FROM transactions UNION ALL "
                       "SELECT typeof(remote_id) FROM sessions").fetchall()
    assert ("real",) in kinds and ("integer",) in kinds, "the old schema converts them"
    db.close()


async def test_a_file_with_converted_ids_is_repaired_when_opened(tmp_path: Path, caplog) -> None:
    _schema_9_file(tmp_path / DB_NAME)
    with caplog.at_level(logging.INFO, logger="chargepoint.core.storage.schema"):
        store = await Store.open(tmp_path)
    try:
        assert await store.call(store.schema_version) == len(MIGRATIONS)
        db = store.db
        assert await store.call(lambda: db.execute("PRAGMA application_id").fetchone()[0]) == APPLICATION_ID
        assert await store.call(lambda: dict(db.execute(
            "SELECT local_id, remote_id FROM transactions WHERE typeof(remote_id) = 'text'").fetchall())) == {
            "827303e10063": "827303e10063", "00123": "00123", "a1b2c3d4e5f6": "4711"}
        finished = await _history(store)
        assert {s["local_id"]: s["remote_id"] for s in finished} == {
            "1e5": "1e5", "000000000042": "000000000042", "f00d": "17", "c0ffee00aa11": "1e+20"}
        assert "nowhere" in caplog.text and "c0ffee00aa11" in caplog.text, "what cannot be repaired is named"

        box = Outbox()
        await box.attach(store)
        assert box.remote_id("827303e10063") == "827303e10063" and box.remote_id("00123") == "00123"
        assert len(box) == 4
        # The rebuilt tables keep their triggers: a stop writes the history, a late id follows it.
        await box.put(TransactionStopped(1, "00123", 5.0, 3.0, StopReason.POWER_LOSS))
        await box.put(TransactionStopped(1, "0badc0ffee00", 5.0, 3.0, StopReason.POWER_LOSS))
        await box.ack(await box.wait_head())  # the first start, already known to the CSMS
        await box.ack(await box.wait_head())
        await box.ack(await box.wait_head())
        await box.ack(await box.wait_head(), remote_id="0e0")  # 0badc0ffee00's start, answered now
        history = {s["local_id"]: s["remote_id"] for s in await _history(store)}
        assert history["00123"] == "00123" and history["0badc0ffee00"] == "0e0"
        assert await store.call(store.check_integrity) == "ok"
    finally:
        await store.close()
