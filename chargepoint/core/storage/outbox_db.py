"""The outbox's work in the state database (each function runs on the store's thread).

The queue of transaction messages and the rows of the transactions they
belong to change together, in one database transaction per event, so a kill
at any instant leaves the two agreeing. See ``outbox.py`` for what is written
when, and how durably.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from chargepoint.core.events import (
    IdToken,
    MeterSample,
    TokenType,
    TransactionAuthorized,
    TransactionEvent,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.storage.outbox_codec import Sent, encode
from chargepoint.core.storage.store import Store

#: ``transactions.id_tag`` of a transaction begun before anyone was authorized (the column is
#: NOT NULL, and no identifier is empty): replaced by the identifier when one comes.
NO_TOKEN = ""


@dataclass(frozen=True)
class OpenTransaction:
    """A transaction the database shows as running: after a restart, it was cut off."""

    local_id: str
    evse_id: int
    #: None: it began before anyone was authorized, and no identifier came yet.
    token: IdToken | None
    meter_start_wh: float
    started_at: float
    last_meter_wh: float
    last_meter_at: float
    #: The remote start request it answers, if one began it (see ``TransactionStarted``).
    remote_start_id: int | None = None


def load_rows(store: Store) -> tuple[list[tuple[int, str]], dict[str, str]]:
    """The queue and the id mapping; ``sqlite3.DatabaseError`` if the file is damaged."""
    rows = store.db.execute("SELECT seq, event FROM outbox ORDER BY seq").fetchall()
    ids = {local: str(remote) for local, remote in store.db.execute(
        "SELECT local_id, remote_id FROM transactions WHERE remote_id IS NOT NULL")}
    return rows, ids


def load_answered(store: Store) -> dict[str, int]:
    return {local: int(count) for local, count in store.db.execute(
        "SELECT local_id, answered FROM transactions WHERE answered > 0")}


def next_seq(store: Store) -> int:
    row = store.db.execute("SELECT value FROM meta WHERE name = 'outbox_seq'").fetchone()
    return int(row[0]) + 1 if row else 1


def write_put(store: Store, seq: int, event: TransactionEvent, thinned: int | None,
              sent: Sent | None = None) -> None:
    """A new message (with its wire form when it was made at once: see ``Outbox.attach_sender``)."""
    db = store.db
    with db:
        db.execute("BEGIN")
        db.execute("INSERT INTO outbox (seq, local_id, kind, event) VALUES (?, ?, ?, ?)",
                   (seq, event.local_id, type(event).__name__, encode(event, sent)))
        db.execute("INSERT INTO meta (name, value) VALUES ('outbox_seq', ?) "
                   "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (str(seq),))
        if thinned is not None:
            db.execute("DELETE FROM outbox WHERE seq = ?", (thinned,))
        record(db, event, standalone=False)


def record(db: sqlite3.Connection, event: TransactionEvent, *, standalone: bool) -> None:
    """What an event changes in its transaction's row (inside the caller's database transaction).

    The card's name is taken from the station's cards when the transaction begins (or, begun
    without an identifier, when one comes: ``NO_TOKEN`` until then), so the history keeps it even
    if the card is removed later.
    """
    if isinstance(event, TransactionStarted):
        value = event.token.value if event.token else NO_TOKEN
        db.execute("INSERT INTO transactions (local_id, connector_id, id_tag, token_type, "
                   "meter_start_wh, started_at, last_meter_wh, last_meter_at, open, standalone, card_name, "
                   "remote_start_id) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1, ?, (SELECT name FROM cards WHERE id_tag = ?), ?)",
                   (event.local_id, event.evse_id, value, event.token.type.value if event.token else None,
                    event.meter_start_wh, event.timestamp, event.meter_start_wh, event.timestamp,
                    int(standalone), value, event.remote_start_id))
        if event.reservation_id is not None:  # used up by this start: gone with it, or kept without it
            db.execute("DELETE FROM reservations WHERE id = ?", (event.reservation_id,))
    elif isinstance(event, TransactionAuthorized) and event.authorized and event.token is not None:
        db.execute("UPDATE transactions SET id_tag = ?, token_type = ?, remote_start_id = "
                   "coalesce(?, remote_start_id), card_name = (SELECT name FROM cards WHERE id_tag = ?) "
                   "WHERE local_id = ? AND id_tag = ?",
                   (event.token.value, event.token.type.value, event.remote_start_id, event.token.value,
                    event.local_id, NO_TOKEN))
    elif isinstance(event, MeterSample):
        db.execute("UPDATE transactions SET last_meter_wh = ?, last_meter_at = ? WHERE local_id = ?",
                   (event.reading.energy_import_wh, event.reading.timestamp, event.local_id))
    elif isinstance(event, TransactionStopped):
        db.execute("UPDATE transactions SET open = 0, last_meter_wh = ?, last_meter_at = ?, stop_reason = ? "
                   "WHERE local_id = ?", (event.meter_stop_wh, event.timestamp, event.reason.value,
                                          event.local_id))


def write_local(store: Store, event: TransactionEvent) -> None:
    """A standalone transaction's event: its row changes (a stop writes the history through the
    trigger, then the row goes: nothing is left to deliver)."""
    db = store.db
    with db:
        db.execute("BEGIN")
        record(db, event, standalone=True)
        if isinstance(event, TransactionStopped):
            db.execute("DELETE FROM transactions WHERE local_id = ? AND open = 0", (event.local_id,))


def local_only(store: Store) -> set[str]:
    return {row[0] for row in store.db.execute(
        "SELECT local_id FROM transactions WHERE open = 1 AND standalone = 1")}


def write_ack(store: Store, seq: int, local_id: str, remote_id: str | None, finished: str | None,
              following: tuple[int, Sent] | None = None) -> None:
    """One answered message leaves the queue; ``following``: the next message and its wire form, made
    now and stored in this write (it costs no write of its own). Committed without a flush to the card
    (synchronous=NORMAL, WAL): durable against a killed process, one write per message."""
    db = store.db
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        with db:
            db.execute("BEGIN")
            db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
            if following is not None:
                _add_sent(db, *following)
            db.execute("UPDATE transactions SET answered = answered + 1 WHERE local_id = ?", (local_id,))
            if remote_id is not None:
                db.execute("UPDATE transactions SET remote_id = ? WHERE local_id = ?", (remote_id, local_id))
            if finished is not None:
                db.execute("DELETE FROM transactions WHERE local_id = ? AND open = 0 AND NOT EXISTS "
                           "(SELECT 1 FROM outbox WHERE outbox.local_id = ?)", (finished, finished))
    finally:
        db.execute("PRAGMA synchronous=FULL")


def write_sent(store: Store, seq: int, sent: Sent) -> None:
    """A message's row with its wire form, before its first send; as durable as an acknowledgement."""
    db = store.db
    db.execute("PRAGMA synchronous=NORMAL")
    try:
        with db:
            db.execute("BEGIN")
            _add_sent(db, seq, sent)
    finally:
        db.execute("PRAGMA synchronous=FULL")


