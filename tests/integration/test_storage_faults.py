"""The station never tells the CSMS what is not on disk, even when the disk fails.

Storage faults are made by SQLite itself on the daemon's own connection:
``PRAGMA query_only`` makes every write fail as on a read-only file system, and
``PRAGMA max_page_count`` makes the file unable to grow, as on a full disk.
The CSMS's ledger (every message it received) is then checked as an operator
would: no stop below energy it was told about, never two stops for one
transaction.
"""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chargepoint.core.storage.outbox import Outbox
from chargepoint.core.storage.store import Store, StoreError
from tests.integration.conftest import charging, running, station_config, until
from tests.integration.loopback_csms import LoopbackCsms


def _energy(meter_values: Any) -> list[float]:
    return [float(v["value"]) for mv in meter_values.payload["meter_value"] for v in mv["sampled_value"]
            if v.get("measurand", "Energy.Active.Import.Register") == "Energy.Active.Import.Register"]


async def test_a_sample_is_on_disk_before_the_csms_sees_it(csms: LoopbackCsms, tmp_path: Path):
    """At the moment each MeterValues reaches the CSMS, its reading is committed: a kill at
    that moment could not make the power-loss stop go below it."""
    state = tmp_path / "state"
    seen_on_disk: list[tuple[float, float]] = []

    class Ledger(list):
        """The CSMS's record of what it received; looks at the station's disk as each arrives."""

        def append(self, item: Any) -> None:
            super().append(item)
            if item.action == "MeterValues" and item.payload.get("transaction_id"):
                seen_on_disk.append((max(_energy(item)), _persisted(state)))

    csms.received = Ledger()
    async with running(station_config(csms.url, str(state),
                                      ocpp={"meter_value_sample_interval_s": 2})) as daemon:
        await charging(csms, daemon)
        await until(lambda: len(seen_on_disk) >= 4, 15, "four samples at the CSMS")
    # The wire carries 3 decimals: a committed reading may read up to 0.0005 Wh below its text.
    assert all(persisted is not None and persisted >= sent - 0.0005 for sent, persisted in seen_on_disk), \
        seen_on_disk


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs: a disk that really fills up (needs the permission to mount, as root has here)."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()}); the read-only case still runs")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(disk: Path) -> Path:
    """Take every free byte of ``disk``, as a log or a download would."""
    filler = disk / "filler"
    # Unbuffered: a write the full disk cut short leaves nothing behind for close() to fail on.
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return filler


async def _a_failing_store_stops_everything(csms: LoopbackCsms, state: str, break_it: Any,
                                            repair: Any) -> None:
    config = station_config(csms.url, state, ocpp={"meter_value_sample_interval_s": 2})
    async with running(config) as daemon:
        world = await charging(csms, daemon)
        await csms.wait_for("MeterValues")
        store = daemon.store
        assert store is not None
        await break_it(store)
        # The next write fails: energy stops, the connector reports why, the daemon ends.
        await until(lambda: daemon.failure is not None, 15, "the store failure")
        await until(lambda: not world.contactor.closed, 5, "the contactor to open")
        faulted = await csms.wait_for("StatusNotification", connector_id=1, status="Faulted")
        assert faulted[0].payload["error_code"] == "InternalError"
        assert faulted[0].payload["info"].startswith("state database")
        await until(lambda: daemon._stopped.is_set(), 10, "the daemon to stop itself")
    assert "state database" in (daemon.failure or "")
    assert csms.of("StopTransaction") == [], "a stop that could not be recorded is not sent"
    delivered = [e for mv in csms.of("MeterValues") for e in _energy(mv)]

    repair()  # the disk is writable again; the station starts again
    async with running(config) as daemon:
        stop = (await csms.wait_for("StopTransaction", timeout=15))[0].payload
        await until(lambda: len(daemon.outbox) == 0, 10, "the queue to drain")
    assert stop["reason"] == "PowerLoss"
    assert stop["meter_stop"] >= max(delivered), "a stop is never below energy the CSMS was told"
    assert len(csms.of("StopTransaction")) == 1, "one stop for one transaction"


