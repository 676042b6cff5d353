"""What must survive a power cut, in one SQLite file under the state directory.

The store owns persistence: settings the CSMS changed and connector
availability now; transactions and their messages join it. SQLite runs in WAL
mode, and every access goes through one worker thread, so the event loop never
waits on the SD card and writes happen in the order they were asked for.

The schema is versioned: ``MIGRATIONS[n]`` takes a file from version n to n+1,
so a file written by an older release is upgraded in place, never replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_NAME = "chargepoint.sqlite"
#: The state file holds the authorization key (the CSMS password) and id tags: for the
#: service user only. SQLite gives its -wal and -shm files the database file's mode.
DB_MODE = 0o600

MIGRATIONS: list[str] = [
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

#: Finished sessions kept in the history (see migration 2 -> 3).
SESSION_HISTORY = 1000


class StoreError(Exception):
    """The state file cannot be used; says which file and why."""


class Store:
    """A SQLite file reached through a single worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._db: sqlite3.Connection | None = None
        #: Why the store failed (the first read or write that did not go through), or None.
        self.failure: str | None = None
        #: Called as ``listener(reason)`` from the store's thread at the first failure.
        self.failure_listeners: list[Callable[[str], None]] = []

    # ---------------------------------------------------------- lifecycle
    @classmethod
    async def open(cls, state_dir: str | Path, *, recreate_if_corrupt: bool = False) -> Store:
        """Open (creating or upgrading) the state database.

        A file that is not a usable database stops the daemon with its path
        and the reason, unless ``recreate_if_corrupt``: then it is moved aside
        (kept for inspection) and a fresh one is started, loudly.
        """
        store = cls(Path(state_dir) / DB_NAME)
        try:
            await store.call(store._open)
        except StoreError as exc:
            if not recreate_if_corrupt or not store.path.exists():
                await store.close()
                raise
            await store.start_afresh(exc)
        return store

    async def start_afresh(self, why: StoreError) -> None:
        """Set the unusable file aside and open a new, empty one, loudly.

        The recovery ``station.recreate_corrupt_state`` asks for, whether the
        damage showed when the file was opened or only when what it holds was
        read. The file is kept for inspection together with its WAL: a fresh
        database would otherwise discard a WAL it does not recognise, and with
        it the newest transactions of the old one.
        """
        reason = _one_line(str(why).removeprefix(f"{self.path}: "))
        self.failure = None  # that was the old file's; the new one starts clean
        if self._db is not None:
            await asyncio.wrap_future(self._executor.submit(self._db.close))
            self._db = None
        try:
            aside = await self.call(_set_aside, self.path)
        except OSError as exc:
            await self.close()
            raise StoreError(f"{self.path}: unusable ({reason}), and cannot be moved aside: {exc}") from exc
        log.error("state database %s was unusable (%s); moved to %s and started afresh: queued "
                  "transaction messages, settings and local lists in it are not used",
                  self.path, reason, aside)
        try:
            await self.call(self._open)
        except StoreError:
            await self.close()
            raise

    def _open(self) -> None:
        db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _refuse_empty(self.path)
            _owner_only(self.path, create=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            for suffix in ("-wal", "-shm"):  # left by an older release, with the umask's mode
                _owner_only(self.path.with_name(self.path.name + suffix), create=False)
            # FULL: a committed transaction message survives a power cut, not
            # only a crash of the daemon; writes are few (see outbox.py).
            db.execute("PRAGMA synchronous=FULL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            _check_pages(self.path, db)
        except (OSError, sqlite3.DatabaseError, StoreError) as exc:
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(f"{self.path}: cannot open the state database: {exc}") from exc
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path}: schema version {version} is newer than this release "
                             f"understands ({len(MIGRATIONS)}); refusing to touch it")
        for target in range(version, len(MIGRATIONS)):
            with db:
                db.execute("BEGIN")
                for statement in _statements(MIGRATIONS[target]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target + 1}")
            log.info("state database %s upgraded to schema %d", self.path, target + 1)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            # Not through ``call``: a failed store is still closed.
            await asyncio.wrap_future(self._executor.submit(self._db.close))
            self._db = None
        self._executor.shutdown(wait=True)

    # ------------------------------------------------------------ access
    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on the store's thread and wait for it.

        A database or file-system failure raises StoreError (and marks the store failed).
        """
        return await asyncio.wrap_future(self._executor.submit(self._guarded, fn, *args))

    def submit(self, fn: Callable[..., object], *args: object) -> Future[object]:
        """Queue ``fn(*args)`` on the store's thread without waiting (ordered)."""
        return self._executor.submit(self._guarded, fn, *args)

    def _guarded(self, fn: Callable[..., T], *args: object) -> T:
        """Run on the store's thread; a failure to read or write is the store's failure.

        Once one write has failed nothing later may pretend to be durable: the
        first failure is kept in ``failure`` and every listener is told (from
        this thread), so the station can stop energy and the daemon exit.
        """
        if self.failure is not None:
            raise StoreError(f"{self.path}: {self.failure}")
        try:
            return fn(*args)
        except StoreError:
            raise
        except (sqlite3.Error, OSError) as exc:
            if self._db is None:  # opening: Store.open reports it (and may start afresh)
                raise StoreError(f"{self.path}: {_reason(exc)}") from exc
            self.failure = _reason(exc)
            log.error("state database %s failed: %s", self.path, self.failure)
            for listener in list(self.failure_listeners):
                try:
                    listener(self.failure)
                except Exception:
                    log.exception("a store failure listener failed")
            raise StoreError(f"{self.path}: {self.failure}") from exc

    def check_writable(self) -> None:
        """Prove that a write commits (store thread): a read-only file or file system, or a full
        disk, fails here, clearly, at start instead of in the middle of a session."""
        with self.db as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO meta (name, value) VALUES ('opened_at', ?) "
                       "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (str(time.time()),))

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("the store is not open")
        return self._db

    # ---------------------------------------------------------- settings
    def load_settings(self) -> dict[str, str]:
        return dict(self.db.execute("SELECT name, value FROM settings").fetchall())

    def save_setting(self, name: str, value: str) -> None:
        self.db.execute("INSERT INTO settings (name, value) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))

    def delete_settings(self, names: list[str]) -> None:
        """Forget stored values (``config reset``): the configuration file's apply again."""
        self.db.executemany("DELETE FROM settings WHERE name = ?", [(name,) for name in names])

    # ------------------------------------------------------ availability
    def load_availability(self) -> dict[int, bool]:
        rows = self.db.execute("SELECT connector_id, operative FROM availability").fetchall()
        return {int(c): bool(o) for c, o in rows}

    def save_availability(self, connector_id: int, operative: bool) -> None:
        self.db.execute("INSERT INTO availability (connector_id, operative) VALUES (?, ?) "
                        "ON CONFLICT(connector_id) DO UPDATE SET operative = excluded.operative",
                        (connector_id, int(operative)))


    # ------------------------------------------------------ session history
    def recent_sessions(self, limit: int) -> list[dict[str, object]]:
        """The newest finished sessions first (at most ``limit``)."""
        cursor = self.db.execute(
            "SELECT local_id, remote_id, connector_id, id_tag, started_at, stopped_at, meter_start_wh, "
            "meter_stop_wh, reason, card_name, standalone FROM sessions ORDER BY seq DESC LIMIT ?", (limit,))
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def check_integrity(self) -> str:
        """SQLite's quick check: "ok", or what is wrong."""
        rows = self.db.execute("PRAGMA quick_check").fetchall()
        return "; ".join(str(row[0]) for row in rows)

    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])


