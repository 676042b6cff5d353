"""One connector as the station core sees it: the hardware it was given and the session on it.

The hardware bundle (``ConnectorHardware``) is built by a backend and never
changes: the safety loop, the meter, the limit claims and the plug lock. The
session state (``ConnectorState``) belongs to the station alone; other parts of
the program read it through the station's service API (``service.py``), never
by reaching in.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING

from chargepoint.core.events import Activity, IdToken, MeterSample, StatusChanged
from chargepoint.core.tariffs.tariff_cost import SessionCost
from chargepoint.safety.iec61851 import CpState
from chargepoint.safety.limits import LimitClaims
from chargepoint.safety.status import EvseStatus
from hal.interfaces import ConnectorLock, Meter, MeterReading

if TYPE_CHECKING:  # the daemon holds the supervisor's proxy of it; the loop itself runs there
    from chargepoint.safety.evse import EvseController

PLUGGED_STATES = (CpState.B, CpState.C, CpState.D)
#: Consecutive failed meter reads after which the meter counts as unavailable.
METER_FAILURES_UNAVAILABLE = 3


@dataclass(frozen=True)
class ConnectorHardware:
    """What a backend provides for one EVSE: its safety loop, meter, limits and lock.

    Each EVSE of this station has one connector (id 1 within the EVSE); OCPP 1.6
    numbers its connectors by EVSE id.
    """

    evse_id: int
    evse: EvseController
    meter: Meter
    limits: LimitClaims
    lock: ConnectorLock | None = None
    connector_id: int = 1
    #: The plug type (station.connector_type, in the station's words): a reservation may ask for one.
    connector_type: str | None = None


@dataclass
class Transaction:
    local_id: str
    #: Who charges; None while a transaction that began with the EV alone waits for an identifier.
    token: IdToken | None
    meter_start_wh: float
    started_at: float
    #: Every reading taken for this transaction (begin, periodic, clock, end),
    #: for the stop message's own record of the transaction.
    samples: list[MeterSample] = field(default_factory=list)
    stopping: bool = False
    #: Set once its stop is over (queued, or refused by the store): ``Station.stop_all`` waits on it.
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    #: The CSMS refused the identifier but wants the transaction kept: no energy, still open.
    suspended: bool = False
    #: Refused but kept, with energy left to deliver: the meter reading at which energy stops.
    energy_cap_wh: float | None = None
    #: The activity last recorded for it (a transaction begins with the EV connected, starting).
    activity: Activity = Activity.STARTING
    #: The remote start request it answers (see ``TransactionStarted.remote_start_id``).
    remote_start_id: int | None = None
    #: Its running cost under the tariff in force (None: no tariff prices it; see ``tariff_book.py``).
    cost: SessionCost | None = None
    #: The total the CSMS last said the driver pays so far (its own figure; None: it said none).
    csms_cost: Decimal | None = None
    #: An EV was plugged in when its activity was last recorded (its arrival and departure are told).
    plugged: bool = True
    #: An EV has been plugged in during it (one begun by an authorization alone may wait for one).
    ev_came: bool = True
    #: Energy has flowed in it (an energy-transfer stop point ends it when the flow ends).
    energy_flowed: bool = False

    @property
    def charging(self) -> bool:
        """Energy is flowing (the time counts as charging time, not idle time, in its cost)."""
        return self.activity is Activity.CHARGING


@dataclass
class Session:
    """A driver's claim on a connector: authorized, maybe not yet charging; or an EV plugged in
    whose transaction began before anyone was authorized (no token yet)."""

    token: IdToken | None
    authorized_at: float
    transaction: Transaction | None = None
    #: The group the identifier belongs to, when an authority said (1.6 parentIdTag): another
    #: card of the same group may end the session.
    group_id: str | None = None
    #: A start is being recorded (meter read, plug locked): no second start may begin.
    starting: bool = False
    #: The remote start request that began the session, if one did: its transaction answers it.
    remote_start_id: int | None = None
    #: The driver ended the authorization and the transaction goes on to its stop point (the EV
    #: still plugged in): no energy any more.
    deauthorized: bool = False

    @property
    def authorized(self) -> bool:
        """An identifier is authorized on the connector now."""
        return self.token is not None and not self.deauthorized


@dataclass
class ConnectorState:
    """The station's own record of one connector; only the station writes it."""

    hw: ConnectorHardware
    operative: bool = True
    #: Availability asked for while a transaction ran, applied when it ends.
    scheduled_operative: bool | None = None
    session: Session | None = None
    evse_status: EvseStatus | None = None
    last_reading: MeterReading | None = None
    meter_failures: int = 0
    #: Every failed meter read since the start (``meter_failures`` counts those in a row).
    meter_failures_total: int = 0
    #: The transaction ended but the EV is still plugged in.
    finishing: bool = False
    #: A station-wide fault that stops this connector too: (fault name, what a technician reads).
    station_fault: tuple[str, str] | None = None
    #: An EV is connected: from the first B/C/D until the pilot reads A again. A fault reading
    #: (E, F, out of band) in between does not end it, so the unplug after a fault is seen.
    ev_present: bool = False
    reported: StatusChanged | None = None
    #: Held for a reservation (kept by ``reservations.Reservations``).
    reserved: bool = False
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    #: Set on every report of this connector's facts: cuts the idle meter poll's wait short.
    reported_anew: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> int:
        return self.hw.evse_id

    @property
    def evse(self) -> EvseController:
        return self.hw.evse

    @property
    def meter(self) -> Meter:
        return self.hw.meter

    @property
    def limits(self) -> LimitClaims:
        return self.hw.limits

    @property
    def lock(self) -> ConnectorLock | None:
        return self.hw.lock

    @property
    def plugged(self) -> bool:
        return self.evse_status is not None and self.evse_status.cp_state in PLUGGED_STATES

    @property
    def transaction(self) -> Transaction | None:
        return self.session.transaction if self.session else None

    @property
    def meter_available(self) -> bool:
        return self.meter_failures < METER_FAILURES_UNAVAILABLE

    @property
    def faulted(self) -> bool:
        return self.evse_status is not None and bool(self.evse_status.faults)

    @property
    def fault(self) -> str | None:
        """The fault that stops this connector (the first by name when several), or None."""
        if self.evse_status is not None and self.evse_status.faults:
            return sorted(f.value for f in self.evse_status.faults)[0]
        return self.station_fault[0] if self.station_fault else None

    @property
    def activity(self) -> Activity:
        """What the session on this connector is doing, from the station's and the loop's facts."""
        evse = self.evse_status
        tx = self.transaction
        if tx is not None and not tx.stopping:
            if tx.suspended and not (evse is not None and evse.contactor_closed):
                return Activity.SUSPENDED_EVSE
            if evse is not None and evse.contactor_closed:
                return Activity.CHARGING
            if evse is None or not evse.charging_allowed:
                return Activity.STARTING  # the safety loop has not taken it up yet
            if not self.plugged or evse.offered_a > 0:
                return Activity.SUSPENDED_EV  # EV gone (transaction kept), or it takes nothing
            return Activity.SUSPENDED_EVSE
        if self.plugged and (self.finishing or tx is not None):
            return Activity.FINISHING
        if tx is not None:
            # Ending with the EV gone: the connector is still the transaction's until its end is
            # recorded, neither free nor waiting for an EV (no Preparing, no Available in between).
            return Activity.SUSPENDED_EV
        if self.session is not None:
            return Activity.AUTHORIZED
        return Activity.IDLE

    def status(self, now: float) -> StatusChanged:
        """The connector's facts now.

        While a transaction ends with the EV gone they stay what was last reported (a fault
        aside): what the connector becomes, free or out of service (an availability change
        scheduled for the transaction's end), is said once the end is recorded, and never a
        state in between that the end would take back.
        """
        tx = self.transaction
        if tx is not None and tx.stopping and not self.plugged and self.reported is not None \
                and self.fault is None:
            return replace(self.reported, timestamp=now)
        return StatusChanged(
            self.id, now, operative=self.operative, activity=self.activity, plugged=self.plugged,
            fault=self.fault, warning=None if self.meter_available else "power_meter_failure",
            connector_id=self.hw.connector_id, info=self.station_fault[1] if self.station_fault else None,
            reserved=self.reserved)
