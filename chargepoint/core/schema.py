"""The state database's schema: its migrations, and how a file is recognised as one of ours.

The schema is versioned (``PRAGMA user_version``): ``MIGRATIONS[n]`` takes a
file from version n to n+1, so a file written by an older release is upgraded
in place, never replaced. A migration is SQL text, or a function of the
connection where SQL alone cannot say it (repairing values row by row).

Before anything is written to a file it is identified (``identify``): a file
of another program, one whose tables are not those its version promises, or
one from a newer release is refused with the reason, untouched. Only then
does the store switch the file to WAL and migrate it.
"""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable

log = logging.getLogger(__name__)

Migration = str | Callable[[sqlite3.Connection], None]

#: ``PRAGMA application_id`` of a chargepoint state database ("CPst"): accepted (beside 0, which
#: every file before it has), so a file carrying another program's id is told apart at once.
APPLICATION_ID = int.from_bytes(b"CPst", "big")

#: Finished sessions kept in the history (see migration 2 -> 3).
SESSION_HISTORY = 1000


class SchemaError(Exception):
    """The file is not a state database this release can use; the text says why."""


MIGRATIONS: list[Migration] = [
    # 0 -> 1: settings the CSMS changed, and connector availability.
    """
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE availability (connector_id INTEGER PRIMARY KEY, operative INTEGER NOT NULL);
    """,
    # 1 -> 2: transactions, the queue of their messages, local authorization.
    """
    CREATE TABLE transactions (
        local_id TEXT PRIMARY KEY, connector_id INTEGER NOT NULL, id_tag TEXT NOT NULL,
        meter_start_wh REAL NOT NULL, started_at REAL NOT NULL, remote_id INTEGER,
        last_meter_wh REAL NOT NULL, last_meter_at REAL NOT NULL, open INTEGER NOT NULL);
    CREATE TABLE outbox (seq INTEGER PRIMARY KEY, local_id TEXT NOT NULL, kind TEXT NOT NULL,
        event TEXT NOT NULL);
    CREATE TABLE auth_list (id_tag TEXT PRIMARY KEY, status TEXT NOT NULL, expiry REAL,
        parent_id_tag TEXT);
    CREATE TABLE auth_cache (id_tag TEXT PRIMARY KEY, status TEXT NOT NULL, expiry REAL,
        parent_id_tag TEXT, updated_at REAL NOT NULL);
    CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    """,
    # 2 -> 3: the history of finished sessions, for `chargepoint sessions`. A trigger
    # writes a row in the same database transaction that marks a transaction stopped
    # (a local stop or a PowerLoss stop after a restart), so the history needs no
    # second write path; the stop reason comes from the queued StopTransaction. The
    # newest SESSION_HISTORY rows are kept. json() fails here, at upgrade time, if
    # this SQLite lacks the JSON functions the trigger uses.
    """
    SELECT json('{}');
    CREATE TABLE sessions (seq INTEGER PRIMARY KEY, local_id TEXT NOT NULL UNIQUE, remote_id INTEGER,
        connector_id INTEGER NOT NULL, id_tag TEXT NOT NULL, started_at REAL NOT NULL,
        stopped_at REAL NOT NULL, meter_start_wh REAL NOT NULL, meter_stop_wh REAL NOT NULL,
        reason TEXT);
    CREATE TRIGGER sessions_on_stop AFTER UPDATE OF open ON transactions
    WHEN old.open = 1 AND new.open = 0
    BEGIN
        INSERT OR REPLACE INTO sessions (local_id, remote_id, connector_id, id_tag, started_at,
            stopped_at, meter_start_wh, meter_stop_wh, reason)
        VALUES (new.local_id, new.remote_id, new.connector_id, new.id_tag, new.started_at,
            new.last_meter_at, new.meter_start_wh, new.last_meter_wh,
            (SELECT json_extract(event, '$.reason') FROM outbox WHERE local_id = new.local_id
             AND kind = 'TransactionStopped' ORDER BY seq DESC LIMIT 1));
        DELETE FROM sessions WHERE seq <= (SELECT max(seq) FROM sessions) - 1000;
    END;
    CREATE TRIGGER sessions_remote_id AFTER UPDATE OF remote_id ON transactions
    WHEN new.remote_id IS NOT NULL
    BEGIN
        UPDATE sessions SET remote_id = new.remote_id WHERE local_id = new.local_id;
    END;
    """,
    # 3 -> 4: the kind of identifier that started a transaction (a card, a central or a
    # station-made one); earlier rows have none and read as a card. ``connector_id`` in
    # these tables is the EVSE id (one connector per EVSE).
    """
    ALTER TABLE transactions ADD COLUMN token_type TEXT;
    """,
    # 4 -> 5: charging profiles the CSMS installed (the whole profile as JSON) and the
    # operator's own limit per EVSE (see limit_store.py).
    """
    CREATE TABLE charging_profiles (id INTEGER PRIMARY KEY, evse_id INTEGER NOT NULL,
        purpose TEXT NOT NULL, stack_level INTEGER NOT NULL, profile TEXT NOT NULL);
    CREATE TABLE operator_limits (evse_id INTEGER PRIMARY KEY, amps REAL NOT NULL);
    """,
    # 5 -> 6: reservations (reservations.py); no evse_id: any connector.
    """
    CREATE TABLE reservations (id INTEGER PRIMARY KEY, evse_id INTEGER, id_tag TEXT NOT NULL,
        token_type TEXT NOT NULL, expiry REAL NOT NULL, group_id TEXT, connector_type TEXT);
    """,
    # 6 -> 7: standalone operation (see core/cards.py). The station owner's cards (the OCPP
    # local list stays the CSMS's); a transaction made without a CSMS is marked ``standalone``
    # (its messages are never queued for one); the history keeps the card's name and the
    # mark, and takes the stop reason from the transaction row (a standalone stop queues
    # nothing to read it from).
    """
    CREATE TABLE cards (id_tag TEXT PRIMARY KEY, name TEXT NOT NULL, expiry REAL, added_at REAL NOT NULL);
    ALTER TABLE transactions ADD COLUMN standalone INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE transactions ADD COLUMN card_name TEXT;
    ALTER TABLE transactions ADD COLUMN stop_reason TEXT;
    ALTER TABLE sessions ADD COLUMN standalone INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN card_name TEXT;
    DROP TRIGGER sessions_on_stop;
    CREATE TRIGGER sessions_on_stop AFTER UPDATE OF open ON transactions
    WHEN old.open = 1 AND new.open = 0
    BEGIN
        INSERT OR REPLACE INTO sessions (local_id, remote_id, connector_id, id_tag, started_at,
            stopped_at, meter_start_wh, meter_stop_wh, reason, standalone, card_name)
        VALUES (new.local_id, new.remote_id, new.connector_id, new.id_tag, new.started_at,
            new.last_meter_at, new.meter_start_wh, new.last_meter_wh,
            coalesce(new.stop_reason, (SELECT json_extract(event, '$.reason') FROM outbox
             WHERE local_id = new.local_id AND kind = 'TransactionStopped' ORDER BY seq DESC LIMIT 1)),
            new.standalone, new.card_name);
        DELETE FROM sessions WHERE seq <= (SELECT max(seq) FROM sessions) - 1000;
    END;
    """,
    # 7 -> 8: the security log (security_log.py): events with the moment they happened, kept
    # bounded there; ``sent`` until the CSMS has acknowledged the event's notification.
    """
    CREATE TABLE security_log (seq INTEGER PRIMARY KEY, at REAL NOT NULL, kind TEXT NOT NULL,
        info TEXT NOT NULL, sent INTEGER NOT NULL);
    CREATE INDEX security_log_unsent ON security_log (sent);
    """,
    # 8 -> 9: how many messages of each transaction the CSMS has answered, so a version
    # that numbers them (2.0.1 seqNo) continues without gaps after a restart.
    """
    ALTER TABLE transactions ADD COLUMN answered INTEGER NOT NULL DEFAULT 0;
    """,
]


