"""Plain station events and the vocabulary they use.

The station speaks in these dataclasses; the OCPP adapters translate them into
messages of their protocol version. Nothing here knows OCPP types, so a second
protocol version is a new adapter and the station stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from hal.interfaces import MeterReading


class ConnectorStatus(StrEnum):
    """What a connector is doing, in the terms a driver and an operator use."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    RESERVED = "Reserved"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"


class StopReason(StrEnum):
    """Why a transaction ended."""

    LOCAL = "Local"
    REMOTE = "Remote"
    EV_DISCONNECTED = "EVDisconnected"
    DEAUTHORIZED = "DeAuthorized"
    EMERGENCY_STOP = "EmergencyStop"
    POWER_LOSS = "PowerLoss"
    REBOOT = "Reboot"
    SOFT_RESET = "SoftReset"
    HARD_RESET = "HardReset"
    UNLOCK_COMMAND = "UnlockCommand"
    OTHER = "Other"


class AuthStatus(StrEnum):
    """The answer to "may this card charge?"."""

    ACCEPTED = "Accepted"
    BLOCKED = "Blocked"
    EXPIRED = "Expired"
    INVALID = "Invalid"
    CONCURRENT_TX = "ConcurrentTx"
    #: No authority could be asked (offline, timeout).
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class AuthResult:
    status: AuthStatus
    parent_id_tag: str | None = None
    expiry: float | None = None


class ReadingContext(StrEnum):
    """Why a meter sample was taken."""

    TRANSACTION_BEGIN = "Transaction.Begin"
    PERIODIC = "Sample.Periodic"
    CLOCK = "Sample.Clock"
    TRANSACTION_END = "Transaction.End"


@dataclass(frozen=True)
class StatusChanged:
    """A connector (0 = the station as a whole) changed status or error."""

    connector_id: int
    status: ConnectorStatus
    timestamp: float
    #: Name of the fault behind a Faulted status (see ``evse.EvseFault`` and
    #: ``STATION_FAULTS``), or None.
    fault: str | None = None
    info: str | None = None


@dataclass(frozen=True)
class TransactionStarted:
    connector_id: int
    local_id: str
    id_tag: str
    meter_start_wh: float
    timestamp: float


@dataclass(frozen=True)
class MeterSample:
    """A meter reading that belongs to a running transaction."""

    connector_id: int
    local_id: str
    reading: MeterReading
    context: ReadingContext
    offered_a: float | None = None


@dataclass(frozen=True)
class TransactionStopped:
    connector_id: int
    local_id: str
    meter_stop_wh: float
    timestamp: float
    reason: StopReason
    #: The card that ended it, when a card did.
    id_tag: str | None = None
    #: Begin and end readings, for the transaction's own record.
    samples: tuple[MeterSample, ...] = field(default_factory=tuple)


TransactionEvent = TransactionStarted | MeterSample | TransactionStopped

#: Faults the station itself reports besides the safety loop's.
STATION_FAULTS = ("power_meter_failure",)
