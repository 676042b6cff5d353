"""The outbox on a real SQLite file with transactions begun before anyone was authorized.

Such a start is queued and kept with no identifier; the identifier presented later
is queued after it and fills in the transaction's row, so a run after a crash knows
who charges (or still waits for one). Rows and queued messages written by earlier
releases (no start point, always an identifier) read as before.
"""

from __future__ import annotations

import json
import sqlite3

from chargepoint.core.events import (
    Activity,
    ActivityChanged,
    IdToken,
    StopReason,
    TokenType,
    TransactionAuthorized,
    TransactionStarted,
    TransactionStopped,
    TxPoint,
)
from chargepoint.core.storage.outbox import decode, encode
from tests.unit.test_outbox_store import reopen

CARD = IdToken("CAFE01", TokenType.ISO14443)


def test_the_new_events_and_fields_round_trip_through_json():
    for event in (TransactionStarted(1, "L1", None, 10.0, 1.0, point=TxPoint.EV_CONNECTED),
                  TransactionStarted(1, "L2", CARD, 10.0, 1.0, point=TxPoint.AUTHORIZED, plugged=False),
                  TransactionAuthorized(1, "L1", CARD, True, 2.0),
                  TransactionAuthorized(1, "L1", CARD, True, 3.0, remote_start_id=5, remote=True),
                  TransactionAuthorized(1, "L1", None, False, 3.5, remote=True),
                  ActivityChanged(1, "L1", Activity.CHARGING, True, 4.0, ev_arrived=True)):
        assert decode(encode(event)) == event


def test_a_start_and_a_change_queued_by_an_earlier_release_read_as_before():
    start = '{"type":"TransactionStarted","evse_id":1,"local_id":"L1",' \
            '"token":{"value":"TAG","type":"iso14443"},"meter_start_wh":10.0,"timestamp":1.0,' \
            '"connector_id":1,"reservation_id":null,"remote_start_id":null}'
    changed = '{"type":"ActivityChanged","evse_id":1,"local_id":"L1","activity":"charging","plugged":true,' \
              '"timestamp":2.0,"connector_id":1}'
    assert decode(start) == TransactionStarted(1, "L1", IdToken("TAG"), 10.0, 1.0)
    assert decode(start).point is None and decode(start).plugged is True
    assert decode(changed) == ActivityChanged(1, "L1", Activity.CHARGING, True, 2.0)


async def test_a_transaction_without_an_identifier_survives_a_restart_and_gets_one(tmp_path):
    store, box = await reopen(tmp_path)
    started = TransactionStarted(1, "L1", None, 100.0, 1.0, point=TxPoint.EV_CONNECTED)
    await box.put(started)
    await store.close()

    store, box = await reopen(tmp_path)
    assert [e.event for e in box._queue] == [started]
    [cut] = await box.open_transactions()
    assert cut.token is None and cut.local_id == "L1"
    await box.put(TransactionAuthorized(1, "L1", CARD, True, 5.0, remote_start_id=9))
    await store.close()

    store, box = await reopen(tmp_path)
    [cut] = await box.open_transactions()
    assert (cut.token, cut.remote_start_id) == (CARD, 9)
    assert [type(e.event).__name__ for e in box._queue] == ["TransactionStarted", "TransactionAuthorized"]
    await box.put(TransactionStopped(1, "L1", 150.0, 9.0, StopReason.EV_DISCONNECTED))
    assert await box.open_transactions() == []
    await store.close()
    db = sqlite3.connect(tmp_path / "chargepoint.sqlite")
    assert db.execute("SELECT id_tag FROM sessions WHERE local_id = 'L1'").fetchone() == ("CAFE01",)


async def test_an_ended_authorization_does_not_change_who_charged(tmp_path):
    store, box = await reopen(tmp_path)
    await box.put(TransactionStarted(1, "L1", CARD, 100.0, 1.0))
    await box.put(TransactionAuthorized(1, "L1", IdToken("OTHER"), False, 2.0))
    [cut] = await box.open_transactions()
    assert cut.token == CARD
    await store.close()
    db = sqlite3.connect(tmp_path / "chargepoint.sqlite")
    stored = [json.loads(text) for (text,) in db.execute("SELECT event FROM outbox ORDER BY seq")]
    assert [row["type"] for row in stored] == ["TransactionStarted", "TransactionAuthorized"]