def _add_sent(db: sqlite3.Connection, seq: int, sent: Sent) -> None:
    """Add a wire form to a stored message without decoding and encoding the row again (a
    backlog drains one such write per message). The row is a JSON object (``encode``); the form
    goes in as its last member, and a later member wins over an earlier one of the same name."""
    member = json.dumps({"form": sent.form, "action": sent.action, "payload": sent.payload},
                        separators=(",", ":"))
    db.execute("UPDATE outbox SET event = substr(event, 1, length(event) - 1) || ? "
               "WHERE seq = ? AND substr(event, -1) = '}'", (f',"sent":{member}}}', seq))


def open_transactions(store: Store) -> list[OpenTransaction]:
    rows = store.db.execute(
        "SELECT local_id, connector_id, id_tag, token_type, meter_start_wh, started_at, last_meter_wh, "
        "last_meter_at, remote_start_id FROM transactions WHERE open = 1 ORDER BY started_at").fetchall()
    return [OpenTransaction(local_id, evse_id, _stored_token(value, kind), *rest)
            for local_id, evse_id, value, kind, *rest in rows]


def _stored_token(value: str, kind: str | None) -> IdToken | None:
    """A transaction row's identifier (rows of earlier releases have no kind: a card's)."""
    return None if value == NO_TOKEN else IdToken(value, TokenType.parse(kind or "iso14443"))

