"""Smart charging: the installed charging profiles, and the limit they set on each connector.

The CSMS installs, clears and queries profiles through an OCPP adapter, which
only translates (``schedule.py`` has the neutral form). This engine keeps them
(in the state database, under the CSMS's ids), decides which apply to which
connector and transaction, and publishes the limit in force as the
``smart_charging`` claim of each connector's limits, where the safety loop
takes it up on its next tick, further bounded by the cable, the station's
rating and the operator's claim.

No polling: after every change the engine computes when the limit next
changes (a period boundary, a validity edge, a recurrence) and sleeps until
then on the injected clock. A transaction's start or end is a change too: the
engine follows the station's status events, binds a profile given with a
remote start to the transaction it started, and discards a transaction's own
profiles when it ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

from chargepoint.core.connector import ConnectorHardware
from chargepoint.core.energy import limit_store
from chargepoint.core.energy.schedule import (
    ChargingProfile,
    CompositePeriod,
    Kind,
    Purpose,
    RateUnit,
    Supply,
    Transaction,
    applicable,
    composite,
    limit_at,
)
from chargepoint.core.events import StatusChanged
from chargepoint.core.storage.store import Store
from chargepoint.core.views import ConnectorView
from chargepoint.safety.iec61851 import MAX_PWM_CURRENT_A

log = logging.getLogger(__name__)

#: The claim this engine owns in every connector's limits.
CLAIM = "smart_charging"
#: What the station accepts (each OCPP version reports these as read-only facts).
MAX_STACK_LEVEL = 10
MAX_PERIODS = 24
MAX_PROFILES = 32
RATE_UNITS = (RateUnit.AMPS, RateUnit.WATTS)
#: Longest sleep of the timer: it wakes at least this often to catch a wall-clock step (NTP).
RESYNC_S = 3600.0


class StationFacts(Protocol):
    """What the engine reads of the station (``station.Station``) and the events it follows."""

    clock: Any
    connectors: dict[int, Any]
    status_listeners: list[Any]
    recovery_listeners: list[Any]

    def view(self, evse_id: int) -> ConnectorView: ...
    def hardware(self, evse_id: int) -> ConnectorHardware: ...


@dataclass(frozen=True)
class CompositeSchedule:
    """The limits that will apply on an EVSE from ``start`` on (whole seconds)."""

    evse_id: int
    start: float
    duration_s: int
    unit: RateUnit
    #: (offset from start in s, limit in ``unit``, phases or None)
    periods: tuple[tuple[int, float, int | None], ...]


class SmartCharging:
    """The profiles of one station and the limits they set."""

    def __init__(self, station: StationFacts, supply: Supply | None = None) -> None:
        self.station = station
        self.clock = station.clock
        self.supply = supply or Supply()
        self.profiles: dict[int, ChargingProfile] = {}
        self.store: Store | None = None
        #: Per EVSE: when its limit next changes (epoch s; inf: never) and the limit now.
        self.next_change: dict[int, float] = {}
        self.limits: dict[int, float | None] = {}
        self._timer: asyncio.Task[None] | None = None
        #: The last write queued on the store's thread.
        self._written: Future[object] | None = None
        #: Per EVSE, as last seen: a session present, and its transaction's local id.
        self._seen: dict[int, tuple[bool, str | None]] = {}

    # ---------------------------------------------------------------- lifecycle
    async def attach(self, store: Store) -> None:
        """Take over the profiles kept in the state database (before ``start``)."""
        self.store = store
        self.profiles = {p.id: p for p in await store.call(limit_store.load_profiles, store)}

    def start(self) -> None:
        """Follow the station's transactions and publish the limits (on the running loop)."""
        self.station.status_listeners.append(self._status_changed)
        self.station.recovery_listeners.append(self.recovered)
        for evse_id in self.station.connectors:
            self._seen[evse_id] = self._session(evse_id)
        self.refresh()

    def recovered(self) -> None:
        """The station has taken back (or stopped) the transactions a restart found open: the
        transaction profiles whose transaction did not come back go now, as one change (it was
        stopped as PowerLoss, or a kill came between its end and their removal)."""
        stale = [p.id for p in self.profiles.values() if p.purpose is Purpose.TX and not self._alive(p)]
        for profile_id in stale:
            del self.profiles[profile_id]
            log.info("charging profile %d discarded: its transaction ended while the station was stopped",
                     profile_id)
        if stale:
            self._persist(delete=stale)
            self.refresh()

    def close(self) -> None:
        if self._status_changed in self.station.status_listeners:
            self.station.status_listeners.remove(self._status_changed)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ----------------------------------------------------------------- requests
    def refusal(self, p: ChargingProfile, *, pending: bool = False) -> str | None:
        """Why ``p`` cannot be installed, in words; None if it can. ``pending``: a TX profile
        given with a remote start, for the transaction about to begin on its EVSE."""
        s = p.schedule
        if p.evse_id != 0 and p.evse_id not in self.station.connectors:
            return f"there is no EVSE {p.evse_id}"
        if p.purpose is Purpose.STATION_MAX and p.evse_id != 0:
            return "a station maximum profile belongs to EVSE 0"
        if not 0 <= p.stack_level <= MAX_STACK_LEVEL:
            return f"stack level must be 0 to {MAX_STACK_LEVEL}"
        if s.unit not in RATE_UNITS:
            return f"rate unit {s.unit} is not supported"
        if not 1 <= len(s.periods) <= MAX_PERIODS:
            return f"a schedule has 1 to {MAX_PERIODS} periods"
        starts = [x.start_s for x in s.periods]
        if starts[0] != 0 or any(b <= a for a, b in zip(starts, starts[1:], strict=False)):
            return "periods must start at 0 and follow in increasing order"
        if any(x.limit < 0 or (x.phases is not None and not 1 <= x.phases <= 3) for x in s.periods):
            return "a period's limit must not be negative and its phases be 1 to 3"
        if s.duration_s is not None and s.duration_s <= 0:
            return "a schedule's duration must be positive"
        if (p.recurrency is None) != (p.kind is not Kind.RECURRING):
            return "a recurring profile (and only one) needs daily or weekly recurrence"
        if p.valid_from is not None and p.valid_to is not None and p.valid_to <= p.valid_from:
            return "valid to must come after valid from"
        if p.purpose is Purpose.TX:
            if p.evse_id == 0:
                return "a transaction profile belongs to an EVSE, not the station"
            tx = self._transaction(p.evse_id)
            if not pending and tx is None:
                return f"EVSE {p.evse_id} has no transaction"
            if p.transaction_id is not None and (tx is None or tx.local_id != p.transaction_id):
                return f"the transaction is not the one on EVSE {p.evse_id}"
        if len([q for q in self.profiles.values() if self._replaced_by(q, p) is False]) >= MAX_PROFILES:
            return f"{MAX_PROFILES} profiles are installed already"
        return None

    def install(self, p: ChargingProfile, *, pending: bool = False,
                replace_same_level: bool = True) -> str | None:
        """Install ``p`` (replacing the profile of the same id, and, when
        ``replace_same_level``, the one of the same purpose and stack level on the
        same EVSE, as 1.6 does); returns why not, or None. A TX profile without a
        transaction is bound to the EVSE's running one (``pending``: its next)."""
        reason = self.refusal(p, pending=pending)
        clashing = [q for q in self.profiles.values() if self._replaced_by(q, p) == "level"]
        if reason is None and clashing and not replace_same_level:
            reason = f"profile {clashing[0].id} has the same purpose and stack level"
        if reason is not None:
            log.info("charging profile %d refused: %s", p.id, reason)
            return reason
        tx = self._transaction(p.evse_id) if p.purpose is Purpose.TX else None
        if tx is not None and p.transaction_id is None:
            p = dataclasses.replace(p, transaction_id=tx.local_id)
        gone = [q.id for q in self.profiles.values() if self._replaced_by(q, p)]
        for profile_id in gone:
            del self.profiles[profile_id]
        self.profiles[p.id] = p
        self._persist(delete=[i for i in gone if i != p.id], save=[p])
        log.info("charging profile %d installed: %s on EVSE %d, stack level %d%s", p.id, p.purpose.value,
                 p.evse_id, p.stack_level, f" (replacing {gone})" if gone else "")
        self.refresh()
        return None

    def update_dynamic(self, profile_id: int, limit: float, phases: int | None = None) -> str | None:
        """Move the one limit of dynamic profile ``profile_id`` (in its unit); returns why not, or None.
        Applied as any change: the claim follows at once, and the new limit is kept on disk."""
        p = self.profiles.get(profile_id)
        if p is None or not p.dynamic:
            return f"there is no dynamic charging profile {profile_id}"
        if limit < 0:
            return f"a limit of {limit:g} is negative"
        period = p.schedule.periods[0]
        new = dataclasses.replace(p, schedule=dataclasses.replace(p.schedule, periods=(
            dataclasses.replace(period, limit=limit, phases=period.phases if phases is None else phases),)))
        self.profiles[profile_id] = new
        self._persist(save=[new])
        log.info("dynamic charging profile %d: limit %g %s", profile_id, limit, new.schedule.unit.value)
        self.refresh()
        return None

    def clear(self, *, profile_id: int | None = None, evse_id: int | None = None,
              purpose: Purpose | None = None, stack_level: int | None = None) -> list[int]:
        """Remove the profile ``profile_id``, or every one matching all the other criteria
        given (none given: all); the ids removed."""
        if profile_id is not None:
            gone = [profile_id] if profile_id in self.profiles else []
        else:
            gone = [p.id for p in self.profiles.values()
                    if (evse_id is None or p.evse_id == evse_id) and (purpose is None or p.purpose is purpose)
                    and (stack_level is None or p.stack_level == stack_level)]
        for i in gone:
            del self.profiles[i]
        if gone:
            self._persist(delete=gone)
            log.info("charging profile(s) %s cleared", ", ".join(map(str, gone)))
            self.refresh()
        return gone

    def installed(self, evse_id: int | None = None) -> list[ChargingProfile]:
        """The profiles on ``evse_id`` (None: all), by id."""
        return sorted((p for p in self.profiles.values() if evse_id is None or p.evse_id == evse_id),
                      key=lambda p: p.id)

    def composite(self, evse_id: int, duration_s: int,
                  unit: RateUnit | None = None) -> CompositeSchedule | None:
        """The limits the station will apply on ``evse_id`` (0: the station's maximum) for the
        next ``duration_s``, as the same computation that sets the claim gives them, bounded
        by the other claims of now; None for an unknown EVSE."""
        if evse_id != 0 and evse_id not in self.station.connectors:
            return None
        start = math.floor(self.clock.time())
        tx = self._transaction(evse_id) if evse_id else None
        groups = applicable(list(self.profiles.values()), evse_id, tx)
        periods = composite(groups, start, duration_s, tx.started_at if tx else start, self.supply,
                            self._bound(evse_id))
        unit = unit or RateUnit.AMPS
        return CompositeSchedule(evse_id, start, duration_s, unit,
                                 tuple(self._in_unit(x, unit) for x in periods))

    # ------------------------------------------------------------ applying limits
    def refresh(self, due: float | None = None) -> None:
        """Publish each connector's limit now (``due``: the boundary the timer woke for) and
        sleep until the next change."""
        now = self.clock.time()
        t = now if due is None else max(now, due)
        profiles = list(self.profiles.values())
        soonest = math.inf
        for evse_id in self.station.connectors:
            tx = self._transaction(evse_id)
            slot = limit_at(applicable(profiles, evse_id, tx), t, tx.started_at if tx else None, self.supply)
            self.station.hardware(evse_id).limits.set(CLAIM, slot.amps)
            self.next_change[evse_id] = slot.until
            if slot.amps != self.limits.get(evse_id, None):
                until = "" if math.isinf(slot.until) else \
                    f" until {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(slot.until))} UTC"
                log.info("connector %d: smart charging limit %s%s", evse_id,
                         "none" if slot.amps is None else f"{slot.amps:g} A", until)
            self.limits[evse_id] = slot.amps
            soonest = min(soonest, slot.until)
        self._arm(soonest, now)

    def _arm(self, when: float, now: float) -> None:
        if self._timer is not None and self._timer is not asyncio.current_task():
            self._timer.cancel()
        self._timer = None
        if math.isinf(when) and not self.profiles:
            return
        delay = min(when - now, RESYNC_S)
        self._timer = asyncio.ensure_future(self._wake(delay, when if delay < RESYNC_S else None))

    async def _wake(self, delay: float, due: float | None) -> None:
        await self.clock.sleep(max(0.0, delay))
        self.refresh(due)

    def _status_changed(self, status: StatusChanged) -> None:
        """A transaction began or ended: bind or discard TX profiles, then the limits."""
        evse_id = status.evse_id
        if evse_id not in self.station.connectors:
            return
        had_session, previous_tx = self._seen.get(evse_id, (False, None))
        has_session, tx_id = self._seen[evse_id] = self._session(evse_id)
        if (had_session, previous_tx) == (has_session, tx_id):
            return
        changed: list[ChargingProfile] = []
        gone: list[int] = []
        for p in list(self.profiles.values()):
            if p.purpose is not Purpose.TX or p.evse_id != evse_id:
                continue
            if p.transaction_id is None and tx_id is not None:
                p = self.profiles[p.id] = dataclasses.replace(p, transaction_id=tx_id)
                changed.append(p)
            elif (p.transaction_id is not None and p.transaction_id != tx_id) or \
                    (p.transaction_id is None and had_session and not has_session):
                gone.append(p.id)
        for profile_id in gone:
            del self.profiles[profile_id]
            log.info("charging profile %d discarded: its transaction ended", profile_id)
        if changed or gone:
            self._persist(delete=gone, save=changed)
        self.refresh()

    # ------------------------------------------------------------------ helpers
    def _session(self, evse_id: int) -> tuple[bool, str | None]:
        session = self.station.view(evse_id).session
        tx = session.transaction if session else None
        return session is not None, tx.local_id if tx is not None and not tx.stopping else None

    def _alive(self, p: ChargingProfile) -> bool:
        """Whether a transaction profile's transaction runs (unbound: a session waits for one)."""
        if p.evse_id not in self.station.connectors:
            return False
        has_session, tx_id = self._session(p.evse_id)
        return has_session if p.transaction_id is None else p.transaction_id == tx_id

    def _transaction(self, evse_id: int) -> Transaction | None:
        if evse_id not in self.station.connectors:
            return None
        session = self.station.view(evse_id).session
        tx = session.transaction if session else None
        if tx is None or tx.stopping:
            return None
        return Transaction(tx.local_id, tx.started_at)

    def _replaced_by(self, old: ChargingProfile, new: ChargingProfile) -> str | bool:
        """Whether installing ``new`` removes ``old``: "id", "level" (same EVSE, purpose and
        stack level), or False."""
        if old.id == new.id:
            return "id"
        if (old.evse_id, old.purpose, old.stack_level) == (new.evse_id, new.purpose, new.stack_level):
            return "level"
        return False

    def _bound(self, evse_id: int) -> float:
        """The other claims' limit on ``evse_id`` now (EVSE 0: the highest of the connectors')."""
        def other(e: int) -> float:
            claims = self.station.hardware(e).limits.snapshot()
            claims.pop(CLAIM, None)
            return min(claims.values(), default=MAX_PWM_CURRENT_A)
        ids = [evse_id] if evse_id else list(self.station.connectors)
        return min(max(other(e) for e in ids), MAX_PWM_CURRENT_A)

    def _in_unit(self, x: CompositePeriod, unit: RateUnit) -> tuple[int, float, int | None]:
        value = x.amps if unit is RateUnit.AMPS else math.floor(self.supply.watts(x.amps, x.phases) * 10) / 10
        return x.start_s, value, x.phases

    def _persist(self, *, delete: list[int] | None = None, save: list[ChargingProfile] | None = None) -> None:
        """Queue one change on the store's thread (one transaction: a kill never leaves a replaced
        profile gone and its successor missing); ``durable`` waits for it."""
        store = self.store
        if store is None:
            return
        self._written = store.submit(limit_store.write_profiles, store, list(delete or []), list(save or []))

    async def durable(self) -> None:
        """Wait until every change so far is in the state database (before an answer says so)."""
        written = self._written
        if written is not None:
            await asyncio.wrap_future(written)
