"""One logical change of the state database: all of its rows, or none, whatever instant a kill comes.

The store's connection commits every statement on its own (autocommit), so a
change that writes two rows would be seen half-done after a kill between them:
a charging profile that replaces another is a delete and an insert, and with a
commit in between a kill left neither, so an 8 A station maximum vanished and
the station offered its full rating after the power came back. Each change
that must not be seen half-done is therefore one function, run on the store's
thread (``Store.call`` / ``Store.submit``), whose statements all sit inside
``one_transaction``: SQLite's journal keeps the old rows until the commit, and
a kill before it leaves the database as it was before the change.

The changes of availability and of stored settings that touch several rows are
here too; each other module keeps its own (``limit_store``, ``reservations``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chargepoint.core.storage.store import Store


@contextmanager
def one_transaction(store: Store) -> Iterator[sqlite3.Connection]:
    """On the store's thread: the statements run inside commit together, or (on an error, or a kill
    before the commit) not at all."""
    with store.db as db:
        db.execute("BEGIN IMMEDIATE")
        yield db


def save_availability(store: Store, changes: Mapping[int, bool]) -> None:
    """Keep the availability of several connectors (the whole station made operative or not) as one
    change: after a restart either all of them are as asked or all as before."""
    with one_transaction(store):
        for connector_id, operative in changes.items():
            store.save_availability(connector_id, operative)


def forget_settings(store: Store, names: list[str]) -> None:
    """Forget a setting's stored value under each of its names (``config reset``: its neutral name
    and a version's key an earlier release stored it under) as one change, so no older name's value
    comes back after a restart."""
    with one_transaction(store):
        store.delete_settings(names)
