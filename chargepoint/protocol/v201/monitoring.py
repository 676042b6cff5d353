"""OCPP 2.0.1 variable monitoring (the N block's monitors) over the core's ``VariableMonitoring``.

SetVariableMonitoring, ClearVariableMonitoring, SetMonitoringBase,
SetMonitoringLevel and GetMonitoringReport are translated here (a block the
adapter routes to the 2.0.1 peer), and the core's monitor events go out as NotifyEvent
(``MonitorEvents``, run by the adapter while connected). A monitor's target is
one variable of one component instance of the device model, written as text the
core keeps without reading it (``target_of``); the device model gives its value.

What can be watched (``supports_monitoring`` in a report): the measured power of
each EVSE (thresholds, delta, periodic), the availability state of the station,
each EVSE and connector, and each connector's Problem (a fault; delta and
periodic: a state is not a number to compare with a threshold).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ocpp.exceptions import OccurrenceConstraintViolationError, OCPPError
from ocpp.routing import after, on
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action, EventNotificationEnumType, EventTriggerEnumType

from chargepoint.core.monitoring import (
    PERIODIC,
    THRESHOLDS,
    Monitor,
    MonitorEvent,
    MonitorKind,
    Refusal,
    VariableMonitoring,
)
from chargepoint.protocol.common.block import Block
from chargepoint.protocol.common.timefmt import iso_utc
from chargepoint.protocol.v201.context import Context201
from chargepoint.protocol.v201.events import EVENT_IDS
from chargepoint.protocol.v201.monitor_words import BASES, KINDS, MONITORABLE, WORD_OF_KIND, monitorable
from chargepoint.protocol.v201.provisioning import report_chunks
from chargepoint.protocol.v201.reports import matches
from chargepoint.protocol.v201.variables import ITEMS_PER_REPORT, ITEMS_PER_REQUEST, WRITE_ONLY, Variable

if TYPE_CHECKING:
    from chargepoint.core.station import Station
    from chargepoint.protocol.v201.device_model import Address, DeviceModel

log = logging.getLogger(__name__)

#: GetMonitoringReport's monitoringCriteria -> the kinds each names.
CRITERIA = {"ThresholdMonitoring": THRESHOLDS, "DeltaMonitoring": (MonitorKind.DELTA,),
            "PeriodicMonitoring": PERIODIC}
#: A refusal's status and why (2.0.1 has no OutOfRange status: Rejected, with the reason).
_REFUSALS = {Refusal.OUT_OF_RANGE: ("Rejected", "ValueOutOfRange"), Refusal.DUPLICATE: ("Duplicate", None),
             Refusal.REJECTED: ("Rejected", "UnsupportedParam")}
_REFUSAL_WORDS = {Refusal.OUT_OF_RANGE: "the value is outside the variable's range",
                  Refusal.DUPLICATE: "a monitor of this type and severity watches the variable already",
                  Refusal.REJECTED: "severity 0 to 9, a known monitor id, at most 100 monitors"}


def target_of(address: Address) -> str:
    """The text the core keeps for one variable of one component instance."""
    var, evse_id, connector_id = address
    return "|".join((var.component, str(evse_id or ""), str(connector_id or ""), var.name,
                     var.instance or ""))


def _component(address: Address) -> dict[str, Any]:
    var, evse_id, connector_id = address
    out: dict[str, Any] = {"name": var.component}
    if evse_id is not None:
        out["evse"] = {"id": evse_id}
        if connector_id is not None:
            out["evse"]["connector_id"] = connector_id
    return out


def _variable(var: Variable) -> dict[str, Any]:
    return {"name": var.name} if var.instance is None else {"name": var.name, "instance": var.instance}


def _info(code: str, text: str) -> dict[str, str]:
    return {"reason_code": code, "additional_info": text[:512]}


class Targets:
    """The device model's addresses by target text, and their values now."""

    def __init__(self, model: DeviceModel) -> None:
        self.model = model
        self.by_target = {target_of(a): a for a in model.addresses()}

    def read(self, target: str) -> str | None:
        address = self.by_target.get(target)
        if address is None:
            return None
        var, evse_id, _ = address
        return self.model.value(var, "Actual", evse_id)

    def limits(self, address: Address) -> tuple[float | None, float | None]:
        """The values a threshold may take: the variable's range (the power: 0 to the rating)."""
        var, evse_id, _ = address
        if var.fact == "power_w":
            rating = self.model.value(var, "MaxSet", evse_id)
            return 0.0, float(rating) if rating is not None else None
        found = self.model.characteristics(var)
        return found.get("min_limit"), found.get("max_limit")


