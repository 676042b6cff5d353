"""The station core's vocabulary: plain events and the words they use, neutral to any OCPP version.

The station speaks in these dataclasses; each OCPP adapter translates them into
the messages of its version (1.6's nine connector statuses, 2.0.1's connector
status plus charging state, each version's stop reasons and token types). So
the words here are facts, not any version's spelling: a connector's
availability, whether an EV is plugged in and what the session is doing are
separate fields, and every enumeration has neutral values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from hal.interfaces import MeterReading


class _Parsed(StrEnum):
    """An enumeration that also reads the spellings earlier releases stored ("EVDisconnected")."""

    @classmethod
    def parse(cls, text: str) -> _Parsed:
        wanted = text.replace("_", "").replace(".", "").lower()
        for member in cls:
            if member.value.replace("_", "") == wanted:
                return member
        raise ValueError(f"{text!r} is not a {cls.__name__}")


class Activity(_Parsed):
    """What is happening on a connector, as far as sessions go."""

    IDLE = "idle"
    #: A driver is authorized; the transaction has not begun (no EV yet, or starting).
    AUTHORIZED = "authorized"
    #: The transaction has begun; the safety loop has not taken up the permission yet.
    STARTING = "starting"
    CHARGING = "charging"
    #: Energy is offered but the EV takes none (or the EV is gone, the transaction kept).
    SUSPENDED_EV = "suspended_ev"
    #: The station offers no energy (a limit below the minimum, a pause).
    SUSPENDED_EVSE = "suspended_evse"
    #: The transaction has ended (or is ending) and the EV is still plugged in.
    FINISHING = "finishing"


class StopReason(_Parsed):
    """Why a transaction ended: the union of what the OCPP versions can say."""

    LOCAL = "local"
    REMOTE = "remote"
    EV_DISCONNECTED = "ev_disconnected"
    DEAUTHORIZED = "deauthorized"
    EMERGENCY_STOP = "emergency_stop"
    POWER_LOSS = "power_loss"
    REBOOT = "reboot"
    SOFT_RESET = "soft_reset"
    HARD_RESET = "hard_reset"
    UNLOCK_COMMAND = "unlock_command"
    ENERGY_LIMIT_REACHED = "energy_limit_reached"
    GROUND_FAULT = "ground_fault"
    LOCAL_OUT_OF_CREDIT = "local_out_of_credit"
    MASTER_PASS = "master_pass"
    OVERCURRENT_FAULT = "overcurrent_fault"
    POWER_QUALITY = "power_quality"
    SOC_LIMIT_REACHED = "soc_limit_reached"
    STOPPED_BY_EV = "stopped_by_ev"
    TIME_LIMIT_REACHED = "time_limit_reached"
    TIMEOUT = "timeout"
    OTHER = "other"


class TokenType(_Parsed):
    """Where an identifier comes from; OCPP 1.6 carries only the value."""

    ISO14443 = "iso14443"  # an RFID card's UID (the station's reader)
    ISO15693 = "iso15693"
    CENTRAL = "central"  # made up by the central system (a remote start)
    LOCAL = "local"  # made up by the station (free vend, the technician's CLI)
    KEY_CODE = "key_code"
    EMAID = "emaid"
    MAC_ADDRESS = "mac_address"
    NO_AUTHORIZATION = "no_authorization"


@dataclass(frozen=True)
class IdToken:
    """Who charges: an identifier and its kind."""

    value: str
    type: TokenType = TokenType.ISO14443

    def __str__(self) -> str:
        return self.value

    def same_holder(self, other: IdToken | None) -> bool:
        """The same identifier (the kind aside: a card used for a remote start is still that card)."""
        return other is not None and other.value == self.value


class AuthStatus(_Parsed):
    """The answer to "may this identifier charge?"."""

    ACCEPTED = "accepted"
    BLOCKED = "blocked"
    EXPIRED = "expired"
    INVALID = "invalid"
    CONCURRENT_TX = "concurrent_tx"
    NO_CREDIT = "no_credit"
    NOT_ALLOWED_TYPE_EVSE = "not_allowed_type_evse"
    NOT_AT_THIS_LOCATION = "not_at_this_location"
    NOT_AT_THIS_TIME = "not_at_this_time"
    #: No authority could be asked (offline, timeout), or it does not know the identifier.
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class AuthResult:
    status: AuthStatus
    #: The group the identifier belongs to (1.6 parentIdTag, 2.0.1 groupIdToken).
    group_id: str | None = None
    expiry: float | None = None


class ReadingContext(_Parsed):
    """Why a meter sample was taken."""

    TRANSACTION_BEGIN = "transaction_begin"
    PERIODIC = "periodic"
    CLOCK = "clock"
    TRANSACTION_END = "transaction_end"
    #: Taken because the CSMS or the operator asked for a reading now (a remote trigger).
    TRIGGER = "trigger"

    @classmethod
    def parse(cls, text: str) -> ReadingContext:
        """Also the "Sample.Periodic" / "Sample.Clock" spelling earlier releases stored."""
        lowered = text.lower()
        return super().parse(lowered.removeprefix("sample.") if lowered.startswith("sample.") else text)


@dataclass(frozen=True)
class StatusChanged:
    """The facts about one connector (EVSE 0: the station as a whole) after a change.

    Each adapter derives its version's status from these; none of them is a
    version's status word.
    """

    evse_id: int
    timestamp: float
    operative: bool = True
    activity: Activity = Activity.IDLE
    plugged: bool = False
    #: The fault that stops the connector from charging (see ``safety.status.EvseFault``), or None.
    fault: str | None = None
    #: A problem that does not stop charging (see ``STATION_FAULTS``), or None.
    warning: str | None = None
    #: The connector within the EVSE (0 with EVSE 0).
    connector_id: int = 1
    info: str | None = None
    #: Held for a reservation: only its identifier (or group) may start here (see ``reservations.py``).
    reserved: bool = False

    @property
    def facts(self) -> tuple[object, ...]:
        """Everything but the time: two statuses with equal facts say the same."""
        return (self.operative, self.activity, self.plugged, self.fault, self.warning, self.info,
                self.reserved)


class TxPoint(_Parsed):
    """A moment a transaction may begin or end at (the station's words for TxStartPoint /
    TxStopPoint): each is a fact that holds for a while, and a transaction begins at the first
    of its start points to hold and ends when one of its stop points no longer does."""

    #: An EV is plugged in.
    EV_CONNECTED = "ev_connected"
    #: A driver (or the operator) is authorized on the connector.
    AUTHORIZED = "authorized"
    #: Both: the station may close the power path (OCPP 1.6 knows only this start).
    POWER_PATH_CLOSED = "power_path_closed"
    #: Energy flows: the contactor is closed and the EV draws.
    ENERGY_TRANSFER = "energy_transfer"


@dataclass(frozen=True)
class TransactionStarted:
    evse_id: int
    local_id: str
    #: Who charges; None when it began before anyone was authorized (an EV plugged in first):
    #: a ``TransactionAuthorized`` names the identifier later.
    token: IdToken | None
    meter_start_wh: float
    timestamp: float
    connector_id: int = 1
    #: The reservation this transaction used up, when it began on one.
    reservation_id: int | None = None
    #: The id of the operator's remote start request it answers (whatever the identifier's kind),
    #: or None when it began at the station: the CSMS matches the transaction to its request by it.
    remote_start_id: int | None = None
    #: The start point that began it (None: the EV and the driver both, as before start points).
    point: TxPoint | None = None
    #: An EV was plugged in when it began (it may begin on an authorization alone).
    plugged: bool = True


@dataclass(frozen=True)
class TransactionAuthorized:
    """A running transaction's authorization changed: an identifier was presented for a
    transaction that began without one (``authorized``), or the driver (or the operator: no
    identifier, ``remote``) ended the authorization while the transaction goes on until its stop
    point (an EV still plugged in)."""

    evse_id: int
    local_id: str
    token: IdToken | None
    authorized: bool
    timestamp: float
    connector_id: int = 1
    #: The operator's remote start request that named the identifier, when one did.
    remote_start_id: int | None = None
    #: The operator's request (a remote start or stop), not the driver at the station.
    remote: bool = False


@dataclass(frozen=True)
class MeterSample:
    """A meter reading that belongs to a running transaction (or, with no local id, to none)."""

    evse_id: int
    local_id: str
    reading: MeterReading
    context: ReadingContext
    offered_a: float | None = None
    connector_id: int = 1
    #: The transaction's cost as of this reading (``tariff_codec.cost_json``; None: no tariff, or a
    #: reading kept only for the transaction's own record).
    cost: str | None = None


@dataclass(frozen=True)
class TransactionStopped:
    evse_id: int
    local_id: str
    meter_stop_wh: float
    timestamp: float
    reason: StopReason
    #: The identifier that ended it, when one did.
    token: IdToken | None = None
    #: Begin and end readings, for the transaction's own record.
    samples: tuple[MeterSample, ...] = field(default_factory=tuple)
    connector_id: int = 1
    #: What it cost under the tariff in force, as ``tariff_codec.cost_json`` writes it (None: no tariff).
    cost: str | None = None


@dataclass(frozen=True)
class ActivityChanged:
    """A running transaction's activity changed (the EV began or paused drawing, energy was withheld).

    Queued with the transaction's other messages; a version that reports it says so on the wire
    (2.0.1: the charging state), the others let it go.
    """

    evse_id: int
    local_id: str
    activity: Activity
    plugged: bool
    timestamp: float
    connector_id: int = 1
    #: The EV came (True) or left (False) with this change; None: it was there and stayed.
    ev_arrived: bool | None = None


TransactionEvent = (TransactionStarted | MeterSample | TransactionStopped | ActivityChanged
                    | TransactionAuthorized)

#: Problems the station itself reports besides the safety loop's faults: a meter that does not
#: answer (a warning: charging goes on), a state database that cannot be written (a fault).
STATION_FAULTS = ("power_meter_failure", "storage")