def _refuse_empty(path: Path) -> None:
    """A missing file is a new database; an existing empty one is a lost write, not a new start.

    SQLite would take a zero-length file for a new database and the daemon
    would start silently without the transactions that should be in it.
    """
    if path.exists() and path.stat().st_size == 0:
        raise StoreError(f"{path}: the state database is empty (0 bytes): its contents were lost "
                         "(an interrupted write or a full disk?)")


def _check_pages(path: Path, db: sqlite3.Connection) -> None:
    """Read every page once (``PRAGMA quick_check``) so damage shows here, with the path.

    Opening reads page 1 only: a file with corrupt pages behind it opened
    fine and failed later, wherever a table was first read. A state database
    is small (a bounded queue, a bounded history), so the check is cheap.
    """
    try:
        result = "; ".join(str(row[0]) for row in db.execute("PRAGMA quick_check").fetchall())
    except sqlite3.DatabaseError as exc:  # damage that stops the check itself
        result = str(exc)
    if result != "ok":
        raise StoreError(f"{path}: the state database is corrupt: {_one_line(result)}")


def _set_aside(path: Path) -> Path:
    """Rename ``path``, with its WAL and shared memory, to ``<name>.corrupt-<time>``; the new path."""
    stamp = int(time.time())
    aside, again = path.with_name(f"{path.name}.corrupt-{stamp}"), 1
    while aside.exists():  # set aside twice in one second: keep both
        aside, again = path.with_name(f"{path.name}.corrupt-{stamp}-{again}"), again + 1
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.rename(aside.with_name(aside.name + suffix))
    path.rename(aside)
    return aside


def _one_line(text: str, limit: int = 300) -> str:
    """SQLite's findings span lines; a log line and an error message do not."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _owner_only(path: Path, *, create: bool) -> None:
    """Make ``path`` readable and writable by its owner only (``DB_MODE``); ``create`` it so,
    never readable by others in between, if it does not exist."""
    if create:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, DB_MODE))
    try:
        os.chmod(path, DB_MODE)
    except FileNotFoundError:
        if create:
            raise


def _statements(script: str) -> list[str]:
    """Split a migration into statements; a trigger's body keeps its own semicolons."""
    statements, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        raise StoreError(f"incomplete statement in a migration: {pending.strip()[:60]}")
    return statements


def _reason(exc: BaseException) -> str:
    """A failure as a technician reads it: what is wrong with the disk, not a traceback."""
    text = str(exc) or type(exc).__name__
    if "disk is full" in text or getattr(exc, "errno", None) == 28:
        return "the disk is full: " + text
    if "readonly" in text or "read-only" in text or getattr(exc, "errno", None) == 30:
        return "the file or file system is read-only: " + text
    return text
