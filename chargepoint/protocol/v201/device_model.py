"""The OCPP 2.0.1 device model: GetVariables, SetVariables and base reports over the station's settings.

The variables (``variables.py``) are views of the same neutral settings the 1.6
configuration keys show, so a value set here is the value 1.6 GetConfiguration,
the technician's CLI and the state database see, checked by the same rules
(``core.settings``) and persisted the same way (the daemon stores every
accepted change). The rest are facts of the station: the configuration file,
the firmware, and, when the model is given the station, its live state
(availability, the local list, the measured power). Without a station those
live variables are not part of the model (the CLI's view has none).

Requests and results are the snake_case dicts the ``ocpp`` library passes to
and takes from handlers, so the provisioning handlers only route.
"""

from __future__ import annotations

import math
import string
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import chargepoint
from chargepoint.config.model import TX_START_POINTS_SUPPORTED
from chargepoint.core.energy import smart_charging
from chargepoint.core.events import Activity, StatusChanged
from chargepoint.core.security.network_profiles import NetworkProfiles
from chargepoint.core.services import Services
from chargepoint.core.settings import LOCAL_LIST_MAX_LENGTH, NETWORK_SLOTS, SetResult, Settings
from chargepoint.protocol.v201 import variables as v
from chargepoint.protocol.v201.display_words import capability_fact
from chargepoint.protocol.v201.monitor_words import FACTS as MONITORING_FACTS
from chargepoint.protocol.v201.monitor_words import monitorable, monitoring_fact
from chargepoint.protocol.v201.variables import (
    CONNECTOR,
    EVSE,
    READ_ONLY,
    STATION,
    TX_POINT_WORDS,
    VARIABLES,
    WRITE_ONLY,
    Variable,
)

if TYPE_CHECKING:
    from chargepoint.core.station import Station

ACCEPTED, REJECTED, REBOOT_REQUIRED = "Accepted", "Rejected", "RebootRequired"
UNKNOWN_COMPONENT, UNKNOWN_VARIABLE = "UnknownComponent", "UnknownVariable"
NOT_SUPPORTED_ATTRIBUTE = "NotSupportedAttributeType"
ACTUAL = "Actual"
#: GetBaseReport's bases.
CONFIGURATION_INVENTORY, FULL_INVENTORY, SUMMARY_INVENTORY = (
    "ConfigurationInventory", "FullInventory", "SummaryInventory")
#: Percent a limit must change by to be reported: 100, since the station reports no limit changes yet.
LIMIT_CHANGE_SIGNIFICANCE = 100
#: Facts only a running station knows (left out of a model built without one).
LIVE_FACTS = ("availability_state", "local_list_entries", "charging_profile_entries", "problem",
              *MONITORING_FACTS)
_DATA_KINDS = {"integer": "int", "boolean": "bool", "decimal": "float"}
_WORD_OF_POINT = {neutral: word for word, neutral in TX_POINT_WORDS.items()}
#: The points the station has a sensor for (the same for starts and stops).
_SEEN_POINTS = {word for word, neutral in TX_POINT_WORDS.items() if neutral in TX_START_POINTS_SUPPORTED}

#: A variable of one component instance: the variable, its EVSE and connector (None for the station's).
Address = tuple[Variable, int | None, int | None]


def _encode_tx_points(wire: str) -> str | None:
    """TxStartPoint / TxStopPoint in the station's words; None (refused, the list of the points it
    has sensors for said) for none, a repeated one, or one it cannot see (DataSigned,
    ParkingBayOccupancy)."""
    items = [i.strip() for i in wire.split(",") if i.strip()]
    if not items or len(set(items)) != len(items) or any(i not in _SEEN_POINTS for i in items):
        return None
    return ",".join(TX_POINT_WORDS[i] for i in items)


def _decode_tx_points(text: str) -> str:
    return ",".join(_WORD_OF_POINT[i] for i in text.split(",") if i)


#: passwordString (Part 2, primitive datatypes): the characters a 2.0.1 password may hold.
PASSWORD_CHARACTERS = frozenset(string.ascii_letters + string.digits + "*-_=:+|@.")
#: BasicAuthPassword: at least 16 characters, at most its maxLimit (which the spec puts at 40 to 64).
PASSWORD_LENGTH = (16, 40)


