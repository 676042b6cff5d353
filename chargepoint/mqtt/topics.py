"""The topic layout, in one place: what is published where, and which topics are commands.

``<prefix>`` is ``[mqtt] topic_prefix`` (default ``chargepoint/<identity>``)::

    <prefix>/availability              online | offline (retained; offline is the broker's last will)
    <prefix>/station                   the station and its CSMS link (retained JSON)
    <prefix>/energy                    with a grid meter: solar mode, grid/PV/house/station/surplus power
    <prefix>/station/cmd/<name>        station commands: mode (when enabled)
    <prefix>/connector/<n>/state       IEC state, status, activity, currents, binding limit (retained JSON)
    <prefix>/connector/<n>/meter       power, energy, current and voltage per phase (retained JSON)
    <prefix>/connector/<n>/session     the running or the last session (retained JSON)
    <prefix>/connector/<n>/fault       faults now present (retained JSON)
    <prefix>/connector/<n>/plan        with a grid meter: the departure plan and its state in words
    <prefix>/connector/<n>/event       session_started, session_stopped, fault, fault_cleared (JSON)
    <prefix>/connector/<n>/cmd/<name>  commands: start, stop, availability, limit, plan (when enabled)
    <prefix>/cmd/result                what a command did (JSON)
"""

from __future__ import annotations

from dataclasses import dataclass

#: The commands a connector's topic may carry.
COMMANDS = ("start", "stop", "availability", "limit", "plan")
#: The commands the station's topic may carry.
STATION_COMMANDS = ("mode",)


@dataclass(frozen=True)
class Topics:
    prefix: str

    @property
    def availability(self) -> str:
        return f"{self.prefix}/availability"

    @property
    def station(self) -> str:
        return f"{self.prefix}/station"

    @property
    def energy(self) -> str:
        return f"{self.prefix}/energy"

    @property
    def command_result(self) -> str:
        return f"{self.prefix}/cmd/result"

    @property
    def command_filter(self) -> str:
        """What the station subscribes to when commands are on: the connectors' commands ..."""
        return f"{self.prefix}/connector/+/cmd/+"

    @property
    def station_command_filter(self) -> str:
        """... and the station's."""
        return f"{self.prefix}/station/cmd/+"

    def station_command(self, name: str) -> str:
        return f"{self.prefix}/station/cmd/{name}"

    def parse_station_command(self, topic: str) -> str | None:
        """The name of a station command topic, or None if it is not one."""
        head = f"{self.prefix}/station/cmd/"
        return topic[len(head):] if topic.startswith(head) and "/" not in topic[len(head):] else None

    def connector(self, evse_id: int, leaf: str) -> str:
        return f"{self.prefix}/connector/{evse_id}/{leaf}"

    def command(self, evse_id: int, name: str) -> str:
        return f"{self.prefix}/connector/{evse_id}/cmd/{name}"

    def parse_command(self, topic: str) -> tuple[str, str] | None:
        """(connector text, command name) of a command topic, or None if it is not one of ours."""
        head = f"{self.prefix}/connector/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head):].split("/")
        if len(parts) != 3 or parts[1] != "cmd":
            return None
        return parts[0], parts[2]


def default_prefix(identity: str) -> str:
    return f"chargepoint/{identity}"
