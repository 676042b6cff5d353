"""What must survive a power cut, in one SQLite file under the state directory.

The store owns persistence: settings the CSMS changed and connector
availability now; transactions and their messages join it. SQLite runs in WAL
mode, and every access goes through one worker thread, so the event loop never
waits on the SD card and writes happen in the order they were asked for.

The schema and its migrations are in :mod:`chargepoint.core.storage.schema`; the
files' modes, owners and free space in :mod:`chargepoint.core.storage.store_files`.
A file that cannot be used is refused with one line naming it and the reason
(``StoreError``); one whose contents are damaged (``StoreError.damaged``: corrupt
pages, not a database, another program's, a newer release's) is moved aside
for a fresh one when the configuration asks for it. A full disk, a read-only
or unreadable file is never damage: recreating would not help.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from chargepoint.core.storage import schema
from chargepoint.core.storage.schema import MIGRATIONS, SESSION_HISTORY, SchemaError
from chargepoint.core.storage.store_files import (
    DB_MODE,
    adopt_companions,
    is_damage,
    one_line,
    owner_only,
    reason,
    refuse_empty,
    set_aside,
    space_problem,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_NAME = "chargepoint.sqlite"

__all__ = ["DB_MODE", "DB_NAME", "MIGRATIONS", "SESSION_HISTORY", "Store", "StoreError"]


class StoreError(Exception):
    """The state file cannot be used; says which file and why.

    ``damaged``: the file's contents are the problem (and setting it aside for
    a fresh one would help), not the disk, a permission or a lock.
    """

    def __init__(self, message: str, *, damaged: bool = False) -> None:
        super().__init__(message)
        self.damaged = damaged


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
        and the reason, unless it is damaged and ``recreate_if_corrupt``: then
        it is moved aside (kept for inspection) and a fresh one is started, loudly.
        """
        store = cls(Path(state_dir) / DB_NAME)
        try:
            await store.call(store._open)
        except StoreError as exc:
            if not recreate_if_corrupt or not exc.damaged or not store.path.exists():
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
        why_text = one_line(str(why).removeprefix(f"{self.path}: "))
        self.failure = None  # that was the old file's; the new one starts clean
        if self._db is not None:
            await asyncio.wrap_future(self._executor.submit(self._db.close))
            self._db = None
        try:
            aside = await self.call(set_aside, self.path)
        except (OSError, StoreError) as exc:
            await self.close()
            raise StoreError(f"{self.path}: unusable ({why_text}), and cannot be moved aside: "
                             f"{str(exc).removeprefix(f'{self.path}: ')}") from exc
        log.error("state database %s was unusable (%s); moved to %s and started afresh: queued "
                  "transaction messages, settings and local lists in it are not used",
                  self.path, why_text, aside)
        try:
            await self.call(self._open)
        except StoreError:
            await self.close()
            raise

    def _open(self) -> None:
        """Identify, check, then switch to WAL and migrate (store thread).

        Nothing is written to the file before it is known to be ours and sound,
        so a refused file is left exactly as it was. Every failure is a
        ``StoreError`` in one line with the path: SQLite's message about a
        damaged schema may not even be text (``UnicodeDecodeError``).
        """
        db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            empty = refuse_empty(self.path)
            if empty is not None:
                raise StoreError(f"{self.path}: {empty}", damaged=True)
            owner_only(self.path, create=True)
            adopt_companions(self.path)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            try:
                version = schema.identify(db)
            except SchemaError as exc:
                raise StoreError(f"{self.path}: {exc}", damaged=True) from exc
            _check_pages(self.path, db)
            db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed transaction message survives a power cut, not
            # only a crash of the daemon; writes are few (see outbox.py).
            db.execute("PRAGMA synchronous=FULL")
            schema.migrate(db, version, self._migrated)
        except (OSError, sqlite3.Error, ValueError, StoreError) as exc:
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            if isinstance(exc, StoreError):
                raise
            damaged = is_damage(exc)
            why = (None if damaged else space_problem(self.path.parent)) or reason(exc)
            raise StoreError(f"{self.path}: cannot open the state database: {why}", damaged=damaged) from exc
        self._db = db

    def _migrated(self, version: int, newest: int) -> None:
        """One log line for the migration: a new file is created, an older one upgraded."""
        if version == 0:
            log.info("state database %s created (schema %d)", self.path, newest)
        else:
            log.info("state database %s upgraded from schema %d to %d", self.path, version, newest)

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
        except (sqlite3.Error, OSError, UnicodeError) as exc:
            if self._db is None:  # opening: Store.open reports it (and may start afresh)
                raise StoreError(f"{self.path}: {reason(exc)}", damaged=is_damage(exc)) from exc
            self.failure = reason(exc)
            log.error("state database %s failed: %s", self.path, self.failure)
            for listener in list(self.failure_listeners):
                try:
                    listener(self.failure)
                except Exception:
                    log.exception("a store failure listener failed")
            raise StoreError(f"{self.path}: {self.failure}") from exc

    def check_writable(self) -> None:
        """Prove that a write commits (store thread): a read-only file or file system, or a full
        disk, fails here, clearly, at start instead of in the middle of a session.

        The write alone does not prove a full disk: SQLite reuses the space its
        WAL already has, so the first write that needs more would fail later,
        once the CSMS is connected. So the free space is checked first.
        """
        full = space_problem(self.path.parent)
        if full is not None:
            raise StoreError(f"{self.path}: {full}")
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


def _check_pages(path: Path, db: sqlite3.Connection) -> None:
    """Read every page once (``PRAGMA quick_check``) so damage shows here, with the path.

    Opening reads page 1 only: a file with corrupt pages behind it opened
    fine and failed later, wherever a table was first read. A state database
    is small (a bounded queue, a bounded history), so the check is cheap.
    """
    try:
        result = "; ".join(str(row[0]) for row in db.execute("PRAGMA quick_check").fetchall())
    except (sqlite3.DatabaseError, UnicodeError) as exc:  # damage that stops the check itself
        if not is_damage(exc):
            raise  # the disk, not the file: never set aside for it
        result = reason(exc)
    if result != "ok":
        raise StoreError(f"{path}: the state database is corrupt: {one_line(result)}", damaged=True)


# ------------------------------------------------ the meta table (store thread)
def meta_get(store: Store, name: str) -> str | None:
    """A value the station keeps under ``name`` in the meta table (a mode, a JSON document), or None."""
    row = store.db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else str(row[0])


def meta_set(store: Store, name: str, value: str) -> None:
    """Keep ``value`` under ``name`` in the meta table, replacing what was there."""
    store.db.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                     "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))
