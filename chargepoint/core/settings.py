"""Run-time settings the operator can read and change, under neutral names.

One store with typed definitions. Each OCPP version shows it in its own words
(the 1.6 adapter as configuration keys, a 2.0.1 adapter as device-model
variables), the technician's CLI reads and writes the same values, and the
configuration file gives their initial values: a value set through any of them
is one setting. Values the CSMS or the CLI changes are written to the state
database and win over the file after a restart, as OCPP expects.

The text form is the one both OCPP versions use: ``true``/``false`` for
booleans, decimal integers, comma-separated lists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from chargepoint.config import MEASURANDS, Config
from chargepoint.config.model import TX_START_POINTS_SUPPORTED, TX_STOP_POINTS_SUPPORTED
from chargepoint.core.setting_values import SettingValues


class SetResult(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    REBOOT_REQUIRED = "reboot_required"


Value = int | bool | str

#: Longest comma-separated measurand list the station accepts.
MEASURANDS_MAX_LENGTH = len(MEASURANDS)
#: Longest local authorization list, and most entries in one update.
LOCAL_LIST_MAX_LENGTH = 10_000
PHASE_ROTATIONS = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")


@dataclass(frozen=True)
class Definition:
    """A setting's name, type and rules."""

    name: str
    kind: type  # int, bool or str (comma-separated lists are str)
    low: int | None = None
    high: int | None = None
    #: For comma-separated lists: the allowed items and the longest list.
    allowed: tuple[str, ...] | None = None
    max_items: int | None = None
    reboot_required: bool = False
    #: Write-only: never reported back (the Basic auth password).
    secret: bool = False
    check: Callable[[str], bool] | None = None
    #: What ``check`` wants, in words, for the refusal message.
    format: str = ""


#: The Basic auth password's octets the station keeps: 1.6's AuthorizationKey allows 16 to 20, a
#: 2.0.1 BasicAuthPassword (and the file's ``basic_auth_password``) 16 to 40; each view checks its own.
AUTH_PASSWORD_OCTETS = (16, 40)


def _hex_key(text: str) -> bool:
    """The Basic auth password: its octets as hex digits (16 to 40 octets, 32 to 80 digits)."""
    low, high = AUTH_PASSWORD_OCTETS
    if not 2 * low <= len(text) <= 2 * high or len(text) % 2:
        return False
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def _phase_rotation(text: str) -> bool:
    """``N.RST`` items: the phase rotation of connector N as wired."""
    for item in filter(None, (i.strip() for i in text.split(","))):
        connector, _, rotation = item.partition(".")
        if not connector.isdigit() or rotation not in PHASE_ROTATIONS:
            return False
    return True


#: Network connection slots a CSMS may fill (slot 0 is the configuration file's connection).
NETWORK_SLOTS = (1, 2, 3)
#: Longest organization name (the Subject O of a certificate signing request).
ORGANIZATION_NAME_MAX = 64


def _some_points(text: str) -> bool:
    """Transaction start or stop points: at least one, each once (a transaction needs a beginning
    and an end)."""
    items = [i.strip() for i in text.split(",") if i.strip()]
    return bool(items) and len(set(items)) == len(items)


def _points_format(supported: tuple[str, ...]) -> str:
    return f"a comma-separated list of {', '.join(supported)}: at least one, each once"


def _slot_list(text: str) -> bool:
    """Network slots in order of preference: distinct numbers, slot 0 or one of NETWORK_SLOTS."""
    items = [i.strip() for i in text.split(",") if i.strip()]
    allowed = {str(n) for n in (0, *NETWORK_SLOTS)}
    return bool(items) and all(i in allowed for i in items) and len(set(items)) == len(items)


def _profiles_json(text: str) -> bool:
    """The stored network profiles: a JSON object of slot -> profile (core/security/network_profiles.py)."""
    try:
        data = json.loads(text)
    except ValueError:
        return False
    return isinstance(data, dict) and all(k.isdigit() and isinstance(v, dict) for k, v in data.items())


