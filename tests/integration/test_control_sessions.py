"""The session history behind `chargepoint sessions`: schema 3 of the state database.

A row is written by the database itself when a transaction is marked stopped, in the
same transaction as the stop message, so every way a transaction ends (a local or
remote stop, PowerLoss after a restart) is in the history; a file of schema 2 is
upgraded in place with its open transactions intact.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from chargepoint.core.events import IdToken, StopReason, TransactionStarted, TransactionStopped
from chargepoint.core.storage.outbox import Outbox
from chargepoint.core.storage.store import DB_NAME, MIGRATIONS, Store


async def test_a_stop_writes_the_history_with_reason_and_the_csms_id(tmp_path: Path):
    store = await Store.open(tmp_path)
    try:
        outbox = Outbox()
        await outbox.attach(store)
        start = await outbox.put(TransactionStarted(1, "tx-a", IdToken("CARD-1"), 1000.0, 100.0))
        await outbox.ack(start, remote_id="41")
        stop = await outbox.put(TransactionStopped(1, "tx-a", 1750.5, 160.0, StopReason.REMOTE))
        started_b = await outbox.put(TransactionStarted(2, "tx-b", IdToken("CARD-2"), 20.0, 200.0))
        await outbox.put(TransactionStopped(2, "tx-b", 30.0, 260.0, StopReason.EV_DISCONNECTED,
                                            IdToken("CARD-2")))
        assert await store.call(store.recent_sessions, 10) == [
            {"local_id": "tx-b", "remote_id": None, "connector_id": 2, "id_tag": "CARD-2",
             "started_at": 200.0, "stopped_at": 260.0, "meter_start_wh": 20.0, "meter_stop_wh": 30.0,
             "reason": "ev_disconnected", "card_name": None, "standalone": 0},
            {"local_id": "tx-a", "remote_id": "41", "connector_id": 1, "id_tag": "CARD-1",
             "started_at": 100.0, "stopped_at": 160.0, "meter_start_wh": 1000.0, "meter_stop_wh": 1750.5,
             "reason": "remote", "card_name": None, "standalone": 0},
        ]
        # The CSMS's id for tx-b arrives after its stop (it was offline): the history follows.
        await outbox.ack(stop)
        await outbox.ack(started_b, remote_id="42")
        assert (await store.call(store.recent_sessions, 1))[0]["remote_id"] == "42"
        assert await store.call(store.check_integrity) == "ok"
        assert await store.call(store.schema_version) == len(MIGRATIONS)
    finally:
        await store.close()


async def test_a_schema_2_file_is_upgraded_and_a_power_loss_stop_is_recorded(tmp_path: Path):
    db = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    for script in MIGRATIONS[:2]:
        db.executescript(script)
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO transactions (local_id, connector_id, id_tag, meter_start_wh, started_at, "
               "last_meter_wh, last_meter_at, open) VALUES ('tx-old', 1, 'CARD-9', 5.0, 50.0, 9.0, 90.0, 1)")
    db.close()
    store = await Store.open(tmp_path)
    try:
        outbox = Outbox()
        await outbox.attach(store)
        (cut_off,) = await outbox.open_transactions()
        assert cut_off.local_id == "tx-old"
        await outbox.put(TransactionStopped(1, "tx-old", cut_off.last_meter_wh, cut_off.last_meter_at,
                                            StopReason.POWER_LOSS))
        (row,) = await store.call(store.recent_sessions, 5)
        assert row["local_id"] == "tx-old" and row["reason"] == "power_loss"
        assert row["meter_stop_wh"] - row["meter_start_wh"] == 4.0
    finally:
        await store.close()


def _fill(store: Store, count: int) -> None:
    with store.db as db:
        db.execute("BEGIN")
        db.executemany("INSERT INTO sessions (local_id, connector_id, id_tag, started_at, stopped_at, "
                       "meter_start_wh, meter_stop_wh, reason) VALUES (?, 1, 'CARD', ?, ?, 0, 1, 'Local')",
                       [(f"old-{i}", float(i), i + 0.5) for i in range(count)])


async def test_the_history_keeps_the_newest_thousand(tmp_path: Path):
    store = await Store.open(tmp_path)
    try:
        await store.call(_fill, store, 1005)
        outbox = Outbox()
        await outbox.attach(store)
        await outbox.put(TransactionStarted(1, "tx-new", IdToken("CARD"), 0.0, 5000.0))
        await outbox.put(TransactionStopped(1, "tx-new", 1.0, 5000.5, StopReason.LOCAL))
        rows = await store.call(store.recent_sessions, 2000)
        assert len(rows) == 1000 and rows[0]["local_id"] == "tx-new" and rows[-1]["local_id"] == "old-6"
    finally:
        await store.close()


async def test_a_standalone_transaction_is_recorded_but_never_queued_even_after_a_csms_is_configured(
        tmp_path: Path):
    """Without a CSMS nothing is queued; a transaction a crash left open is stopped (power loss)
    in the history after a restart with a CSMS, and still nothing goes to that CSMS. One begun
    with a CSMS keeps its messages for it while the station runs standalone."""
    store = await Store.open(tmp_path)
    try:
        await store.call(store.db.execute, "INSERT INTO cards (id_tag, name, expiry, added_at) "
                                           "VALUES ('CAR-1', 'Company car', NULL, 0)")
        outbox = Outbox()
        outbox.standalone = True
        await outbox.attach(store)
        await outbox.put(TransactionStarted(1, "tx-home", IdToken("CAR-1"), 100.0, 10.0))
        await outbox.put(TransactionStopped(1, "tx-home", 2100.0, 70.0, StopReason.LOCAL))
        await outbox.put(TransactionStarted(1, "tx-cut", IdToken("CAR-1"), 2100.0, 80.0))  # then a crash
        assert len(outbox) == 0
        assert await store.call(lambda: store.db.execute("SELECT count(*) FROM outbox").fetchone()[0]) == 0
    finally:
        await store.close()
    store = await Store.open(tmp_path)  # restarted, now with a CSMS
    try:
        outbox = Outbox()
        await outbox.attach(store)
        (cut_off,) = await outbox.open_transactions()
        assert cut_off.local_id == "tx-cut" and outbox.is_local("tx-cut")
        await outbox.put(TransactionStopped(1, "tx-cut", cut_off.last_meter_wh, cut_off.last_meter_at,
                                            StopReason.POWER_LOSS))
        assert len(outbox) == 0, "the CSMS never had this transaction: no StopTransaction for it"
        started = await outbox.put(TransactionStarted(1, "tx-csms", IdToken("CAR-1"), 2100.0, 90.0))
        assert len(outbox) == 1 and outbox.head() == started  # a transaction of the CSMS's time is queued
        rows = await store.call(store.recent_sessions, 10)
        assert [(r["local_id"], r["reason"], r["card_name"], r["standalone"]) for r in rows] == [
            ("tx-cut", "power_loss", "Company car", 1), ("tx-home", "local", "Company car", 1)]
        assert rows[1]["meter_stop_wh"] - rows[1]["meter_start_wh"] == 2000.0
        assert await store.call(lambda: store.db.execute(
            "SELECT local_id FROM transactions").fetchall()) == [("tx-csms",)]
    finally:
        await store.close()
    store = await Store.open(tmp_path)  # standalone again: the CSMS's queued start stays for it
    try:
        outbox = Outbox()
        outbox.standalone = True
        await outbox.attach(store)
        assert len(outbox) == 1 and not outbox.is_local("tx-csms")
        await outbox.put(TransactionStopped(1, "tx-csms", 2200.0, 95.0, StopReason.POWER_LOSS))
        assert [type(e.event).__name__ for e in outbox._queue] == ["TransactionStarted", "TransactionStopped"]
    finally:
        await store.close()