def password_refusal(wire: str) -> str | None:
    """Why a BasicAuthPassword is refused: its length, or a character outside passwordString."""
    low, high = PASSWORD_LENGTH
    if not low <= len(wire) <= high:
        return f"must be {low} to {high} characters"
    bad = sorted(set(wire) - PASSWORD_CHARACTERS)
    if bad:
        return f"may hold only letters, digits and * - _ = : + | @ . (not {''.join(bad)!r})"
    return None


def _encode_password(wire: str) -> str | None:
    """A 2.0.1 password is text; the station keeps the octets it sends, in hex (as 1.6 writes them)."""
    return wire.encode("utf-8").hex()


#: Wire text -> setting text (None: not a value of this variable), and back.
CODECS: dict[str, tuple[Callable[[str], str | None], Callable[[str], str]]] = {
    "tx_points": (_encode_tx_points, _decode_tx_points),
    "password": (_encode_password, lambda text: ""),
}


def availability_state(status: StatusChanged) -> str:
    """The 2.0.1 availability of a component from the station's facts (a fault wins)."""
    if status.fault:
        return "Faulted"
    if not status.operative:
        return "Unavailable"
    if status.plugged or status.activity is not Activity.IDLE:
        return "Occupied"
    return "Available"


class DeviceModel:
    """The components and variables of one station, answering in the ``ocpp`` library's dicts."""

    def __init__(self, settings: Settings, evse_count: int, *, station: Station | None = None,
                 services: Services | None = None, clock: Callable[[], float] | None = None) -> None:
        self.settings = settings
        self.evse_count = evse_count
        self.station = station
        self.services = services or Services()
        self.clock = clock or (station.clock.time if station is not None else time.time)
        self.network_profiles = NetworkProfiles(settings)
        self._variables = {(x.component.lower(), x.name.lower(), (x.instance or "").lower()): x
                           for x in VARIABLES if self._present(x)}
        self._components = {x.component.lower(): x.component for x in VARIABLES}

    def _present(self, var: Variable) -> bool:
        return self.station is not None or var.fact not in LIVE_FACTS

    # ------------------------------------------------------------ addresses
    def addresses(self) -> Iterator[Address]:
        """Every variable of every component instance, in table order."""
        for var in self._variables.values():
            if var.scope == STATION:
                yield var, None, None
            else:
                for evse_id in range(1, self.evse_count + 1):
                    yield var, evse_id, (1 if var.scope == CONNECTOR else None)

    def resolve(self, component: dict[str, Any], variable: dict[str, Any]) -> Address | str:
        """The address a request names, or the status saying what is unknown."""
        name = self._components.get(str(component.get("name", "")).lower())
        if name is None or component.get("instance"):
            return UNKNOWN_COMPONENT
        scope = v.SCOPES[name]
        evse = component.get("evse")
        evse_id = connector_id = None
        if scope == STATION:
            if evse:
                return UNKNOWN_COMPONENT
        else:
            if not evse or not 1 <= int(evse.get("id", 0)) <= self.evse_count:
                return UNKNOWN_COMPONENT
            evse_id, connector_id = int(evse["id"]), evse.get("connector_id")
            if (scope == EVSE) != (connector_id is None) or (scope == CONNECTOR and connector_id != 1):
                return UNKNOWN_COMPONENT
        var = self._variables.get((name.lower(), str(variable.get("name", "")).lower(),
                                   str(variable.get("instance") or "").lower()))
        return UNKNOWN_VARIABLE if var is None else (var, evse_id, connector_id)

    def attributes(self, var: Variable, evse_id: int | None) -> tuple[str, ...]:
        """The attribute types the variable has (the measured power only with a station)."""
        if var.fact == "power_w" and self.station is None:
            return tuple(a for a in var.attributes if a != ACTUAL)
        return var.attributes

    # --------------------------------------------------------------- values
    def value(self, var: Variable, attribute: str, evse_id: int | None) -> str | None:
        """An attribute's value as the wire writes it (None: write-only, or not known now)."""
        if var.mutability == WRITE_ONLY:
            return None
        if var.setting is not None:
            text = self.settings.as_text(var.setting)
            return CODECS[var.codec][1](text) if var.codec else text
        return self._fact(var.fact or "", attribute, evse_id)

    def _fact(self, fact: str, attribute: str, evse_id: int | None) -> str | None:
        config = self.settings.config
        ocpp, station = config.ocpp, config.station
        low, high = ocpp.reconnect_min_s, ocpp.reconnect_max_s
        simple: dict[str, object] = {
            "true": "true",
            # No file transfers (firmware, logs) yet: the list is empty.
            "file_transfer_protocols": "",
            "message_timeout_s": math.ceil(ocpp.response_timeout_s),
            # Every connection reports every status afresh after the boot, however short the outage.
            "offline_threshold_s": 0,
            "retry_wait_minimum_s": math.ceil(low),
            "retry_repeat_times": math.ceil(math.log2(high / low)) if high > low else 0,
            "retry_random_range_s": math.ceil(high - low),
            "bytes_per_frame": v.BYTES_PER_FRAME,
            "bytes_per_report": v.BYTES_PER_REPORT,
            "items_per_report": v.ITEMS_PER_REPORT,
            "items_per_request": v.ITEMS_PER_REQUEST,
            "configuration_value_size": v.CONFIGURATION_VALUE_SIZE,
            "reporting_value_size": v.REPORTING_VALUE_SIZE,
            "local_list_max": LOCAL_LIST_MAX_LENGTH,
            # Root certificates installed over OCPP (core/security/certificates.py; ca_bundle is a file).
            "certificate_entries": self.services.security.root_count
            if self.station is not None and self.services.security is not None else 0,
            "identity": station.identity,
            "vendor": station.vendor,
            "model": station.model,
            "serial_number": station.serial_number,
            "firmware_version": chargepoint.__version__,
            "supply_phases": station.supply_phases,
            "connector_type": v.CONNECTOR_WORDS[station.connector_type],
            # The station keeps the operating system's clock, which NTP sets.
            "time_source": "NTP",
            "periods_per_schedule": smart_charging.MAX_PERIODS,
            "profile_stack_level": smart_charging.MAX_STACK_LEVEL,
            "rate_units": ",".join(u.value for u in smart_charging.RATE_UNITS),
            # The station sends no NotifyChargingLimit nor ChargingRateChanged: no change is reported.
            "limit_change_significance": LIMIT_CHANGE_SIGNIFICANCE,
        }
        if fact in simple:
            return str(simple[fact])
        if fact.startswith("display_"):
            return capability_fact(self.services.display_messages if self.station is not None else None, fact)
        if fact == "date_time":
            return datetime.fromtimestamp(self.clock(), tz=UTC).isoformat().replace("+00:00", "Z")
        if fact == "power_w":
            return self._power(attribute, evse_id or 0)
        if self.station is None:
            return None
        if fact in MONITORING_FACTS:
            return monitoring_fact(self.station, fact)
        if fact == "problem":
            return "true" if self.station.status_of(evse_id or 0).fault else "false"
        if fact == "availability_state":
            return availability_state(self.station.status_of(evse_id or 0))
        if fact == "local_list_entries":
            return str(len(self.station.authorization.local_list))
        if fact == "charging_profile_entries":
            engine = self.services.smart_charging
            return str(len(engine.profiles) if engine is not None else 0)
        raise KeyError(fact)

    def _power(self, attribute: str, evse_id: int) -> str | None:
        config = self.settings.config
        if attribute != ACTUAL:  # MaxSet: the rating
            amps = min([config.station.max_current_a,
                        *(c.max_current_a for c in config.connectors if c.id == evse_id)])
            return f"{amps * config.station.supply_phases * config.station.nominal_voltage_v:g}"
        reading = self.station.view(evse_id).last_reading if self.station is not None else None
        return None if reading is None else f"{reading.power_w:.1f}"

    # ---------------------------------------------------------- GetVariables
    def get_variables(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """GetVariableResult items, one per request item, in order."""
        return [self._get(r) for r in requests]

    def _get(self, request: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"component": request["component"], "variable": request["variable"]}
        attribute = request.get("attribute_type") or ACTUAL
        if request.get("attribute_type"):
            out["attribute_type"] = attribute
        found = self.resolve(request["component"], request["variable"])
        if isinstance(found, str):
            return {**out, "attribute_status": found}
        var, evse_id, _ = found
        if attribute not in self.attributes(var, evse_id):
            return {**out, "attribute_status": NOT_SUPPORTED_ATTRIBUTE}
        if var.mutability == WRITE_ONLY:
            return {**out, "attribute_status": REJECTED,
                    "attribute_status_info": _info("WriteOnly", f"{var.key} is write-only")}
        value = self.value(var, attribute, evse_id)
        if value is None:
            return {**out, "attribute_status": REJECTED,
                    "attribute_status_info": _info("NotAvailable", f"{var.key} has no value yet")}
        return {**out, "attribute_status": ACCEPTED, "attribute_value": value[:v.REPORTING_VALUE_SIZE]}

    # ---------------------------------------------------------- SetVariables
    def set_variables(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """SetVariableResult items, one per request item, each applied in order."""
        return [self._set(r) for r in requests]

    def _set(self, request: dict[str, Any]) -> dict[str, Any]:
        attribute = request.get("attribute_type") or ACTUAL
        out: dict[str, Any] = {"component": request["component"], "variable": request["variable"],
                               "attribute_type": attribute}
        found = self.resolve(request["component"], request["variable"])
        if isinstance(found, str):
            return {**out, "attribute_status": found}
        var, evse_id, _ = found
        if attribute not in self.attributes(var, evse_id):
            return {**out, "attribute_status": NOT_SUPPORTED_ATTRIBUTE}
        status, reason = self.write(var, str(request["attribute_value"]))
        if reason is not None:
            code = "ReadOnly" if var.mutability == READ_ONLY else "InvalidValue"
            out["attribute_status_info"] = _info(code, reason)
        return {**out, "attribute_status": status}

    def write(self, var: Variable, wire: str) -> tuple[str, str | None]:
        """Set ``var`` from its wire text: the status and, when rejected, why."""
        reason = self.refusal(var, wire)
        if reason is not None:
            return REJECTED, reason
        result = self.settings.set(var.setting, self._setting_text(var, wire))  # type: ignore[arg-type]
        if result is SetResult.REJECTED:  # a guard changed its mind between the two calls
            return REJECTED, f"{var.key}: not accepted"
        return (REBOOT_REQUIRED if result is SetResult.REBOOT_REQUIRED or var.reboot_required
                else ACCEPTED), None

    def refusal(self, var: Variable, wire: str) -> str | None:
        """Why writing ``wire`` to ``var`` is refused, in the words of 2.0.1; None if it is not."""
        if var.mutability == READ_ONLY or var.setting is None:
            return f"{var.key} is read-only"
        if len(wire) > v.CONFIGURATION_VALUE_SIZE:
            return f"longer than {v.CONFIGURATION_VALUE_SIZE} characters"
        text = self._setting_text(var, wire)
        if text is None:
            return f"must be a comma-separated list of: {', '.join(var.values or ())}"
        if var.codec == "password" and (reason := password_refusal(wire)):
            return reason
        reason = self.settings.refusal(var.setting, text)
        if reason is None:
            return None
        for other in VARIABLES:  # a guard may name a setting: say the variable instead
            if other.setting and not other.mirror:
                reason = reason.replace(other.setting, other.key)
        return reason

    @staticmethod
    def _setting_text(var: Variable, wire: str) -> str | None:
        return CODECS[var.codec][0](wire) if var.codec else wire

    # --------------------------------------------------------------- reports
    def report(self, base: str) -> list[dict[str, Any]] | None:
        """ReportData items of a base report; None for a base this station does not know."""
        if base == FULL_INVENTORY:
            chosen = list(self.addresses())
        elif base == CONFIGURATION_INVENTORY:
            chosen = [a for a in self.addresses() if a[0].mutability != READ_ONLY]
        elif base == SUMMARY_INVENTORY:
            chosen = [a for a in self.addresses() if a[0].name in ("AvailabilityState", "Available")
                      and a[0].component in ("ChargingStation", "EVSE", "Connector")]
        else:
            return None
        return [item for item in map(self.report_data, chosen) if item is not None]

    def report_data(self, address: Address) -> dict[str, Any] | None:
        """One ReportData item (None if none of its attributes has a value now)."""
        var, evse_id, connector_id = address
        attributes = []
        for attribute in self.attributes(var, evse_id):
            # The rating (MaxSet) is the configuration's; the measured power changes.
            constant = var.constant or (var.fact == "power_w" and attribute != ACTUAL)
            item: dict[str, Any] = {"type": attribute, "mutability": var.mutability,
                                    "persistent": var.setting is not None or constant, "constant": constant}
            if var.mutability != WRITE_ONLY:
                value = self.value(var, attribute, evse_id)
                if value is None:
                    continue
                item["value"] = value[:v.REPORTING_VALUE_SIZE]
            attributes.append(item)
        if not attributes:
            return None
        return {"component": component_of(var, evse_id, connector_id), "variable": variable_of(var),
                "variable_attribute": attributes, "variable_characteristics": self.characteristics(var)}

    def characteristics(self, var: Variable) -> dict[str, Any]:
        out: dict[str, Any] = {"data_type": var.data_type, "supports_monitoring": monitorable(var)}
        definition = self.settings.definitions.get(var.setting or "")
        low, high = var.min_limit, var.max_limit
        if definition is not None and definition.kind is int:
            low = definition.low if low is None else low
            high = definition.high if high is None else high
        values = var.values
        if var.setting == "network_priority":
            values = tuple(map(str, (0, *NETWORK_SLOTS)))
        for name, value in (("unit", var.unit), ("min_limit", low), ("max_limit", high)):
            if value is not None:
                out[name] = value
        if values:
            out["values_list"] = ",".join(values)
        return out


def component_of(var: Variable, evse_id: int | None, connector_id: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {"name": var.component}
    if evse_id is not None:
        out["evse"] = {"id": evse_id}
        if connector_id is not None:
            out["evse"]["connector_id"] = connector_id
    return out


def variable_of(var: Variable) -> dict[str, Any]:
    return {"name": var.name} if var.instance is None else {"name": var.name, "instance": var.instance}


def _info(code: str, text: str) -> dict[str, str]:
    return {"reason_code": code, "additional_info": text[:512]}


# ------------------------------------------------------------------ the CLI's view


@dataclass(frozen=True)
class VariableInfo:
    """What one variable holds, as ``control.service`` shows a key (the 1.6 KeyInfo's fields)."""

    key: str
    readonly: bool
    secret: bool
    value: str | None
    setting: str | None
    kind: str


class VariableCatalogue:
    """The device model under names a technician types: ``Component.Variable``.

    A variable with an instance is ``Component.Variable[Instance]``; one of an
    EVSE ``EVSE[1].Power``, of a connector ``Connector[1,1].ConnectorType``; an
    attribute other than Actual follows a colon: ``EVSE[1].Power:MaxSet``. Names
    are matched without regard to case, as 2.0.1 matches them. The methods are
    those of the 1.6 ``KeyCatalogue``, so ``chargepoint config get/set`` speaks
    2.0.1 when the station does.
    """

    def __init__(self, settings: Settings, evse_count: int, *, station: Station | None = None) -> None:
        self.settings = settings
        self.model = DeviceModel(settings, evse_count, station=station)
        self._names: dict[str, tuple[str, Address, str]] = {}
        for address in self.model.addresses():
            var, evse_id, connector_id = address
            scope = "" if evse_id is None else (
                f"[{evse_id}]" if connector_id is None else f"[{evse_id},{connector_id}]")
            base = f"{var.component}{scope}.{var.name}" + (f"[{var.instance}]" if var.instance else "")
            for attribute in self.model.attributes(var, evse_id):
                name = base if attribute == ACTUAL else f"{base}:{attribute}"
                self._names[name.lower()] = (name, address, attribute)

    def keys(self) -> list[str]:
        return [name for name, _, _ in self._names.values()]

    def knows(self, key: str) -> bool:
        return key.lower() in self._names

    def readable(self) -> list[str]:
        """Names reported without being asked (write-only secrets excluded)."""
        return [key for key in self.keys() if not self.info(key).secret]

    def _entry(self, key: str) -> tuple[str, Address, str]:
        return self._names[key.lower()]

    def info(self, key: str) -> VariableInfo:
        """What a known name holds (KeyError for an unknown one)."""
        name, (var, evse_id, _), attribute = self._entry(key)
        secret = var.mutability == WRITE_ONLY
        kind = (self.settings.definitions[var.setting].kind.__name__ if var.setting and not var.codec
                else _DATA_KINDS.get(var.data_type, "str"))
        return VariableInfo(name, var.mutability == READ_ONLY, secret,
                            None if secret else self.model.value(var, attribute, evse_id),
                            None if var.mirror else var.setting, kind)

    def typed_value(self, key: str) -> int | bool | float | str | None:
        info = self.info(key)
        if info.value is None or info.kind == "str":
            return info.value
        if info.kind == "bool":
            return info.value == "true"
        return int(info.value) if info.kind == "int" else float(info.value)

    def change(self, key: str, text: str) -> str:
        """SetVariables for one name: its status (UnknownVariable for a name the model lacks)."""
        if not self.knows(key):
            return UNKNOWN_VARIABLE
        _, (var, _, _), attribute = self._entry(key)
        if attribute != ACTUAL:
            return REJECTED
        return self.model.write(var, text)[0]

    def refusal(self, key: str, text: str) -> str | None:
        _, (var, _, _), attribute = self._entry(key)
        if attribute != ACTUAL:
            return f"{key} is read-only"
        return self.model.refusal(var, text)
