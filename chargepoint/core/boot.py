"""Why the station (re)started, and whether a CSMS has registered this run.

A run's start reason is told by the run before it through the state database.

OCPP 2.0.1 reports a boot reason (a reset the CSMS asked for, a power-up, a
process that was killed ...); the facts behind it are the station's own and
neutral: how the previous run ended. Each run marks itself running at start and
writes how it ended when it stops cleanly; a run that never wrote its end was
killed, either with the whole machine (a power cut: the kernel's boot id
changed) or alone (a crash or the watchdog: same boot id).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from chargepoint.core.storage.store import Store

#: The kernel's id of the current boot: changes with every power-up of the machine.
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")


class BootReason(StrEnum):
    POWER_UP = "power_up"
    #: The CSMS asked for the restart.
    REMOTE_RESET = "remote_reset"
    #: The previous run stopped itself on an error (a safety loop that hung) to be started afresh.
    APPLICATION_ERROR = "application_error"
    #: The previous run was killed without stopping (a crash, the watchdog) while the machine ran on.
    WATCHDOG = "watchdog"
    #: Not a start: the CSMS asked for the BootNotification (TriggerMessage).
    TRIGGERED = "triggered"


#: How a run ended, as the next run reads it (meta ``run_end``).
RUNNING = "running"
STOPPED = "stopped"


def _boot_id() -> str:
    try:
        return BOOT_ID_FILE.read_text().strip()
    except OSError:
        return ""


def begin_run(store: Store) -> BootReason:
    """On the store's thread: how the previous run ended, and this run marked as running."""
    db = store.db
    rows = dict(db.execute("SELECT name, value FROM meta WHERE name IN ('run_end', 'boot_id')").fetchall())
    boot_id = _boot_id()
    ended = rows.get("run_end")
    if ended == RUNNING:
        same_machine_boot = bool(boot_id) and rows.get("boot_id") == boot_id
        reason = BootReason.WATCHDOG if same_machine_boot else BootReason.POWER_UP
    elif ended in (BootReason.REMOTE_RESET, BootReason.APPLICATION_ERROR):
        reason = BootReason(ended)
    else:
        reason = BootReason.POWER_UP
    _write(store, RUNNING, boot_id)
    return reason


def end_run(store: Store, how: BootReason | None) -> None:
    """On the store's thread: this run stops cleanly; ``how`` the next start is (None: a plain stop)."""
    _write(store, how.value if how is not None else STOPPED, _boot_id())


def _write(store: Store, run_end: str, boot_id: str) -> None:
    with store.db as db:
        db.execute("BEGIN")
        for name, value in (("run_end", run_end), ("boot_id", boot_id)):
            db.execute("INSERT INTO meta (name, value) VALUES (?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET value = excluded.value", (name, value))


class Registration:
    """Whether a CSMS has registered this run of the station, shared by all its connections.

    Registration is once per run: the first BootNotification the CSMS accepts
    registers the station, whether the station sent it of its own accord or
    because the CSMS triggered it. A new connection after a network loss is not
    a restart: the station was registered by the CSMS it speaks to (``csms``
    names it and the OCPP version spoken) and says so by its statuses, not by
    booting again; only a protocol that wants a BootNotification on every
    connection (``boot_on_reconnect``) sends one, with the true reason still.
    """

    def __init__(self, started: BootReason = BootReason.POWER_UP) -> None:
        #: Why this run started (``begin_run``).
        self.started = started
        self._registered_with: set[str] = set()

    def reason(self, triggered: bool) -> BootReason:
        """The true reason of the BootNotification to send: the CSMS asked for it, or the start."""
        return BootReason.TRIGGERED if triggered else self.started

    def must_boot(self, csms: str, *, boot_on_reconnect: bool = False) -> bool:
        """A new connection to ``csms`` begins with a BootNotification (else with statuses)."""
        return boot_on_reconnect or csms not in self._registered_with

    def accepted(self, csms: str) -> None:
        """``csms`` accepted a BootNotification: the station is registered for this run."""
        self._registered_with.add(csms)
