"""The state database's files as the file system sees them: modes, owners, free space, set aside.

Split from :mod:`chargepoint.core.storage.store` (which speaks SQL): everything here
runs on the store's thread before SQLite opens the file, or instead of it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: The state file holds the authorization key (the CSMS password) and id tags: for the
#: service user only. SQLite gives its -wal and -shm files the database file's mode.
DB_MODE = 0o600

#: Below this much free space on the state directory's disk the station does not start: its
#: WAL alone grows to about 4 MB between checkpoints, and a write that fails mid-session
#: stops energy. Checked before the CSMS is connected (``Store.check_writable``).
MIN_FREE_BYTES = 1 << 20


def refuse_empty(path: Path) -> str | None:
    """Why an existing empty file is not a new database: a lost write, not a new start.

    SQLite would take a zero-length file for a new database and the daemon
    would start silently without the transactions that should be in it.
    """
    if path.exists() and path.stat().st_size == 0:
        return ("the state database is empty (0 bytes): its contents were lost "
                "(an interrupted write or a full disk?)")
    return None


def owner_only(path: Path, *, create: bool) -> None:
    """Make ``path`` readable and writable by its owner only (``DB_MODE``); ``create`` it so,
    never readable by others in between, if it does not exist."""
    if create:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT, DB_MODE))
    try:
        os.chmod(path, DB_MODE)
    except FileNotFoundError:
        if create:
            raise


def adopt_companions(path: Path) -> None:
    """Make a leftover ``-wal`` and ``-shm`` this process's own, writable, before SQLite opens them.

    A read-only mount, a copy made as another user, or a tool run as root can
    leave them read-only or owned by someone else. SQLite then opens the
    database, reads it, and fails at the first write (the station would start,
    then stop), and a chmod after opening comes too late for that connection.
    Our own file gets its mode back. Another user's WAL may hold committed
    transactions: it is replaced by an own copy, byte for byte (written beside
    it, then renamed over it). Another user's ``-shm`` is only an index of the
    WAL, rebuilt by the first connection: it is removed. Only one daemon opens
    the directory (the state lock), so nobody else uses either file meanwhile.
    """
    me = os.geteuid()
    for suffix in ("-wal", "-shm"):
        companion = path.with_name(path.name + suffix)
        try:
            info = companion.lstat()
        except FileNotFoundError:
            continue
        regular = stat.S_ISREG(info.st_mode)
        if regular and info.st_uid == me:
            if stat.S_IMODE(info.st_mode) != DB_MODE:
                os.chmod(companion, DB_MODE)
            continue
        if suffix == "-shm":
            companion.unlink()
        else:
            _replace_with_own_copy(companion)
        log.warning("%s belonged to uid %d (mode %o): replaced by this process's own %s", companion,
                    info.st_uid, stat.S_IMODE(info.st_mode), "copy" if suffix == "-wal" else "index")


def _replace_with_own_copy(path: Path) -> None:
    spare = path.with_name(path.name + ".own")
    with open(path, "rb") as source:  # an unreadable WAL stops here: its writes cannot be dropped
        fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, DB_MODE)
        with os.fdopen(fd, "wb") as copy:
            while block := source.read(1 << 16):
                copy.write(block)
            copy.flush()
            os.fsync(copy.fileno())
    os.replace(spare, path)


def free_bytes(directory: Path) -> int:
    """What an unprivileged writer may still put on ``directory``'s file system."""
    info = os.statvfs(directory)
    return info.f_bavail * info.f_frsize


def space_problem(directory: Path) -> str | None:
    """"the disk is full ..." when ``directory``'s file system has less than ``MIN_FREE_BYTES`` free."""
    try:
        free = free_bytes(directory)
    except OSError:
        return None
    if free >= MIN_FREE_BYTES:
        return None
    return (f"the disk is full: {free // 1024} KiB free on {directory}'s file system, "
            f"at least {MIN_FREE_BYTES // 1024} KiB needed")


def set_aside(path: Path) -> Path:
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


#: SQLite's result codes that say the file's contents are damaged (or not a database at all),
#: as opposed to the disk, the permissions or a lock: only those may be set aside.
DAMAGE_CODES = ("SQLITE_CORRUPT", "SQLITE_NOTADB")


def is_damage(exc: BaseException) -> bool:
    """Does ``exc`` (met while opening) say the file's contents are damaged?

    A full disk, a read-only or unreadable file is not damage: recreating the
    file would not help and would set a sound database aside.
    """
    if isinstance(exc, UnicodeError):  # SQLite quoted damaged schema bytes in its message
        return True
    if isinstance(exc, sqlite3.DatabaseError):
        name = getattr(exc, "sqlite_errorname", "") or ""
        return name.startswith(DAMAGE_CODES) or "malformed" in str(exc) or "not a database" in str(exc)
    return False


def one_line(text: str, limit: int = 300) -> str:
    """SQLite's findings span lines and may quote damaged bytes; a log line and an error message do not."""
    flat = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def reason(exc: BaseException) -> str:
    """A failure as a technician reads it: what is wrong with the disk, not a traceback."""
    if isinstance(exc, UnicodeDecodeError):
        return "the database schema is damaged (SQLite's message about it is not even text)"
    text = one_line(str(exc) or type(exc).__name__)
    if "disk is full" in text or getattr(exc, "errno", None) == 28:
        return "the disk is full: " + text
    if "readonly" in text or "read-only" in text or getattr(exc, "errno", None) == 30:
        return "the file or file system is read-only: " + text
    return text
