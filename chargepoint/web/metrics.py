"""Prometheus metrics (``/metrics``): a collector that reads the station when scraped.

Nothing is counted twice: energy, power, currents, states, the queue and the
link are read from the station service at scrape time; the safety loop's step
durations from its own ``TickTimes``; failed meter reads from the station's
count; only the OCPP messages by action and result are counted here
(``ocppstats``), because nothing else keeps them. A scrape builds a few dozen
samples from in-memory state, so it runs on the event loop.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from chargepoint.control.service import StationService
from chargepoint.safety.ticktimes import BOUNDS
from chargepoint.web.ocppstats import MessageCounter

#: What ``/metrics`` answers with (the classic text format, which every Prometheus reads).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StationCollector(Collector):
    def __init__(self, service: StationService, messages: MessageCounter) -> None:
        self.service = service
        self.messages = messages
        self.started = time.monotonic()

    def collect(self) -> Iterator[Metric]:
        s = self.service
        ids = list(s.station.connectors)
        connectors = [s.connector_status(e) for e in ids]
        yield from self._meters(connectors)
        yield from self._states(connectors)
        yield self._ticks(ids)
        yield from self._supervisor()
        yield from self._link()
        yield from self._energy()
        up = GaugeMetricFamily("chargepoint_uptime_seconds", "Seconds since the daemon started.")
        up.add_metric([], time.monotonic() - self.started)
        yield up

    def _meters(self, connectors: list[dict[str, Any]]) -> Iterator[Metric]:
        energy = CounterMetricFamily("chargepoint_energy_import_wh",
                                     "Energy import register of the connector's meter (Wh).",
                                     labels=["connector"])
        power = GaugeMetricFamily("chargepoint_power_w", "Active power drawn (W).", labels=["connector"])
        current = GaugeMetricFamily("chargepoint_current_a", "Current drawn per phase (A).",
                                    labels=["connector", "phase"])
        offered = GaugeMetricFamily("chargepoint_current_offered_a",
                                    "Current offered to the EV by the pilot's PWM (A); 0 without PWM.",
                                    labels=["connector"])
        limit = GaugeMetricFamily("chargepoint_limit_a",
                                  "Resolved current limit and the claim that binds (A).",
                                  labels=["connector", "binding"])
        failures = CounterMetricFamily("chargepoint_meter_read_failures",
                                       "Failed meter reads since the daemon started.", labels=["connector"])
        for c in connectors:
            cid = str(c["id"])
            meter = c["meter"]
            if meter["energy_wh"] is not None:
                energy.add_metric([cid], meter["energy_wh"])
            if meter["power_w"] is not None:
                power.add_metric([cid], meter["power_w"])
            for phase, amps in enumerate(meter["currents_a"] or (), start=1):
                if amps is not None:
                    current.add_metric([cid, f"L{phase}"], amps)
            if c["offered_a"] is not None:
                offered.add_metric([cid], c["offered_a"])
            if c["limit"]["amps"] is not None:
                limit.add_metric([cid, c["limit"]["binding"] or ""], c["limit"]["amps"])
            view = self.service.station.view(c["id"])
            failures.add_metric([cid], view.meter_failures_total)
        yield from (energy, power, current, offered, limit, failures)

    def _states(self, connectors: list[dict[str, Any]]) -> Iterator[Metric]:
        status = GaugeMetricFamily("chargepoint_connector_status",
                                   "1 for the connector's current status as sent to the CSMS.",
                                   labels=["connector", "status"])
        iec = GaugeMetricFamily("chargepoint_iec_state",
                                "1 for the control pilot's IEC 61851 state (A-F; 'none' out of every band).",
                                labels=["connector", "state"])
        contactor = GaugeMetricFamily("chargepoint_contactor_closed",
                                      "1 while the contactor is commanded closed.", labels=["connector"])
        faults = GaugeMetricFamily("chargepoint_fault_active", "1 for each fault the safety loop holds.",
                                   labels=["connector", "fault"])
        for c in connectors:
            cid = str(c["id"])
            status.add_metric([cid, c["ocpp_status"]], 1)
            iec.add_metric([cid, c["iec_state"] or "none"], 1)
            contactor.add_metric([cid], 1 if c["contactor"]["closed"] else 0)
            for fault in c["faults"]:
                faults.add_metric([cid, fault], 1)
        yield from (status, iec, contactor, faults)

    def _ticks(self, ids: list[int]) -> Metric:
        family = HistogramMetricFamily("chargepoint_safety_tick_seconds",
                                       "Time one step of the safety loop takes (real time).",
                                       labels=["connector"])
        for evse_id in ids:
            times = getattr(self.service.station.hardware(evse_id).evse, "tick_times", None)
            if times is None:
                continue
            counts, total = times.snapshot()
            buckets, running = [], 0
            for bound, count in zip((*map(repr, BOUNDS), "+Inf"), counts, strict=True):
                running += count
                buckets.append((bound, running))
            family.add_metric([str(evse_id)], buckets, total)
        return family

    def _supervisor(self) -> Iterator[Metric]:
        """The safety supervisor (its own process): reachable, stepping, and any orphan grace running."""
        read = self.service.daemon.supervisor
        if read is None:
            return
        s = read()
        up = GaugeMetricFamily("chargepoint_supervisor_up",
                               "1 while the safety supervisor answers its channel.")
        up.add_metric([], 1 if s["connected"] else 0)
        lost = CounterMetricFamily("chargepoint_supervisor_disconnects",
                                   "Times the channel to the safety supervisor dropped.")
        lost.add_metric([], s["disconnects"])
        yield from (up, lost)
        if not s["connected"]:
            return
        longest = GaugeMetricFamily("chargepoint_supervisor_step_max_seconds",
                                    "Longest step of the supervisor's safety loops since its start.")
        longest.add_metric([], (s["step_max_ms"] or 0) / 1000)
        realtime = GaugeMetricFamily("chargepoint_supervisor_realtime",
                                     "1 when the supervisor runs SCHED_FIFO with its memory locked.")
        realtime.add_metric([], 1 if s["sched"] == "fifo" and s["memory_locked"] else 0)
        orphan = GaugeMetricFamily("chargepoint_supervisor_orphan_seconds_left",
                                   "Grace left for a connector charging while no daemon is attached "
                                   "(0: none).")
        orphan.add_metric([], s["orphan_left_s"] or 0)
        yield from (longest, realtime, orphan)

    def _link(self) -> Iterator[Metric]:
        s = self.service
        standalone = s.config.ocpp.standalone
        configured = GaugeMetricFamily("chargepoint_csms_configured",
                                       "1 if a CSMS is configured; 0 on a standalone station.")
        configured.add_metric([], 0 if standalone else 1)
        yield configured
        if not standalone:  # a standalone station has no link: a 0 here would be a false alert
            connected = GaugeMetricFamily("chargepoint_csms_connected", "1 while the CSMS connection is up.")
            connected.add_metric([], 1 if s.link.connected.is_set() else 0)
            reconnects = CounterMetricFamily("chargepoint_csms_reconnects",
                                             "Connections to the CSMS after the first one.")
            reconnects.add_metric([], max(0, s.link.connections - 1))
            yield from (connected, reconnects)
        outbox = GaugeMetricFamily("chargepoint_outbox_length",
                                   "Transaction messages queued for the CSMS (persistent outbox).")
        outbox.add_metric([], len(s.outbox))
        messages = CounterMetricFamily("chargepoint_ocpp_messages",
                                       "OCPP CALLs answered, by who sent them, action and result "
                                       "('ok', a CALLERROR code, or 'no_answer').",
                                       labels=["direction", "action", "result"])
        for (direction, action, result), n in sorted(self.messages.counts.items()):
            messages.add_metric([direction, action, result], n)
        yield from (outbox, messages)


    def _energy(self) -> Iterator[Metric]:
        """With a grid meter: the power flow (W), the solar mode and each connector's departure plan."""
        manager = self.service.energy
        if manager is None:
            return
        status = manager.status()
        power = status.get("power") or {}
        for name, key, what in (
                ("grid", "grid_w", "at the house connection (+ import from the grid, - export)"),
                ("pv", "pv_w", "the PV system makes (only where a PV reading exists)"),
                ("surplus", "surplus_w", "of solar surplus the station may use"),
                ("house_net", "house_net_w", "the house uses, the sun netted in (a grid meter sees both)"),
                ("station", "station_w", "the station draws")):
            if power.get(key) is not None:
                gauge = GaugeMetricFamily(f"chargepoint_{name}_power_w", f"Power (W) {what}.")
                gauge.add_metric([], power[key])
                yield gauge
        mode = GaugeMetricFamily("chargepoint_solar_mode", "1 for the solar mode in force.", labels=["mode"])
        mode.add_metric([status["mode"]], 1)
        meter = GaugeMetricFamily("chargepoint_grid_meter_ok", "1 while the grid meter reads (not stale).")
        meter.add_metric([], 1 if status["grid_meter"]["state"] == "ok" else 0)
        plan = GaugeMetricFamily("chargepoint_plan_energy_wh",
                                 "A connector's departure plan: the energy asked for and charged (Wh).",
                                 labels=["connector", "what"])
        for c in status["connectors"]:
            p = c.get("plan")
            if p is not None and p["state"] in ("solar", "grid"):
                plan.add_metric([str(c["id"]), "asked"], p["energy_wh"])
                plan.add_metric([str(c["id"]), "charged"], p["charged_wh"])
        yield from (mode, meter, plan)


def registry_for(service: StationService, messages: MessageCounter) -> CollectorRegistry:
    """A registry of this daemon's own (not prometheus_client's global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StationCollector(service, messages))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    return generate_latest(registry)
