"""OCPP 2.0.1 GetReport: a custom report of the device model, by component criteria and/or by name.

``componentVariable`` names what to report: a component (all its instances when
no EVSE is named, all connectors of an EVSE when no connector is), and
optionally one variable of it (all of them when none; every instance of the
variable when no instance is named). ``componentCriteria``
keeps the components that have the criterion's variable true: Available,
Enabled, Problem (a connector with a fault), Active (no component of this
station has one). Given both, the named parts of the components that meet a
criterion are reported; given neither, the whole model. A report with nothing
in it is EmptyResultSet; otherwise it is answered Accepted and sent afterwards
as NotifyReport parts, exactly as a base report (``provisioning``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chargepoint.protocol.v201.device_model import Address, DeviceModel

#: The criteria: the variable of a component that must be true for it to be reported.
CRITERIA = ("Active", "Available", "Enabled", "Problem")


def matches(address: Address, entry: dict[str, Any]) -> bool:
    """Whether one ComponentVariable entry names this variable of this component instance."""
    var, evse_id, connector_id = address
    component = entry.get("component") or {}
    if str(component.get("name", "")).lower() != var.component.lower() or component.get("instance"):
        return False
    evse = component.get("evse")
    if evse is not None:
        if evse.get("id") != evse_id:
            return False
        if evse.get("connector_id") is not None and evse["connector_id"] != connector_id:
            return False
    variable = entry.get("variable")
    if variable is None:
        return True
    if str(variable.get("name", "")).lower() != var.name.lower():
        return False
    instance = variable.get("instance")
    return instance is None or str(instance).lower() == (var.instance or "").lower()


def instance_of(address: Address) -> tuple[str, int | None, int | None]:
    var, evse_id, connector_id = address
    return var.component, evse_id, connector_id


def meeting(model: DeviceModel, criteria: list[str]) -> set[tuple[str, int | None, int | None]]:
    """The component instances with one of ``criteria``'s variables true now."""
    out = set()
    for address in model.addresses():
        var, evse_id, _ = address
        if var.name in criteria and var.instance is None and model.value(var, "Actual", evse_id) == "true":
            out.add(instance_of(address))
    return out


def custom_report(model: DeviceModel, criteria: list[str] | None,
                  wanted: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """ReportData items of a GetReport, in table order."""
    chosen = list(model.addresses())
    if criteria:
        keep = meeting(model, criteria)
        chosen = [a for a in chosen if instance_of(a) in keep]
    if wanted:
        chosen = [a for a in chosen if any(matches(a, entry) for entry in wanted)]
    return [item for item in map(model.report_data, chosen) if item is not None]