DEFINITIONS = (
    Definition("offline_tx_for_unknown_id", bool),
    Definition("auth_cache_enabled", bool),
    Definition("authorization_key", str, secret=True, check=_hex_key,
               format="32 to 80 hexadecimal digits (16 to 40 octets)"),
    Definition("authorize_remote_start", bool),
    Definition("aligned_interval_s", int, low=0, high=86400),
    Definition("connection_timeout_s", int, low=1, high=3600),
    Definition("phase_rotation", str, check=_phase_rotation,
               format="comma-separated N.rotation items, rotation one of " + ", ".join(PHASE_ROTATIONS)),
    Definition("heartbeat_interval_s", int, low=1, high=86400),
    Definition("local_list_enabled", bool),
    Definition("local_authorize_offline", bool),
    Definition("local_pre_authorize", bool),
    Definition("aligned_measurands", str, allowed=MEASURANDS, max_items=MEASURANDS_MAX_LENGTH),
    Definition("sampled_measurands", str, allowed=MEASURANDS, max_items=MEASURANDS_MAX_LENGTH),
    Definition("sample_interval_s", int, low=0, high=86400),
    Definition("minimum_status_duration_s", int, low=0, high=3600),
    Definition("reset_retries", int, low=0, high=10),
    Definition("security_profile", int, low=0, high=3),
    Definition("stop_tx_on_ev_disconnect", bool),
    Definition("stop_tx_on_invalid_id", bool),
    Definition("stop_tx_aligned_measurands", str, allowed=MEASURANDS, max_items=MEASURANDS_MAX_LENGTH),
    Definition("stop_tx_sampled_measurands", str, allowed=MEASURANDS, max_items=MEASURANDS_MAX_LENGTH),
    Definition("tx_message_attempts", int, low=1, high=100),
    Definition("tx_message_retry_interval_s", int, low=1, high=86400),
    Definition("unlock_on_ev_disconnect", bool),
    Definition("ws_ping_interval_s", int, low=0, high=3600),
    Definition("tx_start_points", str, allowed=TX_START_POINTS_SUPPORTED,
               max_items=len(TX_START_POINTS_SUPPORTED),
               check=_some_points, format=_points_format(TX_START_POINTS_SUPPORTED)),
    Definition("tx_stop_points", str, allowed=TX_STOP_POINTS_SUPPORTED,
               max_items=len(TX_STOP_POINTS_SUPPORTED),
               check=_some_points, format=_points_format(TX_STOP_POINTS_SUPPORTED)),
    # Connection profiles a CSMS stored in slots, and the order the link tries them in.
    # Secret: a profile may carry a VPN or APN password.
    Definition("network_profiles", str, secret=True, check=_profiles_json, format="a JSON object of slots"),
    Definition("network_priority", str, check=_slot_list,
               format="distinct slot numbers from 0, " + ", ".join(map(str, NETWORK_SLOTS))),
    Definition("network_profile_attempts", int, low=1, high=100),
    Definition("organization_name", str, check=lambda text: len(text) <= ORGANIZATION_NAME_MAX,
               format=f"at most {ORGANIZATION_NAME_MAX} characters"),
    Definition("reserve_any_connector", bool),
    # Whether the operator's display messages are taken (display_messages.py).
    Definition("display_messages_enabled", bool),
    # Certificates (core/security/certificates.py): the longest certificate chain the CSMS may send, the most
    # root certificates kept, whether a new CSMS root needs the old one's blessing (not supported:
    # false), and how many days before the station's certificate expires a new one is asked for.
    Definition("certificate_chain_max_bytes", int, low=1000, high=100_000),
    Definition("certificate_store_max_length", int, low=1, high=100),
    Definition("additional_root_certificate_check", bool),
    Definition("certificate_renewal_days", int, low=1, high=365),
    # A signing request the CSMS accepted but answered with no certificate is made again after this
    # wait, doubled each time, at most this many times (security.py).
    Definition("cert_signing_wait_minimum_s", int, low=1, high=86400),
    Definition("cert_signing_repeat_times", int, low=0, high=100),
    # Energy a transaction whose identifier the CSMS refused may still deliver, when it is kept
    # (stop_tx_on_invalid_id false): 0 stops the energy at once (transactions.py).
    Definition("max_energy_on_invalid_id_wh", int, low=0, high=1_000_000),
    # Monitor events of this severity number or a more severe one (lower) are kept while the station
    # is offline and sent when it is back (monitoring.py).
    Definition("monitoring_offline_severity", int, low=0, high=9),
)


