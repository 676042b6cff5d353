"""The state database's migration is one event in the log: created, or upgraded to the newest."""

from __future__ import annotations

import logging
import sqlite3

from chargepoint.core.storage.store import MIGRATIONS, Store


async def test_a_new_database_logs_one_line(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="chargepoint.core.storage.store")
    store = await Store.open(tmp_path)
    await store.close()
    lines = [r.getMessage() for r in caplog.records if "schema" in r.getMessage()]
    assert lines == [f"state database {tmp_path / 'chargepoint.sqlite'} created (schema {len(MIGRATIONS)})"]
    caplog.clear()
    store = await Store.open(tmp_path)  # the newest schema already: nothing to say
    await store.close()
    assert not [r for r in caplog.records if "schema" in r.getMessage()]


async def test_an_older_database_logs_one_upgrade_line(tmp_path, caplog):
    db = sqlite3.connect(tmp_path / "chargepoint.sqlite")
    for statement in filter(str.strip, MIGRATIONS[0].split(";")):
        db.execute(statement)
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    caplog.set_level(logging.INFO, logger="chargepoint.core.storage.store")
    store = await Store.open(tmp_path)
    await store.close()
    lines = [r.getMessage() for r in caplog.records if "schema" in r.getMessage()]
    assert lines == [f"state database {tmp_path / 'chargepoint.sqlite'} upgraded from schema 1 to "
                     f"{len(MIGRATIONS)}"]
