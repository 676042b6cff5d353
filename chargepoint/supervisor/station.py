"""What the supervisor holds and decides: the safety loops, their claims, and the orphan policy.

No sockets here and no threads of its own: ``server.py`` feeds it checked
requests (``wire.py``) and calls ``tick`` a few times a second; tests drive it
directly on a manual clock. Every request ends in a plain answer or a
``WireError``; whatever a peer asks, only the safety loop (``EvseController``)
closes a contactor, and only when the IEC 61851 rules allow.

The orphan policy: when the controlling daemon goes (crash, SIGKILL, watchdog,
firmware install), a connector it had granted energy keeps charging at the
current its claims gave, capped by ``orphan_limit_a``, for ``orphan_grace_s``;
then the supervisor withdraws the grant itself (PWM off, steady +12 V; the EV
goes to B and the loop opens the contactor). A daemon that comes back within
the grace finds the grant and its claims as it left them and carries on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from chargepoint.safety.evse import EvseController
from chargepoint.safety.iec61851 import CpState
from chargepoint.safety.limits import LimitClaims
from chargepoint.safety.status import PLUGGED, EvseStatus
from chargepoint.supervisor import wire
from chargepoint.supervisor.wire import Request, WireError
from hal.clock import Clock
from hal.interfaces import ConnectorLock

log = logging.getLogger(__name__)

#: The claim that caps a connector while no daemon is attached.
ORPHAN_CLAIM = "orphan"


@dataclass
class Guarded:
    """One connector as the supervisor holds it."""

    id: int
    evse: EvseController
    limits: LimitClaims
    lock: ConnectorLock | None = None
    #: The simulated world (EV, circuit) on the sim backend; None on real hardware.
    world: Any = None
    operative: bool = True
    #: The pilot state the last status showed (the loop's thread keeps it: ``status_changed``).
    cp_state: CpState | None = None
    #: When (the station's clock, seconds since the epoch) its EV left while no daemon was attached,
    #: if no daemon has granted energy since: the daemon, back, ends that car's transaction then
    #: (each daemon that attaches hears it, in case the one before was killed before recording it).
    ev_left_at: float | None = None


@dataclass(frozen=True)
class OrphanPolicy:
    grace_s: float = 120.0
    limit_a: float = 16.0


class SafetyStation:
    """The connectors' safety loops behind the channel's requests."""

    def __init__(self, connectors: list[Guarded], clock: Clock, policy: OrphanPolicy,
                 sim_action: Callable[[Guarded, dict[str, Any]], dict[str, Any]] | None = None) -> None:
        self.connectors = {c.id: c for c in connectors}
        for c in connectors:  # the channel server chains its own callback behind this one
            c.evse.on_status = partial(self.status_changed, c.id)
        self.clock = clock
        self.policy = policy
        self._sim_action = sim_action
        #: Since when no daemon has been attached while it had granted energy (None: attached or idle).
        self.orphan_since: float | None = None
        self.controller_attached = False
        #: The daemon said it stops for good (a stop, not a restart); cleared when one attaches.
        self.leaving_for_good = False
        #: The daemon said it is leaving (a stop or a restart): its disconnect is expected.
        self.leaving = False

    # ------------------------------------------------------------------ the controller
    def attach(self) -> None:
        """The daemon is (back) on the channel: the orphan cap goes, the grants stay as they were."""
        self.controller_attached = True
        self.leaving_for_good = self.leaving = False
        if self.orphan_since is not None:
            away = self.clock.monotonic() - self.orphan_since
            log.info("daemon reattached after %.1f s; connectors continue under its claims", away)
        self.orphan_since = None
        for c in self.connectors.values():
            c.limits.set(ORPHAN_CLAIM, None)

    def detach(self) -> None:
        """The daemon's channel dropped. Charging connectors go on, capped, for the grace."""
        # A departure seen before stays reported (``ev_left_at``) until a daemon grants energy
        # again: the daemon that heard of it may have been killed before it recorded the stop.
        self.controller_attached = False
        granted = [c for c in self.connectors.values() if c.evse.status.charging_allowed]
        if not granted:
            return
        if self.policy.grace_s <= 0:
            log.warning("daemon gone: orphan grace is 0, energy stopped on connector(s) %s",
                        ", ".join(str(c.id) for c in granted))
            for c in granted:
                c.evse.stop()
            return
        self.orphan_since = self.clock.monotonic()
        for c in granted:
            c.limits.set(ORPHAN_CLAIM, self.policy.limit_a)
        log.warning("daemon gone: connector(s) %s go on at most %g A for %g s",
                    ", ".join(str(c.id) for c in granted), self.policy.limit_a, self.policy.grace_s)

    def status_changed(self, connector_id: int, status: EvseStatus) -> None:
        """The safety loop's thread, after a step that changed the status (before the next step).

        While no daemon is attached, the EV leaving ends the grant: it was that car's. Kept, the
        next car plugged in would charge with nobody's authorization, and the daemon, back, would
        bill it to the transaction of the car that left."""
        c = self.connectors[connector_id]
        was, c.cp_state = c.cp_state, status.cp_state
        if status.cp_state is CpState.A and was in PLUGGED and status.charging_allowed \
                and not self.controller_attached:
            c.evse.stop()
            c.ev_left_at = self.clock.time()
            log.warning("connector %d: the EV left while no daemon was attached: energy is no longer "
                        "granted there (the next car waits for the daemon)", connector_id)

    def orphan_left_s(self) -> float | None:
        """Seconds of grace left while orphaned, else None."""
        if self.orphan_since is None:
            return None
        return max(0.0, self.orphan_since + self.policy.grace_s - self.clock.monotonic())

    def tick(self) -> None:
        """Called a few times a second: ends the grace when it is over."""
        left = self.orphan_left_s()
        if left is None or left > 0:
            return
        self.orphan_since = None
        stopped = [c.id for c in self.connectors.values() if c.evse.status.charging_allowed]
        for c in self.connectors.values():
            c.evse.stop()
        if stopped:
            log.warning("daemon did not come back within %g s: energy stopped on connector(s) %s",
                        self.policy.grace_s, ", ".join(map(str, stopped)))

    # ------------------------------------------------------------------ requests
    def handle(self, request: Request, *, control: bool) -> dict[str, Any]:
        """The answer's fields for a checked request; WireError if refused (nothing changed then)."""
        if not control and request.op not in wire.READ_ONLY_OPS:
            raise WireError("read_only", "this peer may read the state, not change it")
        f = request.fields
        if request.op in ("hello", "state"):
            return {"connectors": [self.connector_state(c) for c in self.connectors.values()]}
        if request.op == "leaving":
            self.leaving, self.leaving_for_good = True, f["for_good"]
            return {}
        c = self._connector(f["connector"])
        handler = getattr(self, "_op_" + request.op)
        result: dict[str, Any] = handler(c, f)
        return result

    def _connector(self, connector_id: int) -> Guarded:
        c = self.connectors.get(connector_id)
        if c is None:
            raise WireError("bad_field", f"no connector {connector_id}")
        return c

    def _op_claim(self, c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
        amps = f["amps"]
        if amps is not None:
            ceiling = self.ceiling_a(c)
            if amps > ceiling:
                raise WireError("refused", f"{amps:g} A is above the connector's rating of {ceiling:g} A "
                                           f"({self._ceiling_source(c)})")
        c.limits.set(f["name"], amps)
        return {"resolved_a": _finite(c.limits.resolve().amps)}

    def ceiling_a(self, c: Guarded) -> float:
        """The most a claim may ask: the station's rating, and the cable's while one is plugged in."""
        own = [c.limits.get(name) for name in ("station", "cable")]
        values = [v for v in own if v is not None]
        return min(values) if values else math.inf

    def _ceiling_source(self, c: Guarded) -> str:
        cable, station = c.limits.get("cable"), c.limits.get("station")
        return "the cable" if cable is not None and (station is None or cable <= station) else "the station"

    def _op_energy(self, c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
        if f["granted"]:
            if not c.operative:
                raise WireError("refused", f"connector {c.id} is unavailable")
            c.evse.allow()
            c.ev_left_at = None
        else:
            c.evse.stop()
        return {}

    def _op_availability(self, c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
        c.operative = f["operative"]
        if not c.operative:
            c.evse.stop()
        return {}

    def _op_output_test(self, c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
        refusal = c.evse.begin_output_test(contactor=f["contactor"], duty=f["duty"], hold_s=f["hold_s"])
        if refusal:
            raise WireError("refused", refusal)
        return {}

    def _op_output_test_end(self, c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
        c.evse.end_output_test()
        return {}

    def _op_clear_faults(self, c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
        cleared = c.evse.clear_faults()
        return {"cleared": cleared, "reason": None if cleared else c.evse.clear_refusal}

    def _op_lock(self, c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
        if c.lock is None:
            raise WireError("refused", f"connector {c.id} has no plug lock")
        if not f["locked"] and c.evse.status.contactor_closed:
            raise WireError("refused", "the plug stays locked while the contactor is closed")
        confirmed = c.lock.set_locked(f["locked"])
        return {"confirmed": bool(confirmed), "locked": c.lock.locked()}

    def _op_phases(self, c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
        refusal = c.evse.phases.request(f["phases"])
        if refusal:
            raise WireError("refused", refusal)
        return {}

    def _op_sim(self, c: Guarded, f: dict[str, Any]) -> dict[str, Any]:
        if c.world is None or self._sim_action is None:
            raise WireError("refused", "only on the simulated hardware (hal.backend = \"sim\")")
        return self._sim_action(c, f)

    # ------------------------------------------------------------------ state
    def connector_state(self, c: Guarded) -> dict[str, Any]:
        """Everything the daemon mirrors of a connector: status, readings, claims, availability."""
        evse = c.evse
        ohms = evse.proximity_ohms
        return {
            "connector": c.id,
            "status": wire.status_fields(evse.status),
            "levels": wire.levels_fields(evse.pilot_levels),
            "pp_ohms": "open" if ohms is not None and math.isinf(ohms) else ohms,
            "claims": c.limits.snapshot(),
            "operative": c.operative,
            "output_test": evse.output_test_active,
            "heartbeat_check": evse.heartbeat_check.report,
            "locked": None if c.lock is None else c.lock.locked(),
            "ev_left_at": c.ev_left_at,
        }


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None
