"""The 2.0.1 words of variable monitoring and which variables of the device model can be watched.

Kept apart from ``monitoring.py`` (the handlers), so the device model
(``supports_monitoring``, MonitoringCtrlr's facts) can use them without
importing the handlers that use the device model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chargepoint.core.monitoring import Base, MonitorKind
from chargepoint.protocol.v201.variables import Variable

if TYPE_CHECKING:
    from chargepoint.core.station import Station

KINDS = {"UpperThreshold": MonitorKind.UPPER_THRESHOLD, "LowerThreshold": MonitorKind.LOWER_THRESHOLD,
         "Delta": MonitorKind.DELTA, "Periodic": MonitorKind.PERIODIC,
         "PeriodicClockAligned": MonitorKind.PERIODIC_CLOCK_ALIGNED}
WORD_OF_KIND = {kind: word for word, kind in KINDS.items()}
BASES = {"All": Base.ALL, "FactoryDefault": Base.FACTORY_DEFAULT, "HardWiredOnly": Base.HARDWIRED_ONLY}
WORD_OF_BASE = {base: word for word, base in BASES.items()}
#: The variables that can be watched: (component, variable) -> whether thresholds apply (a number).
MONITORABLE: dict[tuple[str, str], bool] = {
    ("EVSE", "Power"): True,
    ("ChargingStation", "AvailabilityState"): False,
    ("EVSE", "AvailabilityState"): False,
    ("Connector", "AvailabilityState"): False,
    ("Connector", "Problem"): False,
}
#: MonitoringCtrlr's facts (the device model asks ``monitoring_fact`` for these).
FACTS = ("monitoring_base", "monitoring_level")


def monitorable(var: Variable) -> bool:
    return (var.component, var.name) in MONITORABLE


def monitoring_fact(station: Station | None, fact: str) -> str | None:
    """MonitoringCtrlr.ActiveMonitoringBase / ActiveMonitoringLevel (None without a station)."""
    monitoring = getattr(station, "monitoring", None)
    if monitoring is None:
        return None
    return WORD_OF_BASE[monitoring.base] if fact == "monitoring_base" else str(monitoring.level)
