"""The daemon: builds the station from its configuration and runs it.

``chargepoint run`` on a station, the demo and the integration tests all run
this same assembly; only the hal backend differs. Assembly order follows the
direction of knowledge: hardware first, then the safety loops, then the
station, then the link to the CSMS.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from chargepoint.app.jobs import start_jobs
from chargepoint.app.maintenance import Maintenance
from chargepoint.app.recorder import Recorder
from chargepoint.app.statelock import StateLock
from chargepoint.app.watchdog import SafetyLoop, Watchdog
from chargepoint.backends import Hardware, build_hardware
from chargepoint.backends.grid import build_grid_meter
from chargepoint.config import Config
from chargepoint.connection import Credentials, Link, LinkSettings
from chargepoint.control.server import ControlServer
from chargepoint.control.service import DaemonState, StationService
from chargepoint.core.boot import BootReason, Registration, begin_run, end_run
from chargepoint.core.cards import CardAuthorization, LocalCards
from chargepoint.core.display_messages import DisplayMessages
from chargepoint.core.energy.manager import EnergyManager
from chargepoint.core.energy.schedule import Supply
from chargepoint.core.energy.smart_charging import SmartCharging
from chargepoint.core.energy_connectors import StationConnectors
from chargepoint.core.events import IdToken, StopReason, TokenType
from chargepoint.core.operator_limit import OperatorLimits
from chargepoint.core.security.security_log import SecurityEvent
from chargepoint.core.security.security_profile import ProfileSwitch
from chargepoint.core.security.services import Security
from chargepoint.core.services import Services
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage import atomic
from chargepoint.core.storage.outbox import Outbox
from chargepoint.core.storage.store import Store, StoreError
from chargepoint.protocol import registry
from chargepoint.web.ocppstats import MessageCounter
from hal.display import LogDisplay

log = logging.getLogger(__name__)

#: After the state database fails: time for the Faulted status to reach the CSMS before the exit.
STORE_FAILURE_GRACE_S = 2.0


class Daemon:
    """One running charge point: hardware, safety loops, station and CSMS link."""

    def __init__(self, config: Config, hardware: Hardware | None = None) -> None:
        self.config = config
        self.hardware = hardware or build_hardware(config)
        self.clock = self.hardware.clock
        #: The OCPP versions offered to the CSMS, preferred first; ``version`` is the one spoken
        #: (the preferred one until a CSMS has chosen).
        self.versions = tuple(registry.version(name) for name in config.ocpp.versions)
        self.version = self.versions[0]
        #: Why this run started, as the previous run left it in the state database.
        self.boot_reason = BootReason.POWER_UP
        #: Whether the CSMS registered this run: a reconnect is not a restart (core/boot.py).
        self.registered = Registration(self.boot_reason)
        self.settings = Settings(config)
        #: Certificates, the security log, signed firmware (core/security/services.py).
        self.security = Security(self.settings, self.clock, config.station.state_dir, config.station.identity)
        #: Guards the security profile and falls back when a raised one does not connect.
        self.profile_switch = ProfileSwitch(self.settings, config.ocpp.csms_url, self.security.log,
                                            lambda: self.security.has_own_certificate)
        self._connected_profile = config.ocpp.security_profile
        self.settings.listeners.append(self._setting_changed)
        #: Setting -> the version's key names it is also stored under (by earlier releases).
        self._stored_as: dict[str, list[str]] = {}
        self.outbox = Outbox(max_entries=config.station.outbox_max_entries)
        self.store: Store | None = None
        self.station = Station(
            self.hardware.connectors, self.clock, self.outbox, self.settings,
            free_vend_token=IdToken(config.station.free_vend_id_tag, TokenType.LOCAL)
            if config.station.free_vend else None,
            meter_poll_interval_s=config.meter.poll_interval_s,
            persist_availability=self._persist_availability,
        )
        #: Charging profiles -> the smart_charging claim; the operator's own limit -> the operator claim.
        self.smart_charging = SmartCharging(self.station, Supply(
            config.station.nominal_voltage_v, config.station.supply_phases))
        #: The operator's display messages, shown on the station's display (a logging one: no panel yet).
        self.display_messages = DisplayMessages(self.clock, self.settings, LogDisplay())
        self.operator_limits = OperatorLimits(self.station)
        #: The owner's cards; without a CSMS they decide who may charge (core/cards.py).
        self.cards = LocalCards(self.clock)
        if config.ocpp.standalone:
            self.outbox.standalone = True  # transactions are recorded, never queued for a CSMS
            self.station.authorization = CardAuthorization(self.settings, self.clock, self.cards)
        #: The adapter serving the current CSMS connection (None before the first).
        self.adapter: Any = None
        #: vendorId -> messageId -> handler(data) -> (status, data), for DataTransfer from the CSMS.
        self.data_transfer: dict[str, dict[str | None, Callable[[str | None], tuple[str, str | None]]]] = {}
        ocpp = config.ocpp
        self.link = Link(
            LinkSettings(
                url=ocpp.csms_url,
                identity=config.station.identity,
                subprotocol=self.version.subprotocol,
                subprotocols=tuple(v.subprotocol for v in self.versions),
                reconnect_min_s=ocpp.reconnect_min_s,
                reconnect_max_s=ocpp.reconnect_max_s,
                ping_timeout_s=ocpp.ping_timeout_s,
                ca_bundle=ocpp.ca_bundle,
            ),
            self._new_session,
            credentials=self._credentials,
            ping_interval=lambda: self.settings.current.ws_ping_interval_s,
            on_failure=self._connect_failed,
            on_connected=self.profile_switch.connected,
        )
        self._stopped = asyncio.Event()
        #: Set when the daemon stops to restart itself (a reset the CSMS asked for): "hard" or "soft".
        self.restart_requested: str | None = None
        #: Set when the daemon stops because something is broken (a hung safety loop).
        self.failure: str | None = None
        #: Recent events and OCPP frames, for the control API's ``logs`` and ``status``.
        self.recorder = Recorder(secret_names=tuple(
            name for v in registry.VERSIONS.values() for name in v.secret_names))
        #: OCPP CALLs by action and result, for the metrics.
        self.messages = MessageCounter()
        self.recorder.frame_listeners.append(self.messages.frame)
        self.started_monotonic = time.monotonic()
        self.watchdog: Watchdog | None = None
        #: Load management and solar charging (``[load] enabled``): the grid meter and the claims it sets;
        #: with a simulated grid meter, the simulated house behind it.
        self.energy: EnergyManager | None = None
        self.house: Any = None
        if config.load.enabled:
            grid_meter, self.house = build_grid_meter(config, self.hardware)
            self.energy = EnergyManager(StationConnectors(self.station), grid_meter, config, self.clock)
        #: Firmware updates, diagnostics and the log file.
        self.maintenance = Maintenance(self)
        #: Every service built around the station, for the adapters and the control API (core/services.py).
        self.services = Services(smart_charging=self.smart_charging, security=self.security,
                                 firmware=self.maintenance.firmware, diagnostics=self.maintenance.diagnostics,
                                 display_messages=self.display_messages)
        #: What the local surfaces (the control socket) may see and do.
        self.service = StationService(
            config=config, station=self.station, outbox=self.outbox, settings=self.settings,
            clock=self.clock, link=self.link, recorder=self.recorder, version=self.version,
            daemon=DaemonState(
                store=lambda: self.store,
                boot_accepted=lambda: self.adapter is not None and self.adapter.accepted.is_set(),
                watchdog=self._watchdog_state,
                worlds=self.hardware.worlds, card_reader=self.hardware.card_reader, cards=self.cards,
                supervisor=getattr(self.hardware.supervisor, "summary", None)),
            operator_limits=self.operator_limits, services=self.services, energy=self.energy)
        #: The MQTT feed (``[mqtt] enabled``): a local surface on the same service as the control socket.
        self.mqtt: Any = None
        if config.mqtt.enabled:
            from chargepoint.mqtt import MqttBridge  # the MQTT client library only where it is used

            self.mqtt = MqttBridge(self.service, config.mqtt)

    def _new_session(self, ws: Any) -> Any:
        """The adapter of the version the CSMS selected (the link offered only ours)."""
        self.messages.new_connection()
        version = registry.by_subprotocol(ws.subprotocol)
        assert version is not None, f"the link accepted subprotocol {ws.subprotocol!r}"
        if version is not self.version:
            log.info("the CSMS chose OCPP %s", version.name)
        self.version = version
        self.service.use_version(version)
        self.adapter = version.adapter(self.recorder.tap(ws), self.station, self.outbox, self.settings,
                                       self.config, self.clock, on_reset=self.reset,
                                       data_transfer=self.data_transfer, boot_reason=self.boot_reason,
                                       registered=self.registered,  # shared by the run's connections
                                       services=self.services)
        return self.adapter

    def _watchdog_state(self) -> tuple[bool, str | None]:
        watchdog = self.watchdog
        return bool(watchdog and watchdog.notifier.enabled), watchdog.failed if watchdog else None

    def _card_from_thread(self, loop: asyncio.AbstractEventLoop) -> object:
        def presented(id_tag: str) -> None:
            token = IdToken(id_tag, TokenType.ISO14443)
            loop.call_soon_threadsafe(
                lambda: asyncio.ensure_future(self.station.card_presented(token)))
        return presented

    # ------------------------------------------------------------ settings
    def _credentials(self) -> Credentials:
        """What the next connection presents: read at every connect, so changes apply then."""
        return Credentials(self.settings.current.security_profile,
                           self.settings.current.authorization_key,
                           client_certificate=str(self.security.certificates.pair_path),
                           csms_roots=self.security.csms_roots, now=self.clock.time())

    def _connect_failed(self, exc: BaseException, event: tuple[SecurityEvent, str] | None) -> None:
        """A connection attempt failed: a security event if it is one; maybe back to the previous profile."""
        if event is not None:
            self.security.log.record(*event)
        self.profile_switch.failed()

    def _setting_changed(self, name: str, value: object) -> None:
        if self.store is not None:
            if name in self.settings.overridden:
                self.store.submit(self.store.save_setting, name, self.settings.as_text(name))
            else:  # config reset: the file's value applies again, also after a restart
                self.store.submit(atomic.forget_settings, self.store, [name, *self._stored_as.get(name, [])])
        if name == "security_profile" and value != self._connected_profile:
            log.info("security profile %s: reconnecting", value)
            self._connected_profile = int(value)  # type: ignore[call-overload]
            asyncio.ensure_future(self.link.reconnect())

    def _persist_availability(self, changes: dict[int, bool]) -> None:
        if self.store is not None:  # the connectors of one change together, also across a kill
            self.store.submit(atomic.save_availability, self.store, changes)

    # ------------------------------------------------------------- running
    async def run(self, state_lock: StateLock | None = None) -> None:
        """Run until ``stop()`` (or SIGTERM/SIGINT when installed).

        The state directory is this daemon's before the store is opened and
        until everything has stopped: a second daemon on it is refused with
        ``StateDirLocked`` having touched nothing (statelock.py). A caller that
        took the lock itself (``chargepoint run`` does, before it touches the
        board) passes it as ``state_lock`` and releases it.
        """
        lock = state_lock or StateLock(self.config.station.state_dir)
        try:
            await asyncio.to_thread(lock.acquire)  # nothing to do when the caller holds it
            await self._serve()
        finally:
            if state_lock is None:
                await asyncio.to_thread(lock.release)

    async def _serve(self) -> None:
        loop = asyncio.get_running_loop()
        # The dashboard's exposure rule first: a refused [web] stops the start before anything runs.
        web = None
        if self.config.web.enabled:
            # Imported only when enabled: aiohttp and prometheus-client cost a restart a quarter second.
            from chargepoint.web.server import WebServer

            web = await WebServer.prepare(self.service, self.messages)
        self.recorder.attach()
        recreate = self.config.station.recreate_corrupt_state
        try:
            self.store = await Store.open(self.config.station.state_dir, recreate_if_corrupt=recreate)
            await self.store.call(self.store.check_writable)  # an unwritable store fails here, clearly
            try:
                await self._restore(self.store)
            except StoreError as exc:
                # Damage the check at opening could not see (a queued message that no
                # longer decodes): the same recovery as for any other corruption.
                if not recreate:
                    raise
                await self.store.start_afresh(exc)
                await self._restore(self.store)
        except BaseException:
            if self.store is not None:
                await self.store.close()
                self.store = None
            self.recorder.detach()
            raise
        self.store.failure_listeners.append(self._store_failed_from_thread(loop))
        self.boot_reason = await self.store.call(begin_run, self.store)
        self.registered = Registration(self.boot_reason)
        # Each version offered loads off the event loop meanwhile (its adapter waits for an import under way).
        preload = asyncio.gather(*(asyncio.to_thread(registry.load, v.name) for v in self.versions))
        self.maintenance.attach_log()
        self.station.hold_for_recovery(await self.outbox.open_transactions(), self.hardware.continuing,
                                       self.hardware.ev_left)
        await self.station.start()
        self.security.log.record(SecurityEvent.STARTUP_OF_THE_DEVICE)
        self.smart_charging.start()
        self.display_messages.start(self.station)
        await self.maintenance.start()
        recovery = asyncio.ensure_future(self.station.recover(
            await self.outbox.open_transactions(), self.config.station.resume_after_power_loss))
        recovery.add_done_callback(lambda _: self.display_messages.recovered())
        reader = self.hardware.card_reader
        if reader is not None:
            reader.start(self._card_from_thread(loop))  # type: ignore[arg-type]
        if self.config.ocpp.standalone:
            log.info("no CSMS configured (ocpp.csms_url): standalone, %s; %d card(s) on the local card list",
                     "free vend" if self.config.station.free_vend else "cards only", len(self.cards.cards))
            link: asyncio.Future[None] = loop.create_future()  # nothing to connect to; cancelled at stop
        else:
            link = asyncio.ensure_future(self.link.run())
        jobs = start_jobs([*self.hardware.jobs, self.security.watch_expiry])
        control = ControlServer(self.service) if self.config.control.enabled else None
        if control is not None:
            await control.start()
        if self.mqtt is not None:
            jobs += start_jobs([self.mqtt.run])
        if self.energy is not None:
            jobs += start_jobs([self.energy.run])
        # systemd: READY=1 now that the hal, the store and the safety loops run; then
        # WATCHDOG=1 while the event loop and every safety loop are alive (watchdog.py).
        # Safety loops of this process only: the supervisor's are watched by its own unit's watchdog.
        own_loops = [] if self.hardware.supervisor is not None else [c.evse for c in self.hardware.connectors]
        self.watchdog = Watchdog(own_loops, on_hang=self._safety_loop_hung)
        await self.watchdog.ready(f"{self.config.station.identity}: "
                                  f"{len(self.hardware.connectors)} connector(s)")
        watchdog = asyncio.ensure_future(self.watchdog.run())
        log.info("station %s running with %d connector(s)", self.config.station.identity,
                 len(self.hardware.connectors))
        try:
            if web is not None:
                await web.start()
            await self._stopped.wait()
            self.watchdog.stopping(self.failure or "stopping")
            # From here no new transaction starts (a car plugged in now waits for the next start).
            self.station.transactions.closing = "the station is stopping"
            if self.store.failure is None:  # else nothing more can be recorded: a restart recovers
                if self.restart_requested is None:
                    await self.station.stop_all(StopReason.REBOOT)
                await self._drain_outbox(5.0)
                await self.store.call(end_run, self.store, BootReason.REMOTE_RESET if self.restart_requested
                                      else BootReason.APPLICATION_ERROR if self.failure else None)
        finally:
            await self._close_link()
            for task in (link, recovery, watchdog, *jobs):
                task.cancel()
            await asyncio.gather(link, recovery, watchdog, preload, *jobs, return_exceptions=True)
            if web is not None:
                await web.close()
            if control is not None:
                await control.close()
            if reader is not None:
                reader.close()
            self.smart_charging.close()
            await self.display_messages.close()
            if self.energy is not None:
                await self.energy.close()
            await self.maintenance.close()
            if self.hardware.supervisor is not None:  # a stop, or a restart that comes back within the grace
                self.hardware.supervisor.send("leaving", for_good=self.restart_requested is None
                                              and self.failure is None)
            await self.station.close()
            await self.store.close()
            self.watchdog.notifier.close()
            log.info("station stopped%s", " for a restart" if self.restart_requested else "")
            self.recorder.detach()
            self.maintenance.detach_log()

    async def _restore(self, store: Store) -> None:
        """Take over what the state database holds: the queue, the local lists, settings, availability.

        Everything is read before settings and availability are applied, and a
        file that fails to read is a ``StoreError`` with its path (the local
        lists' reader does not say which file), so a damaged database stops the
        daemon with one line or is set aside, never half-applied.
        """
        try:
            await self.outbox.attach(store)
            await self.station.authorization.attach(store)
            await self.cards.attach(store)
            await self.smart_charging.attach(store)
            await self.operator_limits.attach(store)
            await self.station.reservations.attach(store)
            await self.station.tariffs.attach(store, lambda: self.energy.mode if self.energy else "fast")
            await self.display_messages.attach(store)
            await self.station.monitoring.attach(store)
            if self.energy is not None:
                await self.energy.attach(store)
            await self.security.log.attach(store)
            await self.security.refresh()
            settings = await store.call(store.load_settings)
            availability = await store.call(store.load_availability)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{store.path}: cannot read the state database: {exc}") from exc
        self.settings.restore(self._neutral_names(settings))
        overrides = self.settings.overrides_text()
        if overrides:
            log.info("settings set by the CSMS or the CLI win over %s: %s (chargepoint config reset KEY "
                     "drops one)", self.config.source, overrides)
        self._connected_profile = self.settings.current.security_profile
        self.profile_switch.confirmed = self._connected_profile
        self.station.restore_availability(availability)

    async def _drain_outbox(self, timeout_s: float) -> None:
        """Give the CSMS a moment to receive what is queued: the queue does
        not outlive the process."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while len(self.outbox) and self.link.connected.is_set() \
                and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if len(self.outbox):
            log.warning("%d transaction message(s) not delivered before shutdown", len(self.outbox))

    async def _deliver_security_events(self, timeout_s: float) -> None:
        """Give the CSMS a moment to receive the security events (ResetOrReboot among them) and the
        station to note that it has: an event answered but not yet marked sent would go out twice."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.link.connected.is_set() and not self.security.log.declined \
                and await self.security.log.unsent() \
                and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    async def _close_link(self) -> None:
        """Close the CSMS connection with the code that says why, before the link is cancelled:
        1000 (normal) for a reset the CSMS asked for, 1001 (going away) for a stop, 1011 (internal
        error) only when the daemon ends on a failure."""
        if self.config.ocpp.standalone:
            return
        if self.restart_requested is not None:
            code, reason = 1000, f"{self.restart_requested} reset"
        elif self.failure is not None:
            code, reason = 1011, "the station failed"
        else:
            code, reason = 1001, "the station is stopping"
        try:
            await self.link.stop(code, reason)
        except Exception as exc:  # noqa: BLE001 - a connection already gone needs no close
            log.debug("closing the CSMS connection: %s", exc)

    async def reset(self, hard: bool) -> None:
        """The CSMS asked for a reset: end transactions, then restart.

        Soft waits for the CSMS to receive the stop messages; hard gives it
        only a moment. Either way the safety loops open the contactors on the
        way out and the process starts afresh (see ``chargepoint run``).
        """
        self.security.log.record(SecurityEvent.RESET_OR_REBOOT,
                                 f"{'hard' if hard else 'soft'} reset by the CSMS")
        await self.station.stop_all(StopReason.HARD_RESET if hard else StopReason.SOFT_RESET)
        await self._drain_outbox(1.0 if hard else 10.0)
        await self._deliver_security_events(1.0 if hard else 5.0)
        self.restart_requested = "hard" if hard else "soft"
        self.stop()

    def _neutral_names(self, stored: dict[str, str]) -> dict[str, str]:
        """Settings stored by earlier releases under a version's key name, under their neutral name.

        A value stored under the neutral name is newer and wins.
        """
        out = dict(stored)
        for name, text in stored.items():
            neutral = next(filter(None, (v.setting_of(name) for v in registry.VERSIONS.values())), None)
            if neutral is not None:
                self._stored_as.setdefault(neutral, []).append(name)  # config reset deletes these too
                if neutral not in stored:
                    out[neutral] = text
        return out

    def stop(self) -> None:
        self._stopped.set()

    def _store_failed_from_thread(self, loop: asyncio.AbstractEventLoop) -> Callable[[str], None]:
        def failed(reason: str) -> None:
            try:
                loop.call_soon_threadsafe(self._store_failed, reason)
            except RuntimeError:
                pass  # the loop has closed: the daemon is stopping anyway
        return failed

    def _store_failed(self, reason: str) -> None:
        """The state database cannot be written (disk full, read-only file system).

        No transaction can be recorded, so none may go on: the station stops energy
        and reports every connector Faulted with the reason; nothing that is not on
        disk goes to the CSMS (the outbox sends only committed entries). After a
        moment for the Faulted status to reach the CSMS the daemon exits with a
        failure, and systemd starts it again until the disk is writable; an open
        transaction is then stopped once, at its last persisted reading.
        """
        if self.failure is not None:
            return
        log.critical("state database cannot be written (%s): energy stopped, connectors Faulted; "
                     "exiting so the service restarts once the disk is writable", reason)
        self.station.storage_failed(reason)
        self.failure = f"state database: {reason}"
        asyncio.get_running_loop().call_later(STORE_FAILURE_GRACE_S, self.stop)

    def _safety_loop_hung(self, evse: SafetyLoop) -> None:
        """The watchdog found a safety loop that stopped stepping (its pings have stopped).

        Make that connector's outputs safe from another thread (``close`` writes them
        at once unless the loop hangs holding its lock), and stop with a failure so
        the service is restarted even without a systemd watchdog.
        """
        close = getattr(evse, "close", None)
        if close is not None:
            threading.Thread(target=close, name=f"rescue-{evse.name}", daemon=True).start()
        self.failure = self.watchdog.failed if self.watchdog else f"safety loop {evse.name} hung"
        self.stop()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
