"""The settings' current values as typed attributes: ``settings.current.heartbeat_interval_s``.

Station code reads a setting by attribute, not by a string name: a misspelt
setting is an AttributeError where it is written (and a type checker's error),
the value comes as its type (int, bool, str, or a list for comma-separated
lists) so no caller converts it, and a reader finds every use of a setting by
searching for its attribute. The names stay strings only where a name comes
from outside: an OCPP key or device-model variable, the control API, the store.

Each attribute reads the live value, so a change made through
``Settings.set`` (by the CSMS or the CLI) is seen at the next read.
``tests/unit/test_settings_typed.py`` keeps this class and ``DEFINITIONS`` in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar, overload

Read = TypeVar("Read")


class _Setting(Generic[Read]):
    """One setting, read from the live values under the attribute's own name."""

    #: The definition's kind this attribute reads (``Definition.kind``).
    kind: type = object

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, values: None, owner: type) -> _Setting[Read]: ...

    @overload
    def __get__(self, values: SettingValues, owner: type) -> Read: ...

    def __get__(self, values: SettingValues | None, owner: type) -> Read | _Setting[Read]:
        if values is None:
            return self
        return self.convert(values.live[self.name])

    def __set__(self, values: SettingValues, value: object) -> None:
        raise AttributeError(f"setting {self.name} is changed through Settings.set, which checks it")

    def convert(self, value: Any) -> Read:
        return value  # type: ignore[no-any-return]


class Whole(_Setting[int]):
    """A whole number: seconds, counts, watt-hours."""

    kind = int


class Flag(_Setting[bool]):
    kind = bool


class Text(_Setting[str]):
    """Text as stored: a name, a JSON document, a comma-separated list read whole."""

    kind = str


class Items(_Setting[list[str]]):
    """A comma-separated list, as its items (empty items dropped)."""

    kind = str

    def convert(self, value: Any) -> list[str]:
        return [item.strip() for item in str(value).split(",") if item.strip()]


class SettingValues:
    """Every setting of ``DEFINITIONS`` under its name, typed; see the module's docstring."""

    __slots__ = ("live",)

    def __init__(self, live: Mapping[str, object]) -> None:
        self.live = live

    # Authorization (core/authorization.py, core/station.py, core/transactions.py)
    offline_tx_for_unknown_id = Flag()
    auth_cache_enabled = Flag()
    authorize_remote_start = Flag()
    local_list_enabled = Flag()
    local_authorize_offline = Flag()
    local_pre_authorize = Flag()
    stop_tx_on_invalid_id = Flag()
    max_energy_on_invalid_id_wh = Whole()
    # Connection and its security
    authorization_key = Text()
    connection_timeout_s = Whole()
    heartbeat_interval_s = Whole()
    ws_ping_interval_s = Whole()
    security_profile = Whole()
    network_profiles = Text()
    network_priority = Items()
    network_profile_attempts = Whole()
    reset_retries = Whole()
    # Meter values and transaction messages
    aligned_interval_s = Whole()
    aligned_measurands = Items()
    sampled_measurands = Items()
    sample_interval_s = Whole()
    stop_tx_aligned_measurands = Items()
    stop_tx_sampled_measurands = Items()
    tx_message_attempts = Whole()
    tx_message_retry_interval_s = Whole()
    tx_start_points = Items()
    tx_stop_points = Items()
    # Connectors
    phase_rotation = Items()
    minimum_status_duration_s = Whole()
    stop_tx_on_ev_disconnect = Flag()
    unlock_on_ev_disconnect = Flag()
    reserve_any_connector = Flag()
    display_messages_enabled = Flag()
    monitoring_offline_severity = Whole()
    # Certificates (core/security)
    organization_name = Text()
    certificate_chain_max_bytes = Whole()
    certificate_store_max_length = Whole()
    additional_root_certificate_check = Flag()
    certificate_renewal_days = Whole()
    cert_signing_wait_minimum_s = Whole()
    cert_signing_repeat_times = Whole()


def attributes() -> dict[str, _Setting[Any]]:
    """Each typed attribute by name (for the check against ``DEFINITIONS``)."""
    return {name: value for name, value in vars(SettingValues).items() if isinstance(value, _Setting)}
