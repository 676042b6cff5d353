"""What the station answers to an operator's command, in neutral words the adapters translate."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class StartResult:
    """The answer to a remote (or local CLI) start: accepted at once, the work follows."""

    accepted: bool
    #: The EVSE that took the session (or the one asked for, when refused).
    evse_id: int | None
    #: Why not, in words, when refused.
    refusal: str = ""
    #: Accepted, and the session waits for an EV to be plugged in.
    waiting_for_ev: bool = False
    #: The transaction the start authorized, when the EV had begun one already (its local id).
    transaction_id: str | None = None


class AvailabilityChange(StrEnum):
    ACCEPTED = "accepted"
    #: A transaction runs: the change applies when it ends.
    SCHEDULED = "scheduled"
    #: No such EVSE.
    REJECTED = "rejected"


class UnlockResult(StrEnum):
    UNLOCKED = "unlocked"
    #: The lock's feedback did not confirm unlocking.
    FAILED = "failed"
    #: The connector has no lock (a tethered cable).
    NO_LOCK = "no_lock"
    UNKNOWN_CONNECTOR = "unknown_connector"
