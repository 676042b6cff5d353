"""The security log: what happened to the station's security, kept and reported.

Every security event (the OCPP security whitepaper's list, as far as this
station can see them) is written to the state database, in the bounded table
of the security-log migration (the newest ``LOG_MAX`` rows are kept), and sent
to the CSMS as soon as a connection is up: a row stays marked unsent until the
CSMS has answered its notification, so an event that happens offline is
reported after the reconnect, across restarts too. The protocol adapters
translate the neutral kinds below into their version's words.

Before the store is attached (the first moments of a start) events wait in
memory and are written once it is; a station without a store (unit tests)
keeps them in memory only.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chargepoint.core.storage.store import Store

log = logging.getLogger(__name__)

#: Rows kept in the security log (the oldest go first, sent or not).
LOG_MAX = 1000
#: Longest technical detail kept with an event (the notification allows 255 characters).
INFO_MAX = 255


class SecurityEvent(StrEnum):
    """The whitepaper's security events, by neutral name.

    The station records most of them itself (README, "Security profiles and
    certificates"). FIRMWARE_UPDATED is the firmware update's to record;
    SETTING_SYSTEM_TIME, MEMORY_EXHAUSTION, ATTEMPTED_REPLAY_ATTACKS and
    TAMPER_DETECTION_ACTIVATED are named so the adapters can translate them,
    but nothing on this station detects them (no clock of its own, no tamper
    input, no message counter)."""

    FIRMWARE_UPDATED = "firmware_updated"
    FAILED_TO_AUTHENTICATE_AT_CSMS = "failed_to_authenticate_at_csms"
    CSMS_FAILED_TO_AUTHENTICATE = "csms_failed_to_authenticate"
    SETTING_SYSTEM_TIME = "setting_system_time"
    STARTUP_OF_THE_DEVICE = "startup_of_the_device"
    RESET_OR_REBOOT = "reset_or_reboot"
    SECURITY_LOG_WAS_CLEARED = "security_log_was_cleared"
    RECONFIGURATION_OF_SECURITY_PARAMETERS = "reconfiguration_of_security_parameters"
    MEMORY_EXHAUSTION = "memory_exhaustion"
    INVALID_MESSAGES = "invalid_messages"
    ATTEMPTED_REPLAY_ATTACKS = "attempted_replay_attacks"
    TAMPER_DETECTION_ACTIVATED = "tamper_detection_activated"
    INVALID_FIRMWARE_SIGNATURE = "invalid_firmware_signature"
    INVALID_FIRMWARE_SIGNING_CERTIFICATE = "invalid_firmware_signing_certificate"
    INVALID_CSMS_CERTIFICATE = "invalid_csms_certificate"
    INVALID_STATION_CERTIFICATE = "invalid_station_certificate"
    INVALID_TLS_VERSION = "invalid_tls_version"
    INVALID_TLS_CIPHER_SUITE = "invalid_tls_cipher_suite"


#: The events the whitepaper marks critical.
CRITICAL = frozenset({
    SecurityEvent.FIRMWARE_UPDATED, SecurityEvent.SETTING_SYSTEM_TIME, SecurityEvent.STARTUP_OF_THE_DEVICE,
    SecurityEvent.RESET_OR_REBOOT, SecurityEvent.SECURITY_LOG_WAS_CLEARED, SecurityEvent.MEMORY_EXHAUSTION,
    SecurityEvent.TAMPER_DETECTION_ACTIVATED})

#: Events every healthy station records in its normal life (a start, a reboot, an update it was asked
#: for): logged at INFO, so a technician's list of warnings shows only what needs a look. The CSMS
#: still gets them all, critical or not, as the whitepaper says.
ROUTINE = frozenset({SecurityEvent.STARTUP_OF_THE_DEVICE, SecurityEvent.RESET_OR_REBOOT,
                     SecurityEvent.FIRMWARE_UPDATED})


@dataclass(frozen=True)
class Entry:
    """One row of the security log."""

    seq: int
    at: float
    kind: SecurityEvent
    info: str
    sent: bool

    @property
    def critical(self) -> bool:
        return self.kind in CRITICAL

    def line(self) -> str:
        """The row for people and for an uploaded log file: one line."""
        when = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
        mark = " critical" if self.critical else ""
        return f"{when} {self.kind.value}{mark}{': ' + self.info if self.info else ''}"


class SecurityLog:
    """Records security events, persists them, and hands the unsent ones to the adapter."""

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now
        self.store: Store | None = None
        #: Rows not in a store (before attach, or without one).
        self._memory: list[Entry] = []
        self._next = 1
        #: Set whenever an event is recorded: the adapter's sender wakes up.
        self.recorded = asyncio.Event()
        #: Called as ``listener(entry)`` for every event recorded (the control surfaces).
        self.listeners: list[Callable[[Entry], None]] = []
        #: Set while the connected CSMS does not take security events (it answered that it does
        #: not implement them): the events stay here, unsent, and nobody waits for their delivery.
        #: The connection's sender sets it and clears it; a new connection asks again.
        self.declined = False

    async def attach(self, store: Store) -> None:
        """Use ``store`` from now on; events recorded before are written to it."""
        waiting = list(self._memory)
        self.store = store
        self._memory = []
        for entry in waiting:
            await store.call(_insert, store, entry.at, entry.kind.value, entry.info)
        if waiting or await store.call(_unsent_count, store):
            self.recorded.set()

    def record(self, kind: SecurityEvent, info: str = "") -> None:
        """Note a security event now; it is written and sent without the caller waiting."""
        info = info.replace("\n", " ")[:INFO_MAX]
        entry = Entry(self._next, self.now(), kind, info, False)
        self._next += 1
        log.log(logging.INFO if kind in ROUTINE else logging.WARNING, "security event %s%s", kind.value,
                f": {info}" if info else "")
        if self.store is None:
            self._memory.append(entry)
            del self._memory[:-LOG_MAX]
        else:
            self.store.submit(_insert, self.store, entry.at, kind.value, info)
        for listener in self.listeners:
            listener(entry)
        self.recorded.set()

    async def unsent(self) -> list[Entry]:
        """Events the CSMS has not acknowledged, oldest first."""
        if self.store is None:
            return [e for e in self._memory if not e.sent]
        return await self.store.call(_select, self.store, "WHERE sent = 0", ())

    async def mark_sent(self, entry: Entry) -> None:
        if self.store is None:
            self._memory = [e if e.seq != entry.seq else Entry(e.seq, e.at, e.kind, e.info, True)
                            for e in self._memory]
        else:
            await self.store.call(_mark_sent, self.store, entry.seq)

    async def entries(self, since: float | None = None, until: float | None = None) -> list[Entry]:
        """The log between two moments (either open), oldest first."""
        low = since if since is not None else float("-inf")
        high = until if until is not None else float("inf")
        if self.store is None:
            return [e for e in self._memory if low <= e.at <= high]
        return await self.store.call(_select, self.store, "WHERE at >= ? AND at <= ?", (low, high))

    async def export(self, path: str | Path, since: float | None = None, until: float | None = None) -> int:
        """Write the log between two moments to ``path``, one line per event; returns the count.

        What a log upload (GetLog of the security log) sends: the file is then
        the uploader's to transfer and remove.
        """
        rows = await self.entries(since, until)
        text = "".join(e.line() + "\n" for e in rows)
        await asyncio.to_thread(Path(path).write_text, text, "utf-8")
        return len(rows)

    async def clear(self, who: str) -> None:
        """Empty the log; the clearing is itself the first new entry (critical, so it is reported)."""
        if self.store is None:
            self._memory = []
        else:
            await self.store.call(_clear, self.store)
        self.record(SecurityEvent.SECURITY_LOG_WAS_CLEARED, f"by {who}")


def _insert(store: Store, at: float, kind: str, info: str) -> None:
    db = store.db
    db.execute("INSERT INTO security_log (at, kind, info, sent) VALUES (?, ?, ?, 0)", (at, kind, info))
    db.execute("DELETE FROM security_log WHERE seq <= (SELECT max(seq) FROM security_log) - ?", (LOG_MAX,))


def _select(store: Store, where: str, args: tuple[object, ...]) -> list[Entry]:
    rows = store.db.execute(f"SELECT seq, at, kind, info, sent FROM security_log {where} ORDER BY seq",
                            args).fetchall()
    out = []
    for seq, at, kind, info, sent in rows:
        try:
            out.append(Entry(int(seq), float(at), SecurityEvent(kind), str(info), bool(sent)))
        except ValueError:
            continue  # a kind a later release wrote: not this release's to report
    return out


def _unsent_count(store: Store) -> int:
    return int(store.db.execute("SELECT count(*) FROM security_log WHERE sent = 0").fetchone()[0])


def _mark_sent(store: Store, seq: int) -> None:
    store.db.execute("UPDATE security_log SET sent = 1 WHERE seq = ?", (seq,))


def _clear(store: Store) -> None:
    store.db.execute("DELETE FROM security_log")
