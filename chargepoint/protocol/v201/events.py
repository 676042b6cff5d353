"""Faults as 2.0.1 NotifyEvent messages: a connector's Problem variable going true and false.

1.6 carries a fault in StatusNotification's errorCode; 2.0.1's StatusNotification
only says Faulted, and the fault itself is an event of the device model: the
Connector component's ``Problem`` variable, with the station's fault name as the
techCode. A fault is reported when it appears and again, cleared, when it goes.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

from ocpp.v201 import call
from ocpp.v201.enums import EventNotificationEnumType, EventTriggerEnumType

from chargepoint.core.events import StatusChanged
from chargepoint.protocol.common.timefmt import iso_utc

#: Event ids go on rising across connections of one run (seeded by the time, so a restart does not
#: reuse the ids of the run before within a CSMS's memory); the monitors' NotifyEvents draw from it too,
#: so no two events of the station share an id.
EVENT_IDS = itertools.count(int(time.time()) % 1_000_000 * 1000)


class Notifications:
    """Turns the faults in status changes into NotifyEvent CALLs, each handed to ``send``."""

    def __init__(self, send: Callable[[Any], None]) -> None:
        self._send = send
        #: EVSE -> the fault last reported (None: none).
        self._faults: dict[int, str | None] = {}

    def fault_changed(self, status: StatusChanged) -> None:
        fault = status.fault or status.warning
        previous = self._faults.get(status.evse_id)
        if fault == previous:
            return
        self._faults[status.evse_id] = fault
        events = []
        if previous is not None:
            events.append(self._event(status, previous, cleared=True))
        if fault is not None:
            events.append(self._event(status, fault, cleared=False))
        self._send(call.NotifyEvent(generated_at=iso_utc(status.timestamp), seq_no=0, event_data=events))

    @staticmethod
    def _event(status: StatusChanged, fault: str, cleared: bool) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": next(EVENT_IDS),
            "timestamp": iso_utc(status.timestamp),
            "trigger": EventTriggerEnumType.delta.value,
            "actual_value": "false" if cleared else "true",
            "event_notification_type": EventNotificationEnumType.hard_wired_notification.value,
            "component": {"name": "Connector",
                          "evse": {"id": status.evse_id, "connector_id": status.connector_id}},
            "variable": {"name": "Problem"},
            "tech_code": fault,
        }
        if cleared:
            event["cleared"] = True
        if status.info and not cleared:
            event["tech_info"] = status.info[:500]
        return event
