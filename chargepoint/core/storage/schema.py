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

#: ``PRAGMA application_id`` of a chargepoint state database ("CPst"): set from schema 10 on,
#: it tells our file from another SQLite file at the first read of its header.
APPLICATION_ID = int.from_bytes(b"CPst", "big")

#: Finished sessions kept in the history (see migration 2 -> 3).
SESSION_HISTORY = 1000


class SchemaError(Exception):
    """The file is not a state database this release can use; the text says why."""


#: The triggers on ``transactions`` as migrations 2 -> 3 and 6 -> 7 made them: the id rebuild of
#: migration 9 -> 10 drops them with the table and makes them again, unchanged.
_SESSIONS_ON_STOP = """
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
"""

_SESSIONS_REMOTE_ID = """
    CREATE TRIGGER sessions_remote_id AFTER UPDATE OF remote_id ON transactions
    WHEN new.remote_id IS NOT NULL
    BEGIN
        UPDATE sessions SET remote_id = new.remote_id WHERE local_id = new.local_id;
    END;
"""

#: The two tables that hold transaction ids, as migration 9 -> 10 makes them (ids TEXT).
_ID_TABLES = {
    "transactions": """
        CREATE TABLE transactions (
            local_id TEXT PRIMARY KEY, connector_id INTEGER NOT NULL, id_tag TEXT NOT NULL,
            meter_start_wh REAL NOT NULL, started_at REAL NOT NULL, remote_id TEXT,
            last_meter_wh REAL NOT NULL, last_meter_at REAL NOT NULL, open INTEGER NOT NULL,
            token_type TEXT, standalone INTEGER NOT NULL DEFAULT 0, card_name TEXT, stop_reason TEXT,
            answered INTEGER NOT NULL DEFAULT 0)
    """,
    "sessions": """
        CREATE TABLE sessions (seq INTEGER PRIMARY KEY, local_id TEXT NOT NULL UNIQUE, remote_id TEXT,
            connector_id INTEGER NOT NULL, id_tag TEXT NOT NULL, started_at REAL NOT NULL,
            stopped_at REAL NOT NULL, meter_start_wh REAL NOT NULL, meter_stop_wh REAL NOT NULL,
            reason TEXT, standalone INTEGER NOT NULL DEFAULT 0, card_name TEXT)
    """,
}

_ID_COLUMNS = {
    "transactions": "local_id, connector_id, id_tag, meter_start_wh, started_at, remote_id, last_meter_wh, "
                    "last_meter_at, open, token_type, standalone, card_name, stop_reason, answered",
    "sessions": "seq, local_id, remote_id, connector_id, id_tag, started_at, stopped_at, meter_start_wh, "
                "meter_stop_wh, reason, standalone, card_name",
}


def _ids_as_text(db: sqlite3.Connection) -> None:
    """9 -> 10: transaction ids are text, as the CSMS and the station wrote them.

    ``remote_id INTEGER`` gave the column numeric affinity: an id that reads as
    a number was converted (``827303e10063`` became the real number inf,
    ``00123`` the integer 123), and came back as a different id. Both tables are
    rebuilt with ``remote_id TEXT`` (SQLite cannot change a column's type), and
    each converted value is repaired from where its text is still kept:
    a station-made id (OCPP 2.0.1) is the transaction's local id, kept as text in
    the row itself (and in its queued messages); an integer the CSMS gave
    (OCPP 1.6) converts back exactly. What cannot be recovered is named in the log.
    """
    db.execute("CREATE TEMP TABLE id_affinity (value INTEGER)")
    repaired: dict[str, list[tuple[str, str]]] = {}
    for table in _ID_TABLES:
        rows = db.execute(f"SELECT local_id, remote_id FROM {table} "  # noqa: S608 (our table names)
                          "WHERE remote_id IS NOT NULL AND typeof(remote_id) != 'text'").fetchall()
        repaired[table] = [(local_id, _original_id(db, table, local_id, value)) for local_id, value in rows]
    db.execute("DROP TABLE temp.id_affinity")
    db.execute("DROP TRIGGER sessions_on_stop")
    db.execute("DROP TRIGGER sessions_remote_id")
    for table, create in _ID_TABLES.items():
        columns = _ID_COLUMNS[table]
        db.execute(create.replace(f"CREATE TABLE {table} ", f"CREATE TABLE {table}_text "))
        db.execute(f"INSERT INTO {table}_text ({columns}) SELECT {columns} FROM {table}")  # noqa: S608
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_text RENAME TO {table}")
        db.executemany(f"UPDATE {table} SET remote_id = ? WHERE local_id = ?",  # noqa: S608
                       [(text, local_id) for local_id, text in repaired[table]])
    db.execute(_SESSIONS_ON_STOP)
    db.execute(_SESSIONS_REMOTE_ID)
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    count = sum(len(rows) for rows in repaired.values())
    if count:
        log.warning("state database: %d transaction id(s) stored as numbers restored as text", count)


def _original_id(db: sqlite3.Connection, table: str, local_id: str, value: int | float) -> str:
    """The text a converted id was written as (see ``_ids_as_text``)."""
    db.execute("DELETE FROM temp.id_affinity")
    db.execute("INSERT INTO temp.id_affinity (value) VALUES (?)", (local_id,))
    as_stored = db.execute("SELECT value FROM temp.id_affinity").fetchone()[0]
    if type(as_stored) is type(value) and as_stored == value:
        return local_id  # the station made the id: the same text, converted the same way
    if isinstance(value, int):
        return str(value)  # the CSMS's integer: exact
    text = repr(value)
    log.warning("state database: transaction %s (%s) has a CSMS id stored as the number %s; its "
                "original text is kept nowhere, so it stays %r", local_id, table, text, text)
    return text


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
    # 9 -> 10: transaction ids as text, converted ones repaired; the file marked as ours.
    _ids_as_text,
    # 10 -> 11: the operator's display messages (display_messages.py); times in epoch seconds, the
    # display the operator named as JSON, ``seq`` the order they were set in.
    """
    CREATE TABLE display_messages (id INTEGER PRIMARY KEY, priority TEXT NOT NULL, content TEXT NOT NULL,
        format TEXT NOT NULL, language TEXT, state TEXT, start_at REAL, end_at REAL, transaction_id TEXT,
        display TEXT, seq INTEGER NOT NULL);
    """,
    # 11 -> 12: the remote start request a transaction answers (its id, when the operator's protocol
    # gives one): a transaction resumed or reported after a restart still names the request.
    """
    ALTER TABLE transactions ADD COLUMN remote_start_id INTEGER;
    """,
]


def migrate(db: sqlite3.Connection, version: int, on_done: Callable[[int, int], None]) -> None:
    """Take the file from ``version`` to the newest schema, one database transaction a step.

    ``on_done(version, newest)`` once after the last step, if there was one: a new
    file is one event for the log (created), not one line per step it took.
    """
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
    if version < len(MIGRATIONS):
        on_done(version, len(MIGRATIONS))


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
