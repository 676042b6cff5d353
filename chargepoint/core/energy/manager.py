"""The energy manager: reads the grid meter and sets the ``load_manager`` and ``solar`` claims.

One task on the event loop: read the grid meter (async; the bus may be shared
with the station meter and has its own lock) and, at the same time, the meters
of the connectors that charge (a station reading from before an EV started would
count its current as the house's), then at once, with the station's own current
per phase, work out the fuse's headroom (``load_manager.py``) and
the solar surplus (``solar.py``) and set each connector's two claims. The claims
reach the PWM within a safety-loop tick, so an overload the meter sees is
answered within one poll (at most 2 s, the config checks it); the EV then has
the 5 s IEC 61851 gives it.

The station's current through a connector is what its meter measured, but no
more than the pilot offers now and nothing while its contactor is open: a
reading taken before the claim was lowered would otherwise make the house look
smaller than it is and the headroom larger.

A grid meter without a good reading for ``stale_after_s`` is stale: the station
then shares ``fallback_a`` per phase (the load manager's claims), solar claims
stay as they were, and this is said once in the log, counted and shown in the
status until a good reading comes. The solar mode is kept in the state database.
The departure plans (``plan_runner.py``) choose a connector's mode for now, and
the sessions' solar energy is counted here (``session_energy.py``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from chargepoint.config.model import SOLAR_MODES, Config
from chargepoint.core.energy.load_manager import ConnectorLoad, LoadManager, Phases
from chargepoint.core.energy.phase_policy import PhaseChooser, PhaseSwitching
from chargepoint.core.energy.plan_runner import Plans
from chargepoint.core.energy.session_energy import RunningSession, SessionLedger
from chargepoint.core.energy.solar import SolarController
from chargepoint.core.storage.store import meta_get, meta_set
from chargepoint.safety.limits import LimitClaims
from hal.clock import Clock
from hal.grid import GridMeter, GridReading
from hal.interfaces import MeterFailure

if TYPE_CHECKING:
    from chargepoint.core.storage.store import Store

log = logging.getLogger(__name__)

#: The claims this module owns in every connector's limits.
LOAD_CLAIM = "load_manager"
SOLAR_CLAIM = "solar"
#: Where the solar mode is kept (the store's meta table: name -> value).
MODE_KEY = "solar_mode"


def load_mode(store: Store) -> str | None:
    return meta_get(store, MODE_KEY)


def save_mode(store: Store, mode: str) -> None:
    meta_set(store, MODE_KEY, mode)


class Connectors(Protocol):
    """What the energy manager needs of the station: its connectors' loads and their limit claims."""

    def ids(self) -> list[int]: ...

    def loads(self) -> list[ConnectorLoad]: ...

    def limits(self, evse_id: int) -> LimitClaims: ...

    def meter_wh(self, evse_id: int) -> float | None:
        """The connector meter's import register (Wh), None without a reading."""
        ...

    def session(self, evse_id: int) -> RunningSession | None:
        """The connector's running transaction (its id and cost so far), None without one."""
        ...

    async def refresh(self) -> None:
        """Bring the connectors' own current up to date (read their meters now if that is needed)."""
        ...

    def phase_switch(self, evse_id: int) -> PhaseSwitching | None:
        """The connector's phase contactor as its safety loop offers it; None: it has none."""
        ...