class MonitoringHandlers(Block[Context201]):
    """The N block's monitor handlers, over the device model."""

    def __init__(self, context: Context201) -> None:
        super().__init__(context)
        #: Monitoring reports taken and not yet sent, by requestId.
        self._pending_monitor_reports: dict[int, list[dict[str, Any]]] = {}

    @property
    def _monitoring(self) -> VariableMonitoring:
        return self.context.device_model.station.monitoring  # type: ignore[union-attr]

    @on(Action.set_variable_monitoring)
    async def on_set_variable_monitoring(self, set_monitoring_data: list[dict[str, Any]], **_: Any) -> Any:
        _check_items(len(set_monitoring_data), "SetVariableMonitoring")
        targets = Targets(self.context.device_model)
        results = [self._set_one(targets, item) for item in set_monitoring_data]
        await self._monitoring.save()
        return call_result.SetVariableMonitoring(set_monitoring_result=results)

    def _set_one(self, targets: Targets, item: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": item["type"], "severity": item["severity"],
                               "component": item["component"], "variable": item["variable"]}
        found = self.context.device_model.resolve(item["component"], item["variable"])
        if isinstance(found, str):
            return {**out, "status": found}
        var, evse_id, _ = found
        if not monitorable(var) or var.mutability == WRITE_ONLY:
            return {**out, "status": "Rejected",
                    "status_info": _info("UnsupportedParam", f"{var.key} cannot be monitored")}
        kind = KINDS[item["type"]]
        if kind in THRESHOLDS and not MONITORABLE[(var.component, var.name)]:
            return {**out, "status": "UnsupportedMonitorType",
                    "status_info": _info("UnsupportedParam", f"{var.key} is not a number: no threshold")}
        monitor = Monitor(int(item.get("id") or 0), target_of(found), kind, float(item["value"]),
                          int(item["severity"]), bool(item.get("transaction", False)), evse_id)
        refusal = self._monitoring.refusal(monitor, targets.limits(found))
        if refusal is not None:
            status, code = _REFUSALS[refusal]
            if code is not None:
                out["status_info"] = _info(code, _REFUSAL_WORDS[refusal])
            return {**out, "status": status}
        installed = self._monitoring.install(monitor, targets.read(monitor.target))
        return {**out, "status": "Accepted", "id": installed.id}

    @on(Action.clear_variable_monitoring)
    async def on_clear_variable_monitoring(self, id: list[int], **_: Any) -> Any:  # noqa: A002
        _check_items(len(id), "ClearVariableMonitoring")
        found = await self._monitoring.clear(id)
        return call_result.ClearVariableMonitoring(clear_monitoring_result=[
            {"id": i, "status": "Accepted" if hit else "NotFound"} for i, hit in found.items()])

    @on(Action.set_monitoring_base)
    async def on_set_monitoring_base(self, monitoring_base: str, **_: Any) -> Any:
        await self._monitoring.set_base(BASES[monitoring_base])
        return call_result.SetMonitoringBase(status="Accepted")

    @on(Action.set_monitoring_level)
    async def on_set_monitoring_level(self, severity: int, **_: Any) -> Any:
        accepted = await self._monitoring.set_level(severity)
        return call_result.SetMonitoringLevel(status="Accepted" if accepted else "Rejected")

    # ---------------------------------------------------------------- report
    @on(Action.get_monitoring_report)
    def on_get_monitoring_report(self, request_id: int, monitoring_criteria: list[str] | None = None,
                                 component_variable: list[dict[str, Any]] | None = None, **_: Any) -> Any:
        items = self._monitor_report(monitoring_criteria, component_variable)
        if not items:
            return call_result.GetMonitoringReport(status="EmptyResultSet")
        self._pending_monitor_reports[request_id] = items
        return call_result.GetMonitoringReport(status="Accepted")

    def _monitor_report(self, criteria: list[str] | None,
                        wanted: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
        """MonitoringData items: per variable, its monitors of the kinds asked for."""
        kinds = {k for c in criteria or CRITERIA for k in CRITERIA[c]}
        targets = Targets(self.context.device_model)
        grouped: dict[str, list[Monitor]] = {}
        for monitor in sorted(self._monitoring.monitors.values(), key=lambda m: m.id):
            address = targets.by_target.get(monitor.target)
            if address is None or monitor.kind not in kinds:
                continue
            if wanted and not any(matches(address, entry) for entry in wanted):
                continue
            grouped.setdefault(monitor.target, []).append(monitor)
        return [{"component": _component(targets.by_target[t]),
                 "variable": _variable(targets.by_target[t][0]),
                 "variable_monitoring": [
                     {"id": m.id, "transaction": m.transaction, "value": m.value,
                      "type": WORD_OF_KIND[m.kind], "severity": m.severity} for m in monitors]}
                for t, monitors in grouped.items()]

    @after(Action.get_monitoring_report)
    async def send_monitoring_report(self, request_id: int, **_: Any) -> None:
        items = self._pending_monitor_reports.pop(request_id, None)
        if items is None:
            return
        chunks = report_chunks(items)
        generated_at = datetime.fromtimestamp(self.context.device_model.clock(), tz=UTC).isoformat() \
            .replace("+00:00", "Z")
        for seq_no, chunk in enumerate(chunks):
            request = call.NotifyMonitoringReport(request_id=request_id, seq_no=seq_no,
                                                  generated_at=generated_at, monitor=chunk,
                                                  tbc=seq_no < len(chunks) - 1)
            try:
                await self.context.call(request)
            except (OCPPError, TimeoutError) as exc:
                log.warning("monitoring report %d: part %d of %d not delivered (%s)", request_id, seq_no + 1,
                            len(chunks), type(exc).__name__ if isinstance(exc, TimeoutError) else exc)
                return
        log.info("monitoring report %d sent in %d part(s)", request_id, len(chunks))


class MonitorEvents:
    """The core's monitor events as NotifyEvent CALLs, while one connection lasts."""

    def __init__(self, model: DeviceModel, station: Station, send: Any) -> None:
        self.model = model
        self.station = station
        self._send = send

    async def run(self) -> None:
        """Take the monitor events (first those of the offline time) until the connection ends."""
        monitoring = getattr(self.station, "monitoring", None)
        if monitoring is None:
            return
        targets = Targets(self.model)

        def emit(events: list[MonitorEvent]) -> None:
            self._emit(targets, events)

        monitoring.connect(targets.read, self._running, emit)
        try:
            await asyncio.Event().wait()
        finally:
            monitoring.disconnect(emit)

    def _running(self, evse_id: int | None) -> bool:
        return any(evse == evse_id or evse_id is None for evse, _ in self.station.active_transactions())

    def _emit(self, targets: Targets, events: list[MonitorEvent]) -> None:
        """NotifyEvent parts of at most ``ITEMS_PER_REPORT`` events, numbered, tbc on all but the last."""
        data = [self._event(targets, e) for e in events if e.monitor.target in targets.by_target]
        parts = [data[i:i + ITEMS_PER_REPORT] for i in range(0, len(data), ITEMS_PER_REPORT)]
        generated_at = iso_utc(self.station.clock.time())
        for seq_no, part in enumerate(parts):
            self._send(call.NotifyEvent(generated_at=generated_at, seq_no=seq_no, event_data=part,
                                        tbc=seq_no < len(parts) - 1 or None))

    def _event(self, targets: Targets, event: MonitorEvent) -> dict[str, Any]:
        monitor = event.monitor
        address = targets.by_target[monitor.target]
        trigger = (EventTriggerEnumType.alerting if monitor.kind in THRESHOLDS else
                   EventTriggerEnumType.delta if monitor.kind is MonitorKind.DELTA else
                   EventTriggerEnumType.periodic)
        out: dict[str, Any] = {
            "event_id": next(EVENT_IDS), "timestamp": iso_utc(event.at), "trigger": trigger.value,
            "actual_value": event.value[:2500],
            "event_notification_type": EventNotificationEnumType.custom_monitor.value,
            "variable_monitoring_id": monitor.id,
            "component": _component(address), "variable": _variable(address[0]),
        }
        if monitor.kind in THRESHOLDS:
            out["cleared"] = event.cleared
        transaction = self._transaction_of(monitor.evse_id)
        if transaction is not None:
            out["transaction_id"] = transaction
        return out

    def _transaction_of(self, evse_id: int | None) -> str | None:
        for evse, tx in self.station.active_transactions():
            if evse_id is None or evse == evse_id:
                return tx.local_id
        return None


def _check_items(count: int, action: str) -> None:
    if count > ITEMS_PER_REQUEST:
        raise OccurrenceConstraintViolationError(
            description=f"{action} with {count} items; at most {ITEMS_PER_REQUEST} "
                        f"(MonitoringCtrlr.ItemsPerMessage[{action}])")
