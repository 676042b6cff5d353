"""Run-time settings the operator can read and change (OCPP configuration keys).

One store with typed definitions: the 1.6 adapter shows it as configuration
keys, a 2.0.1 adapter would show the same values as device-model variables.
Initial values come from the configuration file; values the CSMS changes are
kept here (and, with the persistent store, survive a restart).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from chargepoint.config import MEASURANDS, Config


class SetResult(StrEnum):
    ACCEPTED = "Accepted"
    REJECTED = "Rejected"
    REBOOT_REQUIRED = "RebootRequired"
    NOT_SUPPORTED = "NotSupported"


Value = int | bool | str


@dataclass(frozen=True)
class Definition:
    """A setting's name, type and rules."""

    name: str
    kind: type  # int, bool or str (comma-separated lists are str)
    readonly: bool = False
    low: int | None = None
    high: int | None = None
    allowed: tuple[str, ...] | None = None  # for comma-separated lists
    reboot_required: bool = False


def _definitions() -> list[Definition]:
    return [
        Definition("HeartbeatInterval", int, low=1, high=86400),
        Definition("MeterValueSampleInterval", int, low=0, high=86400),
        Definition("MeterValuesSampledData", str, allowed=MEASURANDS),
        Definition("AuthorizeRemoteTxRequests", bool),
        Definition("ConnectionTimeOut", int, low=1, high=3600),
        Definition("NumberOfConnectors", int, readonly=True),
        Definition("WebSocketPingInterval", int, low=0, high=3600),
    ]


class Settings:
    """Typed key/value settings with validation on every write."""

    def __init__(self, config: Config) -> None:
        self.definitions = {d.name: d for d in _definitions()}
        self._values: dict[str, Value] = {
            "HeartbeatInterval": config.ocpp.heartbeat_interval_s,
            "MeterValueSampleInterval": config.ocpp.meter_value_sample_interval_s,
            "MeterValuesSampledData": ",".join(config.ocpp.meter_values_sampled_data),
            "AuthorizeRemoteTxRequests": config.ocpp.authorize_remote_tx_requests,
            "ConnectionTimeOut": int(config.station.connection_timeout_s),
            "NumberOfConnectors": len(config.connectors),
            "WebSocketPingInterval": int(config.ocpp.ping_interval_s),
        }
        self.listeners: list[Callable[[str, Value], None]] = []

    def get(self, name: str) -> Value:
        return self._values[name]

    def csl(self, name: str) -> list[str]:
        """A comma-separated list setting as a list."""
        value = str(self._values[name])
        return [item.strip() for item in value.split(",") if item.strip()]

    def set(self, name: str, text: str) -> SetResult:
        """Change a setting from its text form, as the CSMS sends it."""
        definition = self.definitions.get(name)
        if definition is None:
            return SetResult.NOT_SUPPORTED
        if definition.readonly:
            return SetResult.REJECTED
        value = self._parse(definition, text)
        if value is None:
            return SetResult.REJECTED
        self._values[name] = value
        for listener in list(self.listeners):
            listener(name, value)
        return SetResult.REBOOT_REQUIRED if definition.reboot_required else SetResult.ACCEPTED

    @staticmethod
    def _parse(d: Definition, text: str) -> Value | None:
        text = text.strip()
        if d.kind is bool:
            lowered = text.lower()
            return {"true": True, "false": False}.get(lowered)
        if d.kind is int:
            try:
                number = int(text)
            except ValueError:
                return None
            if (d.low is not None and number < d.low) or (d.high is not None and number > d.high):
                return None
            return number
        if d.allowed is not None:
            items = [item.strip() for item in text.split(",") if item.strip()]
            if any(item not in d.allowed for item in items):
                return None
            return ",".join(items)
        return text

    def as_text(self, name: str) -> str:
        value = self._values[name]
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