class EnergyManager:
    """Load management and solar charging of one station (see the module doc)."""

    def __init__(self, connectors: Connectors, grid_meter: GridMeter, config: Config, clock: Clock) -> None:
        self.connectors = connectors
        self.meter = grid_meter
        self.load = config.load
        self.voltage_v = config.station.nominal_voltage_v
        self.clock = clock
        phases = config.station.supply_phases
        self.manager = LoadManager(phases, resume_after_s=config.solar.min_switch_interval_s)
        self.solar = SolarController(config.solar, phases)
        self.phases = PhaseChooser(config.solar)
        self.plans = Plans(connectors.limits, connectors.meter_wh, phases, self.voltage_v)
        self.ledger = SessionLedger()
        self.store: Store | None = None
        self._started = clock.monotonic()
        self.last_good: GridReading | None = None
        #: Failed reads in a row, in all, and how often the fallback was entered.
        self.failures = 0
        self.failures_total = 0
        self.fallbacks = 0
        self.in_fallback = False
        self.last_error: str | None = None
        #: The last unexpected error applying a reading (logged once).
        self._bug: str | None = None
        self.surplus_a = 0.0
        self.headroom_a: Phases | None = None
        self.house_a: Phases | None = None
        #: Energy the station has drawn since the start, in all and what of it the sun covered (Wh),
        #: per connector: a session's solar share is the difference over the session.
        self.station_wh: dict[int, float] = {}
        self.solar_wh_by: dict[int, float] = {}
        self._last_at: float | None = None
        self._last_solar_w: dict[int, float] = {}
        self._last_station_w: dict[int, float] = {}
        # Claims from the start, before any reading: an EV plugged in before the first one
        # starts within the fallback, never at the station's full rating.
        self._set(LOAD_CLAIM, self.manager.split((self.load.fallback_a,) * 3,
                                                 [ConnectorLoad(e, False) for e in connectors.ids()],
                                                 clock.monotonic()))

    # ------------------------------------------------------------- the mode
    async def attach(self, store: Store) -> None:
        """Take back the mode chosen before the restart (over the configuration's default)."""
        self.store = store
        await self.plans.attach(store)
        await self.ledger.attach(store)
        mode = await store.call(load_mode, store)
        if mode in SOLAR_MODES:
            self.solar.set_mode(mode, self.connector_loads())

    @property
    def mode(self) -> str:
        return self.solar.mode

    async def set_mode(self, mode: str) -> None:
        """Change the solar mode; returns once it is durable. Applies at the next grid reading."""
        self.solar.set_mode(mode, self.connector_loads())
        log.info("solar mode %s", mode)
        if self.store is not None:
            await asyncio.wrap_future(self.store.submit(save_mode, self.store, mode))

    # ------------------------------------------------------------- running
    async def run(self) -> None:
        """Read the grid meter every poll interval and act on each reading at once."""
        interval = self.load.meter.poll_interval_s
        # Until the first reading: the fallback, and no solar start.
        connectors, now = self.connector_loads(), self.clock.monotonic()
        self._set(LOAD_CLAIM, self._fallback_claims(connectors, now))
        self._set(SOLAR_CLAIM, self.solar.update(0.0, connectors, now))
        while True:
            started = self.clock.monotonic()
            try:
                # Both at once: the readings agree in time, and the answer comes one read later, not two.
                reading, _ = await asyncio.gather(self.meter.read(), self.connectors.refresh())
                self.apply(reading)
            except Exception as exc:  # a bug must not freeze the claims: share the fallback, say it, go on
                if repr(exc) != self._bug:  # once per different error, not every second
                    self._bug = repr(exc)
                    log.exception("energy manager: a reading could not be applied; the station shares the "
                                  "fallback %g A per phase until one can", self.load.fallback_a)
                # Nothing read from the station is trusted here: the fallback shared by every connector.
                unknown = [ConnectorLoad(e, False) for e in self.connectors.ids()]
                self._set(LOAD_CLAIM, self._fallback_claims(unknown, self.clock.monotonic()))
            await self.clock.sleep(max(0.0, interval - (self.clock.monotonic() - started)))

    async def close(self) -> None:
        await self.meter.close()

    def connector_loads(self) -> list[ConnectorLoad]:
        """Each connector's plug and own current per phase (see the module doc)."""
        return self.connectors.loads()

    def apply(self, reading: GridReading | MeterFailure) -> None:
        """Act on one grid reading (or failed read): set every connector's claims."""
        now = self.clock.monotonic()
        connectors = self.connector_loads()
        if isinstance(reading, MeterFailure):
            self.failures += 1
            self.failures_total += 1
            self.last_error = f"{reading.kind.value}{': ' + reading.detail if reading.detail else ''}"
            since = self.last_good.timestamp if self.last_good is not None else self._started
            if now - since >= self.load.stale_after_s or self.in_fallback:
                self._fallback(connectors, now)
            elif self.last_good is None:
                self._set(LOAD_CLAIM, self._fallback_claims(connectors, now))
            return
        if self.in_fallback:
            log.info("grid meter reads again after %d failed read(s): load management resumed", self.failures)
            self.in_fallback = False
        self.failures, self.last_good = 0, reading
        grid = reading.currents_a
        # The fuse counts the phases an EV may get: three while three are in use or already asked for.
        connectors = [replace(c, phase_count=3) if c.phase_count == 1 and c.evse_id in self.phases.states
                      and self.phases.states[c.evse_id].wanted == 3 else c for c in connectors]
        self.headroom_a = self.manager.headroom(grid, connectors, self.load.main_fuse_a, self.load.margin_a)
        self.house_a = tuple(self.load.main_fuse_a - self.load.margin_a - h  # type: ignore[assignment]
                             for h in self.headroom_a)
        self._set(LOAD_CLAIM, self.manager.split(self.headroom_a, connectors, now))
        station = [sum(c.currents_a[p] for c in connectors) for p in range(3)]
        self.surplus_a = sum(station[p] - grid[p] for p in range(3))
        self._count_energy(connectors, grid, now)
        self.ledger.update({e: self.connectors.session(e) for e in self.connectors.ids()}, self.solar_wh_by)
        modes = self.plans.modes(connectors, self.clock.time())
        # The phases next (a new choice of three reaches the fuse's split at the next reading, before
        # the switch is done: KM1 open 3 s and the pilot 3 s more), then the surplus shared on them.
        connectors = self._choose_phases(connectors, modes, now)
        self._set(SOLAR_CLAIM, self.solar.update(self.surplus_a, connectors, now, modes))

    def _choose_phases(self, connectors: list[ConnectorLoad], modes: dict[int, str],
                       now: float) -> list[ConnectorLoad]:
        """Ask each phase contactor for the phases the mode and the surplus call for (phase_policy.py);
        the loads come back counting the phases their EV may get, three while three are in use or
        asked for, else one: the surplus's share is worked out on them."""
        plugged = sum(1 for c in connectors if c.plugged) or 1
        out = []
        for c in connectors:
            switch = self.connectors.phase_switch(c.evse_id)
            if switch is None:
                out.append(c)
                continue
            mode = modes.get(c.evse_id, self.mode)
            solar = self.solar.states.get(c.evse_id)
            before = self.phases.states[c.evse_id].wanted if c.evse_id in self.phases.states else None
            wanted = self.phases.choose(c.evse_id, mode, self.surplus_a / plugged, now, drawing=c.drawing,
                                        last_start_or_pause=solar.switched_at if solar else None)
            if c.drawing and before is not None and wanted != before and solar is not None:
                solar.switched_at = now  # the charge was interrupted: a pause waits its interval from here
            if switch.target != wanted:
                refusal = switch.request(wanted)
                if refusal:
                    log.warning("%s", refusal)
                else:
                    log.info("connector %d: %d phase(s) for %s", c.evse_id, wanted, mode)
            out.append(replace(c, phase_count=3 if 3 in (wanted, switch.phases) else 1))
        return out

    def _count_energy(self, connectors: list[ConnectorLoad], grid: Phases, now: float) -> None:
        """Add the energy since the last reading, at the power of the last reading, and the sun's part.

        What the station draws beyond what the connection imports came from the sun
        (the house's own load is served by the sun first, as a meter nets it); it is
        shared among the connectors by their current.
        """
        if self._last_at is not None:
            hours = (now - self._last_at) / 3600
            for evse_id, watts in self._last_station_w.items():
                self.station_wh[evse_id] = self.station_wh.get(evse_id, 0.0) + watts * hours
                self.solar_wh_by[evse_id] = (self.solar_wh_by.get(evse_id, 0.0)
                                             + self._last_solar_w.get(evse_id, 0.0) * hours)
        self._last_at = now
        per = {c.evse_id: sum(c.currents_a) * self.voltage_v for c in connectors}
        total = sum(per.values())
        imported = max(0.0, sum(grid)) * self.voltage_v
        sun = min(total, max(0.0, total - imported))
        self._last_station_w = per
        self._last_solar_w = {e: sun * w / total if total > 0 else 0.0 for e, w in per.items()}

    @property
    def solar_wh(self) -> float:
        """Energy the station drew from the sun since the start (Wh)."""
        return sum(self.solar_wh_by.values())

    def _fallback_claims(self, connectors: list[ConnectorLoad], now: float) -> dict[int, float]:
        fallback = self.load.fallback_a
        return self.manager.split((fallback, fallback, fallback), connectors, now)

    def _fallback(self, connectors: list[ConnectorLoad], now: float) -> None:
        if not self.in_fallback:
            self.in_fallback = True
            self.fallbacks += 1
            log.warning("grid meter: no good reading for %.0f s (%s): the station shares the fallback "
                        "%g A per phase until it reads again", self.load.stale_after_s, self.last_error,
                        self.load.fallback_a)
        self.headroom_a = None
        self._set(LOAD_CLAIM, self._fallback_claims(connectors, now))

    def _set(self, claim: str, amps: dict[int, float] | dict[int, float | None]) -> None:
        for evse_id, value in amps.items():
            limits = self.connectors.limits(evse_id)
            before = limits.get(claim)
            limits.set(claim, value)
            paused_now = value is not None and value < 6
            if (before is None or before >= 6) and paused_now:
                log.info("connector %d: paused by %s (%g A)", evse_id, claim, value)
            elif before is not None and before < 6 and (value is None or value >= 6):
                log.info("connector %d: %s allows charging again (%s)", evse_id, claim,
                         "no limit" if value is None else f"{value:g} A")

    # -------------------------------------------------------------- status
    def status(self) -> dict[str, Any]:
        """The mode, the surplus, the fuse's headroom and the grid meter's health, for the status."""
        now = self.clock.monotonic()
        good = self.last_good
        state = "fallback" if self.in_fallback else "ok" if good is not None and self.failures == 0 \
            else "failing" if good is not None else "starting"
        phases = self.solar.supply_phases
        loads = {c.evse_id: c for c in self.connector_loads()}
        plugged = {e: c.plugged for e, c in loads.items()}
        return {
            "mode": self.mode,
            "surplus_a": round(self.surplus_a / phases, 1),
            "surplus_w": round(self.surplus_a * self.voltage_v),
            "power": self.power(),
            "main_fuse_a": self.load.main_fuse_a,
            "margin_a": self.load.margin_a,
            "grid_a": [round(a, 1) for a in good.currents_a] if good is not None else None,
            "house_a": [round(a, 1) for a in self.house_a] if self.house_a is not None else None,
            "headroom_a": [round(a, 1) for a in self.headroom_a] if self.headroom_a is not None else None,
            "grid_meter": {"state": state, "age_s": round(now - good.timestamp, 1) if good else None,
                           "failures": self.failures, "failures_total": self.failures_total,
                           "fallbacks": self.fallbacks, "fallback_a": self.load.fallback_a,
                           "last_error": self.last_error},
            "connectors": [{"id": e, "plugged": plugged.get(e, False),
                            "solar": self.solar.describe(e, now, plugged.get(e, False)),
                            "solar_switches": self.solar.states[e].switches if e in self.solar.states else 0,
                            "load_paused": e in self.manager.paused,
                            "solar_wh": round(self.solar_wh_by.get(e, 0.0), 1),
                            "session_solar_wh": self._session_solar(e),
                            **self._phases_status(e, now),
                            "plan": self.plans.status(loads[e], self.clock.time()) if e in loads else None}
                           for e in self.connectors.ids()],
        }

    def _phases_status(self, evse_id: int, now: float) -> dict[str, Any]:
        """The phases the connector's EV gets (None: no phase contactor) and the choice in words."""
        switch = self.connectors.phase_switch(evse_id)
        if switch is None:
            return {"phases": None, "phases_words": None}
        chosen = self.phases.describe(evse_id, now)
        words = f"on {chosen}" if chosen else None
        if switch.phases != switch.target and switch.target is not None:
            words = f"switching to {switch.target} phase{'s' if switch.target == 3 else ''} (EV paused)"
        return {"phases": switch.phases, "phases_words": words}

    def _session_solar(self, evse_id: int) -> float | None:
        solar = self.ledger.solar_wh(evse_id, self.solar_wh_by)
        return None if solar is None else round(solar, 1)

    def power(self) -> dict[str, float | None]:
        """Power at the last grid reading (W): the connection (+ import, - export), the station, the
        surplus the station could use, and the house with the sun netted in (the grid meter sees
        house and PV as one: without a meter on the PV, their parts are not known apart)."""
        good = self.last_good
        if good is None:
            return {"grid_w": None, "station_w": None, "surplus_w": None, "house_net_w": None, "pv_w": None}
        grid_w = good.power_w if good.power_w is not None else sum(good.currents_a) * self.voltage_v
        station_w = sum(self._last_station_w.values())
        return {"grid_w": round(grid_w), "station_w": round(station_w),
                "surplus_w": round(max(0.0, station_w - grid_w)),
                "house_net_w": round(grid_w - station_w), "pv_w": None}
