"""The outbox against a real SQLite file: what a message was sent as, and a store that fails."""

from __future__ import annotations

import asyncio
import gc
import logging

from chargepoint.core.events import IdToken, TransactionStarted
from chargepoint.core.outbox import Outbox
from chargepoint.core.store import Store


async def reopen(path) -> tuple[Store, Outbox]:
    store = await Store.open(path)
    box = Outbox()
    await box.attach(store)
    return store, box


async def test_an_answer_that_cannot_be_recorded_is_one_line_and_holds_the_sender(tmp_path, caplog):
    """The store fails (here: its connection is gone) between a message's answer and its record:
    one line says so, no asyncio "exception was never retrieved" traceback, and whoever awaits the
    record waits for ever (the daemon stops; nothing more goes out)."""
    store, box = await reopen(tmp_path)
    start = await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 10.0, 1.0))
    await store.call(store.db.close)
    caplog.set_level(logging.INFO)
    committed = box.acknowledge(start, remote_id="7")
    for _ in range(200):  # the store's thread fails the write; its outcome reaches the loop
        await asyncio.sleep(0.005)
        if store.failure is not None and any("not recorded" in r.getMessage() for r in caplog.records):
            break
    assert not committed.done(), "the sender must not go on to the next message"
    del committed
    gc.collect()
    await asyncio.sleep(0)
    lines = [r for r in caplog.records if r.name.startswith("chargepoint.core.outbox")]
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in lines]
    assert not any("never retrieved" in r.getMessage() for r in caplog.records)
    store._db = None  # already closed
    await store.close()
