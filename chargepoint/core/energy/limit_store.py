"""What smart charging and the operator's limit keep across a restart, in the state database.

A CSMS that installed a profile expects it in force after a power cut, under
the id it gave (it clears and replaces profiles by that id); an operator who
capped a connector expects the cap to stay. Each profile is one row: its id,
where and what it limits (for reading the rows back in order) and the whole
profile as JSON, so a field added later needs no new column. The functions
here run on the store's thread on the tables of
the store's charging-profiles migration (``Store.call`` / ``Store.submit``);
each change is one of them, in one transaction (``atomic.py``).
"""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING, Any

from chargepoint.core.energy.schedule import (
    ChargingProfile,
    Kind,
    Period,
    Purpose,
    RateUnit,
    Recurrency,
    Schedule,
)
from chargepoint.core.storage.atomic import one_transaction

if TYPE_CHECKING:
    from chargepoint.core.storage.store import Store

def encode(p: ChargingProfile) -> str:
    s = p.schedule
    return json.dumps({
        "id": p.id, "evse_id": p.evse_id, "purpose": p.purpose.value, "stack_level": p.stack_level,
        "kind": p.kind.value, "recurrency": p.recurrency.value if p.recurrency else None,
        "valid_from": p.valid_from, "valid_to": p.valid_to, "transaction_id": p.transaction_id,
        "dynamic": p.dynamic, "dynamic_pull_s": p.dynamic_pull_s,
        "schedule": {"unit": s.unit.value, "start": s.start, "duration_s": s.duration_s,
                     "min_rate": s.min_rate,
                     "periods": [[x.start_s, x.limit, x.phases] for x in s.periods]}})


def decode(text: str) -> ChargingProfile:
    d: dict[str, Any] = json.loads(text)
    s = d["schedule"]
    return ChargingProfile(
        id=int(d["id"]), evse_id=int(d["evse_id"]), purpose=Purpose(d["purpose"]),
        stack_level=int(d["stack_level"]), kind=Kind(d["kind"]),
        recurrency=Recurrency(d["recurrency"]) if d["recurrency"] else None,
        valid_from=d["valid_from"], valid_to=d["valid_to"], transaction_id=d["transaction_id"],
        dynamic=bool(d.get("dynamic", False)), dynamic_pull_s=d.get("dynamic_pull_s"),
        schedule=Schedule(unit=RateUnit(s["unit"]), start=s["start"], duration_s=s["duration_s"],
                          min_rate=s["min_rate"],
                          periods=tuple(Period(int(a), float(b), c) for a, b, c in s["periods"])))


def load_profiles(store: Store) -> list[ChargingProfile]:
    rows = store.db.execute("SELECT profile FROM charging_profiles ORDER BY id").fetchall()
    try:
        return [decode(text) for (text,) in rows]
    except (ValueError, KeyError, TypeError) as exc:
        raise sqlite3.DatabaseError(f"a stored charging profile does not decode: {exc}") from exc


def write_profiles(store: Store, delete: list[int], save: list[ChargingProfile]) -> None:
    """One change of the installed profiles (a profile replacing others, a clear of several, a
    transaction's profiles bound or discarded) in one transaction: a kill between the delete of a
    replaced profile and the insert of its successor must not leave neither."""
    with one_transaction(store) as db:
        db.executemany("DELETE FROM charging_profiles WHERE id = ?", [(i,) for i in delete])
        db.executemany(
            "INSERT INTO charging_profiles (id, evse_id, purpose, stack_level, profile) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET evse_id = excluded.evse_id, "
            "purpose = excluded.purpose, stack_level = excluded.stack_level, profile = excluded.profile",
            [(p.id, p.evse_id, p.purpose.value, p.stack_level, encode(p)) for p in save])


def load_operator_limits(store: Store) -> dict[int, float]:
    return {int(e): float(a) for e, a in store.db.execute("SELECT evse_id, amps FROM operator_limits")}


def save_operator_limits(store: Store, evse_ids: list[int], amps: float | None) -> None:
    """The operator's limit (None: cleared) on each of ``evse_ids``, as one change."""
    with one_transaction(store) as db:
        if amps is None:
            db.executemany("DELETE FROM operator_limits WHERE evse_id = ?", [(e,) for e in evse_ids])
        else:
            db.executemany("INSERT INTO operator_limits (evse_id, amps) VALUES (?, ?) "
                           "ON CONFLICT(evse_id) DO UPDATE SET amps = excluded.amps",
                           [(e, amps) for e in evse_ids])
