"""The station service API: what the local surfaces may see and do, in one place.

The control socket (and the web dashboard, MQTT and metrics after it) reach the
station only through this object: views the station builds (``core.views``),
commands it decides (start, stop, availability, unlock), the settings in the
words of the OCPP version spoken, the CSMS link and queue, the recent log, and
the technician's tests, which go through the safety loop. Nothing here reaches
into the station's state or re-derives what the station decided. Results are
JSON-ready dicts; a refusal is a ``ControlError`` with a code and a reason.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import chargepoint
from chargepoint.config import Config
from chargepoint.connection import Link
from chargepoint.control import link as link_view
from chargepoint.control.errors import ControlError
from chargepoint.control.output_tests import TestRefused, TestTarget, output_test_refusal
from chargepoint.control.session_figures import finished_figures, running_figures
from chargepoint.control.settings_view import SettingsView, secret_names
from chargepoint.control.shapes import (
    connector_json,
    cost_json,
    display_json,
    last_problems,
    number,
    reservation_json,
    text_or_none,
)
from chargepoint.core.commands import UnlockResult
from chargepoint.core.energy.energy_words import limit_words
from chargepoint.core.events import Activity, IdToken, StopReason, TokenType
from chargepoint.core.operator_limit import OperatorLimits
from chargepoint.core.services import Services
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Outbox
from chargepoint.core.storage.store import Store
from chargepoint.protocol.registry import VERSIONS, Version
from chargepoint.safety.status import LATCHED_FAULTS
from hal.clock import Clock

if TYPE_CHECKING:
    from chargepoint.core.energy.manager import EnergyManager

log = logging.getLogger(__name__)

class EventLog(Protocol):
    """The daemon's recent events and frames (``app.recorder.Recorder``)."""

    @property
    def last_seq(self) -> int: ...

    def select(self, *, kind: str = "all", since: int = 0, limit: int = 50,
               min_level: int = 0) -> list[dict[str, Any]]: ...

    def last_error(self, prefix: str) -> str | None: ...


@dataclasses.dataclass
class DaemonState:
    """What only the daemon knows, read when asked: its store, session and watchdog."""

    store: Callable[[], Store | None]
    #: Whether the CSMS has accepted the BootNotification on the current connection.
    boot_accepted: Callable[[], bool]
    #: The systemd watchdog: (notifications enabled, failure text or None).
    watchdog: Callable[[], tuple[bool, str | None]]
    #: The simulated worlds per EVSE (empty on real hardware) and the card reader.
    worlds: dict[int, Any] = dataclasses.field(default_factory=dict)
    card_reader: Any = None
    #: The owner's cards (core/cards.py), for ``chargepoint cards``.
    cards: Any = None
    #: The safety supervisor as the daemon sees it (supervisor/client.py ``summary``); None when
    #: the safety loops run in this process (tests, the energy demos).
    supervisor: Callable[[], dict[str, Any]] | None = None