def migrate(db: sqlite3.Connection, version: int, on_step: Callable[[int], None]) -> None:
    """Take the file from ``version`` to the newest schema, one database transaction a step."""
    for target in range(version, len(MIGRATIONS)):
        step = MIGRATIONS[target]
        with db:
            db.execute("BEGIN")
            if isinstance(step, str):
                for statement in statements(step):
                    db.execute(statement)
            else:
                step(db)
            db.execute(f"PRAGMA user_version = {target + 1}")
        on_step(target + 1)


def tables_at(version: int) -> set[str]:
    """The tables a file of schema ``version`` has (migrations only ever add tables)."""
    tables: set[str] = set()
    for step in MIGRATIONS[:version]:
        if isinstance(step, str):
            tables.update(re.findall(r"CREATE TABLE (\w+)", step))
    return tables


def identify(db: sqlite3.Connection) -> int:
    """The schema version of a file that is ours (0: a new, empty file); ``SchemaError`` if not.

    Reads the header and the schema only, and writes nothing: a refused file is
    left as it was. ``sqlite3.DatabaseError`` (or ``UnicodeDecodeError`` when
    SQLite's own message quotes damaged bytes) if the schema cannot be read.
    """
    application_id = db.execute("PRAGMA application_id").fetchone()[0]
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
    if application_id not in (0, APPLICATION_ID):
        raise SchemaError(f"not a chargepoint state database: another program's SQLite file "
                          f"(application id {application_id:#010x})")
    if version == 0:
        if tables:
            raise SchemaError("not a chargepoint state database: an SQLite file without a schema "
                              f"version, holding the tables {', '.join(sorted(tables)[:8])}")
        return 0
    if version > len(MIGRATIONS):
        raise SchemaError(f"schema version {version} is newer than this release understands "
                          f"({len(MIGRATIONS)}); refusing to touch it")
    missing = tables_at(version) - tables
    if missing:
        raise SchemaError(f"not a chargepoint state database, or a damaged one: schema version {version} "
                          f"without the tables {', '.join(sorted(missing))}")
    return int(version)


def statements(script: str) -> list[str]:
    """Split a migration into statements; a trigger's body keeps its own semicolons."""
    out, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                out.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        raise SchemaError(f"incomplete statement in a migration: {pending.strip()[:60]}")
    return out