def initial_values(config: Config) -> dict[str, Value]:
    """The settings as the configuration file sets them."""
    o = config.ocpp
    return {
        "offline_tx_for_unknown_id": o.allow_offline_tx_for_unknown_id,
        "auth_cache_enabled": o.authorization_cache_enabled,
        "authorization_key": o.authorization_key,
        "authorize_remote_start": o.authorize_remote_tx_requests,
        "aligned_interval_s": o.clock_aligned_data_interval_s,
        "connection_timeout_s": int(config.station.connection_timeout_s),
        "phase_rotation": ",".join(f"{c.id}.Unknown" for c in config.connectors),
        "heartbeat_interval_s": o.heartbeat_interval_s,
        "local_list_enabled": o.local_auth_list_enabled,
        "local_authorize_offline": o.local_authorize_offline,
        "local_pre_authorize": o.local_pre_authorize,
        "aligned_measurands": ",".join(o.meter_values_aligned_data),
        "sampled_measurands": ",".join(o.meter_values_sampled_data),
        "sample_interval_s": o.meter_value_sample_interval_s,
        "minimum_status_duration_s": o.minimum_status_duration_s,
        "reset_retries": 1,
        "security_profile": o.security_profile,
        "stop_tx_on_ev_disconnect": o.stop_transaction_on_ev_side_disconnect,
        "stop_tx_on_invalid_id": True,
        "stop_tx_aligned_measurands": ",".join(o.stop_txn_aligned_data),
        "stop_tx_sampled_measurands": ",".join(o.stop_txn_sampled_data),
        "tx_message_attempts": o.transaction_message_attempts,
        "tx_message_retry_interval_s": o.transaction_message_retry_interval_s,
        "unlock_on_ev_disconnect": True,
        "ws_ping_interval_s": int(o.ping_interval_s),
        "tx_start_points": ",".join(o.tx_start_points),
        "tx_stop_points": ",".join(o.tx_stop_points),
        # Run-time state, not configuration: the CSMS fills the slots; until it
        # does, the configuration file's connection (slot 0) is the only one.
        "network_profiles": "{}",
        "network_priority": "0",
        "network_profile_attempts": 3,
        "organization_name": "",
        "reserve_any_connector": config.station.reserve_any_connector,
        "display_messages_enabled": True,
        "certificate_chain_max_bytes": 10_000,
        "certificate_store_max_length": 20,
        "additional_root_certificate_check": False,
        "certificate_renewal_days": 30,
        "cert_signing_wait_minimum_s": 60,
        "cert_signing_repeat_times": 3,
        "max_energy_on_invalid_id_wh": 0,
        "monitoring_offline_severity": 4,
    }


#: The configuration file's key behind each setting's initial value (the others start at a fixed value).
FILE_KEYS = {
    "offline_tx_for_unknown_id": "ocpp.allow_offline_tx_for_unknown_id",
    "auth_cache_enabled": "ocpp.authorization_cache_enabled",
    "authorization_key": "ocpp.authorization_key",
    "authorize_remote_start": "ocpp.authorize_remote_tx_requests",
    "aligned_interval_s": "ocpp.clock_aligned_data_interval_s",
    "connection_timeout_s": "station.connection_timeout_s",
    "heartbeat_interval_s": "ocpp.heartbeat_interval_s",
    "local_list_enabled": "ocpp.local_auth_list_enabled",
    "local_authorize_offline": "ocpp.local_authorize_offline",
    "local_pre_authorize": "ocpp.local_pre_authorize",
    "aligned_measurands": "ocpp.meter_values_aligned_data",
    "sampled_measurands": "ocpp.meter_values_sampled_data",
    "sample_interval_s": "ocpp.meter_value_sample_interval_s",
    "minimum_status_duration_s": "ocpp.minimum_status_duration_s",
    "security_profile": "ocpp.security_profile",
    "stop_tx_on_ev_disconnect": "ocpp.stop_transaction_on_ev_side_disconnect",
    "stop_tx_aligned_measurands": "ocpp.stop_txn_aligned_data",
    "stop_tx_sampled_measurands": "ocpp.stop_txn_sampled_data",
    "tx_message_attempts": "ocpp.transaction_message_attempts",
    "tx_message_retry_interval_s": "ocpp.transaction_message_retry_interval_s",
    "ws_ping_interval_s": "ocpp.ping_interval_s",
    "tx_start_points": "ocpp.tx_start_points",
    "tx_stop_points": "ocpp.tx_stop_points",
    "reserve_any_connector": "station.reserve_any_connector",
}


