"""The 1.6 words of reservations: the Reserved status among the others, and the read-only key."""

from __future__ import annotations

import pytest

from chargepoint.config import parse
from chargepoint.core.events import Activity, StatusChanged
from chargepoint.core.settings import Settings
from chargepoint.protocol.v16.keys import ChangeStatus, KeyCatalogue
from chargepoint.protocol.v16.translate import connector_status


@pytest.mark.parametrize(("facts", "status"), [
    ({}, "Reserved"),
    ({"plugged": True}, "Reserved"),  # someone else's EV changes nothing for the others
    ({"activity": Activity.AUTHORIZED}, "Preparing"),  # the reserved card was presented
    ({"activity": Activity.AUTHORIZED, "plugged": True}, "Preparing"),
    ({"fault": "rcd"}, "Faulted"),
    ({"operative": False}, "Unavailable"),
])
def test_reserved_in_16(facts: dict, status: str) -> None:
    assert connector_status(StatusChanged(1, 0.0, reserved=True, **facts)).value == status


def test_an_unreserved_idle_connector_is_available() -> None:
    assert connector_status(StatusChanged(1, 0.0)).value == "Available"


def test_reserve_connector_zero_supported_is_read_only_and_shows_the_setting() -> None:
    settings = Settings(parse({"station": {"identity": "X", "reserve_any_connector": True},
                               "ocpp": {"csms_url": "ws://h"}}))
    keys = KeyCatalogue(settings, 2)
    info = keys.info("ReserveConnectorZeroSupported")
    assert (info.readonly, info.value, info.setting) == (True, "true", "reserve_any_connector")
    assert keys.change("ReserveConnectorZeroSupported", "false") == ChangeStatus.REJECTED
    assert keys.refusal("ReserveConnectorZeroSupported", "false") == (
        "ReserveConnectorZeroSupported is read-only (the configuration file sets reserve_any_connector)")
    settings.set("reserve_any_connector", "false")  # read when asked, not when the catalogue was made
    assert keys.info("ReserveConnectorZeroSupported").value == "false"
    assert keys.typed_value("ReserveConnectorZeroSupported") is False
    assert "ReserveConnectorZeroSupported" in keys.readable()
    assert set(keys.info("SupportedFeatureProfiles").value.split(",")) >= {"Reservation", "RemoteTrigger"}
