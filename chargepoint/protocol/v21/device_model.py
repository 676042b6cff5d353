"""The 2.1 device model: 2.0.1's, with the tariff and cost controller of a station that prices sessions.

``TariffCostCtrlr`` tells a CSMS that the station takes tariffs and computes
costs (both available and enabled: the engine is always on) and in which
currency its own tariff (``[home]``) counts. They are facts of the station,
read-only; the fallback messages a 2.1 CSMS may set for a display are not
kept (the station's display shows no tariff text yet).
"""

from __future__ import annotations

from typing import Any

from chargepoint.protocol.v201.device_model import UNKNOWN_COMPONENT, UNKNOWN_VARIABLE, Address, DeviceModel
from chargepoint.protocol.v201.variables import Variable

TARIFF_COST = tuple(
    Variable("TariffCostCtrlr", name, "boolean", instance=instance, fact="true", constant=True)
    for name in ("Available", "Enabled") for instance in ("Tariff", "Cost")
) + (Variable("TariffCostCtrlr", "Currency", "string", fact="home_currency", constant=True),)


class DeviceModel21(DeviceModel):
    """The 2.0.1 device model and ``TARIFF_COST``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for var in TARIFF_COST:
            self._variables[(var.component.lower(), var.name.lower(), (var.instance or "").lower())] = var
            self._components[var.component.lower()] = var.component

    def resolve(self, component: dict[str, Any], variable: dict[str, Any]) -> Address | str:
        """2.0.1's; the tariff and cost controller is the station's own component (no EVSE, no instance)."""
        if str(component.get("name", "")).lower() != "tariffcostctrlr":
            return super().resolve(component, variable)
        if component.get("instance") or component.get("evse"):
            return UNKNOWN_COMPONENT
        var = self._variables.get(("tariffcostctrlr", str(variable.get("name", "")).lower(),
                                   str(variable.get("instance") or "").lower()))
        return UNKNOWN_VARIABLE if var is None else (var, None, None)

    def _fact(self, fact: str, attribute: str, evse_id: int | None) -> str | None:
        if fact == "home_currency":
            return self.settings.config.home.currency
        return super()._fact(fact, attribute, evse_id)
