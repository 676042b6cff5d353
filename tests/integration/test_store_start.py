"""Starting on a state directory the last run, or someone else, left in a poor state.

Leftover ``-wal``/``-shm`` files that the daemon's user cannot write (left by a
read-only mount, a copy made as another user, a tool run as root) must not make
the next start fail; the WAL's committed writes are kept. The daemon opens them
as an unprivileged user would: when these tests run as root, in a child
process without the capabilities that let root write any file (``setpriv``).

A full disk at start is refused before the CSMS is connected: one line, a
failure exit, systemd starts it again later; the database is not set aside
for it even when damaged files would be. The disk is a 4 MiB tmpfs that really
fills up (the test needs the permission to mount, as root has here).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from chargepoint.core.storage import store_files
from chargepoint.core.storage.store import DB_NAME, Store, StoreError
from tests.integration.conftest import station_config

REPO = Path(__file__).resolve().parents[2]

#: Opens the store as ``chargepoint run`` does, proves a write commits, prints the settings.
CHILD = """
import asyncio, json, sys
from chargepoint.core.storage.store import Store, StoreError
async def main():
    store = await Store.open(sys.argv[1])
    try:
        await store.call(store.check_writable)
        print(json.dumps(await store.call(store.load_settings)))
    finally:
        await store.close()
try:
    asyncio.run(main())
except StoreError as exc:
    sys.exit(f"refused: {exc}")
"""

#: Root without the capabilities that override file permissions: permissions count as for anyone.
UNPRIVILEGED = ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search,-fowner"]


async def _killed_with_a_committed_wal(state: Path) -> Path:
    """A state database whose newest commit is only in its WAL, as a killed daemon leaves it.

    The daemon ran a while before: its WAL file grew, was checkpointed and is
    written again from its start, so the newest commit takes only the first
    frames of a larger file (a write after the restart fits in it, full disk
    or not).
    """
    store = await Store.open(state)
    await store.close()
    path = state / DB_NAME
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA wal_autocheckpoint = 16")
    for n in range(48):
        db.execute("INSERT INTO settings (name, value) VALUES (?, ?)", (f"old-{n}", "x" * 3000))
    db.execute("DELETE FROM settings")
    db.execute("INSERT INTO settings (name, value) VALUES ('newest', 'committed')")
    for suffix in ("-wal", "-shm"):
        shutil.copy(path.with_name(DB_NAME + suffix), state / f"kept{suffix}")
    db.close()  # checkpoints and removes them: put the copies back, as a kill leaves them
    for suffix in ("-wal", "-shm"):
        (state / f"kept{suffix}").rename(path.with_name(DB_NAME + suffix))
    return path


def _start_unprivileged(state: Path) -> subprocess.CompletedProcess[str]:
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: root would write the read-only files anyway")
        prefix = UNPRIVILEGED
    return subprocess.run([*prefix, sys.executable, "-c", CHILD, str(state)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("owner", ["own_read_only", "another_user"])
async def test_leftover_read_only_wal_and_shm_do_not_stop_the_start(tmp_path: Path, owner: str) -> None:
    state = tmp_path / "state"
    path = await _killed_with_a_committed_wal(state)
    companions = [path.with_name(DB_NAME + suffix) for suffix in ("-wal", "-shm")]
    for companion in companions:
        if owner == "another_user":
            if os.geteuid() != 0:
                pytest.skip("only root can give a file to another user")
            os.chown(companion, 65534, 65534)
            companion.chmod(0o644)
        else:
            companion.chmod(0o444)
    started = _start_unprivileged(state)
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout) == {"newest": "committed"}, "the WAL's commit is kept"
    for companion in companions:  # gone at the clean close, or the daemon's own now
        assert not companion.exists() or (companion.stat().st_uid == os.geteuid()
                                          and companion.stat().st_mode & 0o777 == 0o600)


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs with the state directory of a killed daemon on it, then filled to the last byte."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip()})")
    try:
        asyncio.run(_killed_with_a_committed_wal(mountpoint / "state"))
        with open(mountpoint / "filler", "wb", buffering=0) as f:
            for size in (1 << 16, 512):
                try:
                    while True:
                        f.write(bytes(size))
                except OSError:
                    pass
        yield mountpoint / "state"
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def test_a_full_disk_is_refused_at_start_and_not_taken_for_damage(full_disk: Path) -> None:
    """SQLite reuses its WAL's space, so a first write may still commit: the free space decides."""
    async def start() -> None:
        store = await Store.open(full_disk, recreate_if_corrupt=True)
        try:
            await store.call(store.check_writable)
        finally:
            await store.close()

    with pytest.raises(StoreError) as refused:
        asyncio.run(start())
    message = str(refused.value)
    assert message.startswith(f"{full_disk / DB_NAME}: the disk is full") and "\n" not in message, message
    assert list(full_disk.glob(f"{DB_NAME}.corrupt-*")) == [], "a sound file is not set aside for a full disk"
    db = sqlite3.connect(f"file:{full_disk / DB_NAME}?mode=ro", uri=True)
    try:
        assert db.execute("SELECT value FROM settings WHERE name = 'newest'").fetchone() == ("committed",)
    finally:
        db.close()


async def test_the_daemon_refuses_a_full_disk_before_connecting_to_the_csms(tmp_path: Path,
                                                                           monkeypatch) -> None:
    """No boot at the CSMS, no reconnects: one line and a failure exit (``chargepoint run`` exits 1)."""
    connected = asyncio.Event()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        writer.close()

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    free = store_files.free_bytes(tmp_path)
    monkeypatch.setattr(store_files, "MIN_FREE_BYTES", free + (1 << 40))  # this disk counts as full
    daemon = Daemon(parse(station_config(f"ws://127.0.0.1:{port}/ocpp", str(tmp_path / "state")), "<test>"))
    run = asyncio.ensure_future(daemon.run())
    contacted = asyncio.ensure_future(connected.wait())
    try:
        await asyncio.wait({run, contacted}, timeout=20, return_when=asyncio.FIRST_COMPLETED)
        assert not connected.is_set(), "the CSMS is not contacted by a station that cannot record"
        with pytest.raises(StoreError, match=r": the disk is full: \d+ KiB free"):
            await run
    finally:
        if not run.done():
            daemon.stop()
            await asyncio.wait_for(asyncio.gather(run, return_exceptions=True), 40)
        contacted.cancel()
        server.close()
        await server.wait_closed()