class Settings:
    """Typed key/value settings with validation on every write.

    A value set by the CSMS or the CLI (here or before a restart, from the
    store) overrides the file's: ``overridden`` names those, ``file_values``
    keeps what the file (or the fixed default) says, and ``reset`` drops an
    override so the file's value applies again.
    """

    def __init__(self, config: Config) -> None:
        self.definitions = {d.name: d for d in DEFINITIONS}
        self._values: dict[str, Value] = initial_values(config)
        #: The configuration the values start from: the station's read-only facts
        #: (vendor, model, ratings) that a version's view reports beside the settings.
        self.config = config
        #: What the configuration file (or the fixed default) gives each setting.
        self.file_values: dict[str, Value] = dict(self._values)
        #: Settings whose value the CSMS or the CLI set (now or before a restart): it wins over the file.
        self.overridden: set[str] = set()
        #: Settings the file itself sets (the others start at a default).
        self.in_file = {name for name, key in FILE_KEYS.items() if key in config.file_keys}
        #: Called as ``listener(name, value)`` after every accepted change.
        self.listeners: list[Callable[[str, Value], None]] = []
        #: Extra rule for a write: return a reason to refuse it, or None.
        self.guards: dict[str, Callable[[Value], str | None]] = {}
        #: The values as typed attributes, live: what station code reads (setting_values.py).
        self.current = SettingValues(self._values)

    def restore(self, stored: dict[str, str]) -> None:
        """Take back values set before a restart (they win over the file).

        A stored value that this release no longer accepts is skipped: the
        file's value stands, rather than the daemon refusing to start.
        """
        for name, text in stored.items():
            definition = self.definitions.get(name)
            if definition is not None:
                value = self.parse(definition, text)
                if value is not None:
                    self._values[name] = value
                    self.overridden.add(name)

    def overrides_text(self) -> str | None:
        """The overridden settings against the file's values, on one line (for the log at start)."""
        if not self.overridden:
            return None
        parts = []
        for name in sorted(self.overridden):
            file_key = FILE_KEYS.get(name)
            origin = f"file {file_key}" if name in self.in_file else f"default of {file_key}" if file_key \
                else "default"
            if self.definitions[name].secret:
                parts.append(f"{name} (hidden; {origin} overridden)")
            else:
                was = self.text_of(self.file_values[name])
                parts.append(f"{name} = {self.as_text(name)} ({origin}: {was})")
        return "; ".join(parts)

    def get(self, name: str) -> Value:
        return self._values[name]

    def set(self, name: str, text: str) -> SetResult:
        """Change a setting from its text form; unknown names are a KeyError."""
        definition = self.definitions[name]
        value = self.parse(definition, text)
        if value is None:
            return SetResult.REJECTED
        guard = self.guards.get(name)
        if guard is not None and guard(value) is not None:
            return SetResult.REJECTED
        self._values[name] = value
        self.overridden.add(name)
        for listener in list(self.listeners):
            listener(name, value)
        return SetResult.REBOOT_REQUIRED if definition.reboot_required else SetResult.ACCEPTED

    def reset_refusal(self, name: str) -> str | None:
        """Why ``reset(name)`` would be refused (a guard: the file may hold a lower security profile)."""
        guard = self.guards.get(name)
        file_value = self.file_values[name]
        if guard is None or file_value == self._values[name]:
            return None
        return guard(file_value)

    def reset(self, name: str) -> SetResult:
        """Drop the override of ``name``: the file's value applies again (listeners hear it as a change).

        REBOOT_REQUIRED if the value changed and the setting only takes effect
        after a restart; REJECTED if a guard refuses the file's value.
        """
        definition = self.definitions[name]
        if self.reset_refusal(name) is not None:
            return SetResult.REJECTED
        value = self.file_values[name]
        changed = self._values[name] != value
        self._values[name] = value
        self.overridden.discard(name)
        for listener in list(self.listeners):
            listener(name, value)
        return SetResult.REBOOT_REQUIRED if definition.reboot_required and changed else SetResult.ACCEPTED

    def refusal(self, name: str, text: str) -> str | None:
        """Why ``set(name, text)`` would be rejected, in words; None if it would not."""
        definition = self.definitions[name]
        parsed = self.parse(definition, text)
        if parsed is not None:
            guard = self.guards.get(name)
            return guard(parsed) if guard is not None else None
        if definition.kind is bool:
            return "must be true or false"
        if definition.kind is int:
            low = "" if definition.low is None else f" from {definition.low}"
            high = "" if definition.high is None else f" to {definition.high}"
            return f"must be a whole number{low}{high}"
        if definition.format:
            return f"must be {definition.format}"
        if definition.allowed is not None:
            return (f"must be a comma-separated list of at most {definition.max_items} of: "
                    f"{', '.join(definition.allowed)}")
        return "has the wrong format"

    @staticmethod
    def parse(d: Definition, text: str) -> Value | None:
        """The value ``text`` stands for under ``d``'s rules, or None if it breaks one."""
        text = text.strip()
        if d.kind is bool:
            return {"true": True, "false": False}.get(text.lower())
        if d.kind is int:
            try:
                number = int(text)
            except ValueError:
                return None
            if (d.low is not None and number < d.low) or (d.high is not None and number > d.high):
                return None
            return number
        if d.check is not None and not d.check(text):
            return None
        if d.allowed is not None:
            items = [item.strip() for item in text.split(",") if item.strip()]
            if any(item not in d.allowed for item in items):
                return None
            if d.max_items is not None and len(items) > d.max_items:
                return None
            return ",".join(items)
        return text

    def as_text(self, name: str) -> str:
        return self.text_of(self._values[name])

    @staticmethod
    def text_of(value: Value) -> str:
        """A value in the text form both OCPP versions use."""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