async def test_a_read_only_store_stops_energy_and_sends_nothing_undurable(csms: LoopbackCsms,
                                                                         tmp_path: Path):
    """Every write fails as on a file system remounted read-only (SQLite's query_only)."""
    async def read_only(store: Store) -> None:
        await store.call(store.db.execute, "PRAGMA query_only = ON")

    # A new connection after the restart has no query_only: that is the repair.
    await _a_failing_store_stops_everything(csms, str(tmp_path / "state"), read_only, lambda: None)


async def test_a_full_disk_stops_energy_and_sends_nothing_undurable(csms: LoopbackCsms, small_disk: Path):
    filler: list[Path] = []

    async def fill(store: Store) -> None:
        filler.append(await asyncio.to_thread(_fill, small_disk))

    await _a_failing_store_stops_everything(csms, str(small_disk / "state"), fill,
                                            lambda: filler[0].unlink())


async def test_an_acknowledged_message_is_gone_from_disk_when_ack_returns(tmp_path: Path):
    """``ack`` returns once the answer is committed: what a process killed then finds on disk."""
    from chargepoint.core.events import IdToken, MeterSample, ReadingContext, TransactionStarted
    from hal.interfaces import MeterReading

    store = await Store.open(tmp_path)
    box = Outbox()
    await box.attach(store)
    try:
        start = await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 0.0, 1.0))
        for n in range(10):
            reading = MeterReading(timestamp=2.0 + n, energy_import_wh=10.0 * n)
            await box.put(MeterSample(1, "L1", reading, ReadingContext.PERIODIC))
        await box.ack(await box.wait_head(), remote_id="5")
        assert start.seq not in _rows(tmp_path)
        for acked in range(1, 8):
            entry = await box.wait_head()
            await box.ack(entry)
            # What a process killed right now would find on disk (another connection reads it):
            assert len(_rows(tmp_path)) == 10 - acked
    finally:
        await store.close()


def _persisted(state: Path) -> float | None:
    """The highest reading the station's database holds for a transaction, read by another connection."""
    db = sqlite3.connect(state / "chargepoint.sqlite")
    try:
        return db.execute("SELECT MAX(last_meter_wh) FROM transactions").fetchone()[0]
    finally:
        db.close()


def _rows(tmp_path: Path) -> list[int]:
    db = sqlite3.connect(tmp_path / "chargepoint.sqlite")
    try:
        return [seq for (seq,) in db.execute("SELECT seq FROM outbox ORDER BY seq")]
    finally:
        db.close()


async def test_wait_head_holds_a_sample_until_its_write_commits(tmp_path: Path):
    from chargepoint.core.events import IdToken, MeterSample, ReadingContext, TransactionStarted
    from hal.interfaces import MeterReading

    store = await Store.open(tmp_path)
    box = Outbox()
    await box.attach(store)
    try:
        start = await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 0.0, 1.0))
        await box.ack(start, remote_id="5")
        gate, entered = asyncio.Event(), asyncio.Event()
        loop = asyncio.get_running_loop()

        def hold() -> None:  # the store thread is busy (a slow card) until the gate opens
            loop.call_soon_threadsafe(entered.set)
            asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()

        store.submit(hold)
        await entered.wait()
        reading = MeterReading(timestamp=2.0, energy_import_wh=5.0)
        sample = await box.put(MeterSample(1, "L1", reading, ReadingContext.PERIODIC))
        head = asyncio.ensure_future(box.wait_head())
        for _ in range(20):
            await asyncio.sleep(0)
        assert not head.done(), "a sample whose write has not committed is not handed to the sender"
        gate.set()
        assert await asyncio.wait_for(head, 5) is sample
    finally:
        await store.close()


async def test_a_store_that_cannot_write_is_refused_at_start(tmp_path: Path):
    store = await Store.open(tmp_path)
    try:
        await store.call(store.db.execute, "PRAGMA query_only = ON")
        with pytest.raises(StoreError, match="read-only"):
            await store.call(store.check_writable)
        assert store.failure is not None and "read-only" in store.failure
    finally:
        await store.close()
