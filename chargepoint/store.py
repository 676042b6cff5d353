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
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

DB_NAME = "chargepoint.sqlite"

MIGRATIONS: list[str] = [
    # 0 -> 1: settings the CSMS changed, and connector availability.
    """
    CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE availability (connector_id INTEGER PRIMARY KEY, operative INTEGER NOT NULL);
    """,
]


class StoreError(Exception):
    """The state file cannot be used; says which file and why."""


class Store:
    """A SQLite file reached through a single worker thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._db: sqlite3.Connection | None = None

    # ---------------------------------------------------------- lifecycle
    @classmethod
    async def open(cls, state_dir: str | Path) -> Store:
        store = cls(Path(state_dir) / DB_NAME)
        await store.call(store._open)
        return store

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            version = db.execute("PRAGMA user_version").fetchone()[0]
        except (OSError, sqlite3.DatabaseError) as exc:
            raise StoreError(f"{self.path}: cannot open the state database: {exc}") from exc
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path}: schema version {version} is newer than this release "
                             f"understands ({len(MIGRATIONS)}); refusing to touch it")
        for target in range(version, len(MIGRATIONS)):
            with db:
                db.execute("BEGIN")
                for statement in filter(str.strip, MIGRATIONS[target].split(";")):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {target + 1}")
            log.info("state database %s upgraded to schema %d", self.path, target + 1)
        self._db = db

    async def close(self) -> None:
        if self._db is not None:
            await self.call(self._db.close)
            self._db = None
        self._executor.shutdown(wait=True)

    # ------------------------------------------------------------ access
    async def call(self, fn: Callable[..., T], *args: object) -> T:
        """Run ``fn(*args)`` on the store's thread and wait for it."""
        return await asyncio.wrap_future(self._executor.submit(fn, *args))

    def submit(self, fn: Callable[..., object], *args: object) -> Future[object]:
        """Queue ``fn(*args)`` on the store's thread without waiting (ordered)."""
        future = self._executor.submit(fn, *args)
        future.add_done_callback(_log_failure)
        return future

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

    # ------------------------------------------------------ availability
    def load_availability(self) -> dict[int, bool]:
        rows = self.db.execute("SELECT connector_id, operative FROM availability").fetchall()
        return {int(c): bool(o) for c, o in rows}

    def save_availability(self, connector_id: int, operative: bool) -> None:
        self.db.execute("INSERT INTO availability (connector_id, operative) VALUES (?, ?) "
                        "ON CONFLICT(connector_id) DO UPDATE SET operative = excluded.operative",
                        (connector_id, int(operative)))


def _log_failure(future: Future[object]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("state database write failed", exc_info=future.exception())