class StationService:
    """One daemon's station as the local surfaces see it."""

    def __init__(self, *, config: Config, station: Station, outbox: Outbox, settings: Settings, clock: Clock,
                 link: Link, recorder: EventLog, version: Version, daemon: DaemonState,
                 operator_limits: OperatorLimits | None = None, services: Services | None = None,
                 energy: EnergyManager | None = None) -> None:
        self.config = config
        self.station = station
        self.outbox = outbox
        self.settings = settings
        self.clock = clock
        self.link = link
        self.recorder = recorder
        self.version = version
        self.daemon = daemon
        # A version without a settings view of its own shows them in the words of one that has.
        catalogue = version.catalogue or next(v.catalogue for v in VERSIONS.values() if v.catalogue)
        self.keys = catalogue(settings, len(station.connectors))
        #: Names whose value is a password, in lower case (any name of it, whatever version is spoken):
        #: never logged.
        self.secret_keys = secret_names(config)
        self.started_monotonic = time.monotonic()
        #: EVSEs with an output test (relay/pilot/selftest) running.
        self.testing: set[int] = set()
        self.operator_limits = operator_limits or OperatorLimits(station)
        #: Load management and solar charging (``core.energy.EnergyManager``), None without a grid meter.
        self.energy = energy
        #: Firmware, certificates, charging profiles and the display (core/services.py).
        self.services = services or Services()

    def use_version(self, version: Version) -> None:
        """The CSMS chose ``version``: statuses, and settings where it has its own view, in its words."""
        self.version = version
        if version.catalogue is not None:
            self.keys = version.catalogue(self.settings, len(self.station.connectors))

    @property
    def store(self) -> Store | None:
        return self.daemon.store()

    # ---------------------------------------------------------------- lookup
    def evse_id(self, value: int | None) -> int:
        if value is None or value not in self.station.connectors:
            raise ControlError("no_connector", f"no connector {value}; this station has "
                                               f"{', '.join(map(str, self.station.connectors))}")
        return value

    def test_target(self, evse_id: int) -> TestTarget:
        def session() -> IdToken | None:
            view = self.station.view(evse_id)
            return view.session.token if view.session else None
        return TestTarget(evse_id, self.station.hardware(evse_id).evse, session)

    # ---------------------------------------------------------------- status
    def connection_status(self) -> dict[str, Any]:
        connected = self.link.connected.is_set()
        boot = None if not connected else ("accepted" if self.daemon.boot_accepted() else "pending")
        return {"csms_url": self.config.ocpp.csms_url, "standalone": self.config.ocpp.standalone,
                "connected": connected, "boot": boot,
                "ocpp_version": self.version.name if connected else None,
                "connections": self.link.connections,
                "security_profile": self.settings.current.security_profile,
                "last_error": self.recorder.last_error("chargepoint.connection")
                or self.recorder.last_error("chargepoint.protocol"),
                **link_view.outage_json(self.link)}

    def queue_status(self) -> dict[str, Any]:
        head = self.outbox.head()
        head_info = None
        if head is not None:
            event = head.event
            head_info = {"seq": head.seq, "type": type(event).__name__, "local_id": event.local_id,
                         "connector": event.evse_id, "remote_id": self.outbox.remote_id(event.local_id)}
        age = self.outbox.oldest_age(self.clock.time())
        return {"length": len(self.outbox), "oldest_age_s": number(age, 1), "head": head_info,
                "thinned": self.outbox.thinned, "connected": self.link.connected.is_set(),
                "standalone": self.config.ocpp.standalone}

    def queue_list(self) -> dict[str, Any]:
        """The queue's summary and its waiting messages (kind, transaction, age), oldest first."""
        messages = link_view.queue_messages(self.outbox, self.clock.time())
        return {**self.queue_status(), "messages": messages,
                "not_listed": max(0, len(self.outbox) - len(messages))}

    async def reconnect(self, force: bool = False) -> dict[str, Any]:
        """Connect to the CSMS again now (an offline link stops waiting for its backoff).

        A healthy link is kept unless ``force``."""
        if self.config.ocpp.standalone:
            raise ControlError("bad_request", "no CSMS is configured (ocpp.csms_url): nothing to reconnect")
        healthy = self.link.connected.is_set() and self.daemon.boot_accepted()
        return {**await link_view.reconnect(self.link, healthy=healthy, force=force),
                "csms_url": self.config.ocpp.csms_url}

    def connector_status(self, evse_id: int) -> dict[str, Any]:
        v = self.station.view(evse_id)
        out = connector_json(v, self.version.status_word(v.status), self.outbox.remote_id,
                             self.clock.time(), evse_id in self.testing)
        engine = self.services.smart_charging
        change = engine.next_change.get(evse_id) if engine is not None else None
        out["limit"]["smart_charging_changes_at"] = number(change, 0)
        energy = self.energy.status() if self.energy is not None else None
        out["limit"]["words"] = limit_words(v.limit.binding, v.limit.amps, energy, evse_id)
        if out["session"] is not None:  # whose card, by name, for the dashboard and MQTT
            card = self.daemon.cards.get(out["session"]["id_tag"]) if self.daemon.cards else None
            out["session"]["card_name"] = card.name if card is not None else None
            tx = out["session"]["transaction"]
            if tx is not None:  # the sun's part of it, where a grid meter tells
                tx.update(running_figures(evse_id, tx["energy_wh"], self.energy))
        out["measured"] = self.measured(evse_id)
        return out

    def measured(self, evse_id: int) -> dict[str, Any]:
        """The safety loop's last reading of the pilot's plateaus and the PP resistor (looked at first)."""
        evse = self.station.hardware(evse_id).evse
        levels, pp = evse.pilot_levels, evse.proximity_ohms
        return {"cp_high_v": number(levels.high_v, 2) if levels else None,
                "cp_low_v": number(levels.low_v, 2) if levels else None,
                "pp_ohms": number(pp, 0) if pp is not None else None,
                "pp_open": pp is not None and math.isinf(pp)}

    def status(self, evse_id: int | None = None) -> dict[str, Any]:
        chosen = [self.evse_id(evse_id)] if evse_id is not None else list(self.station.connectors)
        systemd, failed = self.daemon.watchdog()
        return {
            "identity": self.config.station.identity,
            "version": chargepoint.__version__,
            "hal": self.config.hal_backend,
            "time": self.clock.time(),
            "uptime_s": round(time.monotonic() - self.started_monotonic, 1),
            "station_status": self.version.status_word(self.station.status_of(0)),
            "worst_connector": self.worst_connector(),
            "connection": self.connection_status(),
            "queue": self.queue_status(),
            "watchdog": {"systemd": systemd, "failed": failed},
            "supervisor": self.daemon.supervisor() if self.daemon.supervisor is not None else None,
            "connectors": [self.connector_status(e) for e in chosen],
            "reservations": [reservation_json(r) for r in self.station.reservations.all()],
            "display": display_json(self.services.display_messages),
            "energy": self.energy.status() if self.energy is not None else None,
            "last_errors": last_problems(
                self.recorder.select(kind="events", limit=200, min_level=logging.WARNING), 5),
        }

    def worst_connector(self) -> dict[str, Any]:
        """The connector in the worst state (faulted, inoperative, in use), for the status header."""
        def severity(evse_id: int) -> int:
            s = self.station.status_of(evse_id)
            in_use = s.plugged or s.activity is not Activity.IDLE
            return 3 if s.fault else 2 if not s.operative else 1 if in_use else 0
        worst = max(self.station.connectors, key=severity)
        return {"id": worst, "ocpp_status": self.version.status_word(self.station.status_of(worst)),
                "severity": severity(worst)}

    async def sessions(self, limit: int) -> dict[str, Any]:
        if not 1 <= limit <= 1000:
            raise ControlError("bad_request", "limit must be 1 to 1000")
        store = self.store
        rows = await store.call(store.recent_sessions, limit) if store is not None else []
        finished = []
        for row in rows:
            energy = row["meter_stop_wh"] - row["meter_start_wh"]  # type: ignore[operator]
            reason = row["reason"]
            finished.append({
                "local_id": row["local_id"], "remote_id": text_or_none(row["remote_id"]),
                "connector": row["connector_id"], "id_tag": row["id_tag"], "started_at": row["started_at"],
                "stopped_at": row["stopped_at"],
                "duration_s": number(row["stopped_at"] - row["started_at"], 1),  # type: ignore[operator]
                "meter_start_wh": row["meter_start_wh"], "meter_stop_wh": row["meter_stop_wh"],
                "energy_wh": number(energy, 1),
                "reason": StopReason.parse(reason).value if isinstance(reason, str) else None,
                "card_name": row.get("card_name"), "standalone": bool(row.get("standalone"))})
            finished[-1].update(finished_figures(finished[-1], self.energy))
        running, cards = [], self.daemon.cards
        for evse_id in self.station.connectors:
            v = self.station.view(evse_id)
            tx = v.session.transaction if v.session else None
            if tx is None:
                continue
            running.append({"local_id": tx.local_id, "remote_id": self.outbox.remote_id(tx.local_id),
                            "connector": evse_id, "id_tag": tx.token.value if tx.token else None,
                            "started_at": tx.started_at,
                            "duration_s": number(self.clock.time() - tx.started_at, 1),
                            "meter_start_wh": tx.meter_start_wh, "energy_wh": number(tx.energy_wh or 0.0, 1),
                            "card_name": getattr(cards.get(tx.token.value) if cards and tx.token else None,
                                                 "name", None),
                            "standalone": self.outbox.is_local(tx.local_id),
                            "cost": cost_json(tx.cost) if tx.cost is not None else None,
                            **running_figures(evse_id, tx.energy_wh, self.energy)})
        return {"running": running, "finished": finished}

    # --------------------------------------------------------------- actions
    def start(self, id_tag: str | None, evse_id: int | None, authorize: bool) -> dict[str, Any]:
        value = id_tag or self.config.station.free_vend_id_tag
        if not isinstance(value, str) or not 1 <= len(value) <= 20:
            raise ControlError("bad_request", "id_tag must be 1 to 20 characters (an OCPP idTag)")
        if evse_id is not None:
            self.evse_id(evse_id)
        token = IdToken(value, TokenType.LOCAL)
        if not id_tag and not self.config.station.free_vend and \
                self.station.start_refusal(evse_id, token, None) is None:
            # The free vend tag would start a session that nobody may start on this station.
            raise ControlError("refused", "no card given and this station is not free vend "
                                          "(station.free_vend = false): name the card that starts it "
                                          "(--id-tag)")
        result = self.station.remote_start(token, evse_id, authorize_first=authorize)
        if not result.accepted:
            off = [v.evse_id for v in map(self.station.view, self.station.connectors) if not v.operative
                   and (result.evse_id is None or v.evse_id == result.evse_id)]
            inoperative = off and "inoperative" in result.refusal
            hint = f" (chargepoint availability {off[0]} operative)" if inoperative else ""
            raise ControlError("refused", result.refusal + hint)
        if authorize:
            return {"connector": evse_id, "id_tag": value, "status": "Authorizing"}
        return {"connector": result.evse_id, "id_tag": value, "status": "Accepted",
                "waiting_for_ev": result.waiting_for_ev}

    async def stop(self, evse_id: int | None) -> dict[str, Any]:
        if evse_id is None:
            busy = [e for e in self.station.connectors if self.station.view(e).session is not None]
            if len(busy) != 1:
                raise ControlError("refused", "no session to stop" if not busy else
                                   "sessions on several connectors: say which (--connector)")
            evse_id = busy[0]
        else:
            self.evse_id(evse_id)
        session = self.station.view(evse_id).session
        if session is None:
            raise ControlError("refused", f"connector {evse_id} has no session")
        tx = session.transaction
        if tx is None and session.token is not None:
            await self.station.card_presented(session.token)  # a second tap cancels a waiting session
            return {"connector": evse_id, "stopped": "session", "local_id": None, "remote_id": None,
                    "energy_wh": None}
        if not await self.station.stop_transaction(evse_id, StopReason.LOCAL):
            raise ControlError("refused", f"the transaction on connector {evse_id} is already stopping")
        reading = self.station.view(evse_id).last_reading
        energy = (reading.energy_import_wh - tx.meter_start_wh) if reading else None
        return {"connector": evse_id, "stopped": "transaction", "local_id": tx.local_id,
                "remote_id": self.outbox.remote_id(tx.local_id), "energy_wh": number(energy, 1)}

    async def unlock(self, evse_id: int) -> dict[str, Any]:
        result = await self.station.unlock(self.evse_id(evse_id))
        if result is not UnlockResult.UNLOCKED:
            reason = ("this connector has no plug lock (a tethered cable)" if result is UnlockResult.NO_LOCK
                      else "the lock's feedback did not confirm unlocking")
            raise ControlError("unlock_failed", f"connector {evse_id}: {reason}")
        return {"connector": evse_id, "status": "Unlocked"}

    def availability(self, evse_id: int, operative: bool | None) -> dict[str, Any]:
        if operative is None:
            return {"connectors": [{"id": v.evse_id, "operative": v.operative,
                                    "scheduled_operative": v.scheduled_operative}
                                   for v in map(self.station.view, self.station.connectors)]}
        if evse_id != 0:
            self.evse_id(evse_id)
        status = self.station.change_availability(evse_id, operative)
        return {"connector": evse_id, "operative": operative, "status": status.value.capitalize()}

    async def limit(self, evse_id: int | None, amps: float | None) -> dict[str, Any]:
        """The operator's own limit on one connector (None: every one); ``amps`` None clears it."""
        targets = [self.evse_id(evse_id)] if evse_id is not None else list(self.station.connectors)
        refusal = self.operator_limits.refusal(amps)
        if refusal is not None:
            raise ControlError("bad_request", refusal)
        await self.operator_limits.set(targets, amps)
        return {"connectors": [{"id": e, "operator_a": self.operator_limits.get(e),
                                "limit": self.connector_status(e)["limit"]} for e in targets]}

    # ---------------------------------------------------------------- config
    def file_settings(self) -> dict[str, Any]:
        """The configuration file's settings as dotted keys (read-only at run time)."""
        return SettingsView(self).file_settings()

    def config_get(self, keys: list[str]) -> dict[str, Any]:
        """Settings and file keys under any of their names (``settings_view``)."""
        return SettingsView(self).get(keys)

    def config_set(self, key: str, value: str) -> dict[str, Any]:
        return SettingsView(self).set(key, value)

    def config_reset(self, key: str) -> dict[str, Any]:
        """Drop what the CSMS or the CLI set for ``key``: the file's value (or the default) applies again."""
        return SettingsView(self).reset(key)

    # ---------------------------------------------------------------- faults
    async def fault_clear(self, evse_id: int) -> dict[str, Any]:
        evse = self.station.hardware(self.evse_id(evse_id)).evse
        before = evse.status.faults
        latched = sorted(f.value for f in before & LATCHED_FAULTS)
        if not latched:
            return {"connector": evse_id, "cleared": [], "remaining": sorted(f.value for f in before),
                    "detail": "no latched fault to clear" + (
                        " (the others clear by themselves once their cause is gone)" if before else "")}
        since = self.recorder.last_seq  # to find the safety loop's reason below
        # clear_faults re-arms the fault inputs and reads the contactor feedback: hardware I/O.
        cleared = await asyncio.to_thread(evse.clear_faults)
        after = evse.status.faults
        if not cleared:
            said = [e["text"] for e in self.recorder.select(kind="events", since=since, limit=0,
                                                            min_level=logging.WARNING)]
            raise ControlError("refused", f"connector {evse_id}: faults not cleared ({', '.join(latched)}): "
                               + (said[-1] if said else "the cause is still present"))
        return {"connector": evse_id, "cleared": latched, "remaining": sorted(f.value for f in after),
                "detail": "cleared"}

    async def exclusive_test(self, evse_id: int, test: Callable[[TestTarget], Any]) -> dict[str, Any]:
        """Run one output test on ``evse_id``, never two at once on a connector."""
        self.evse_id(evse_id)
        if evse_id in self.testing:
            raise ControlError("busy", f"a test is already running on connector {evse_id}")
        target = self.test_target(evse_id)
        refusal = output_test_refusal(target)
        if refusal is not None:
            raise ControlError("refused", f"connector {evse_id}: {refusal}")
        self.testing.add(evse_id)
        try:
            return await test(target)
        except TestRefused as exc:
            raise ControlError("refused", f"connector {evse_id}: {exc}") from None
        finally:
            self.testing.discard(evse_id)
