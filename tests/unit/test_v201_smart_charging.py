"""The 2.0.1 smart charging and reservation translation: 2.0.1 words to the core's neutral ones and back,
and the SmartChargingCtrlr / ReservationCtrlr variables over the engine's limits and the settings."""

from __future__ import annotations

from typing import Any

import pytest
from ocpp.exceptions import PropertyConstraintViolationError

from chargepoint.config import parse
from chargepoint.core.energy import smart_charging
from chargepoint.core.energy.schedule import Kind, Purpose, RateUnit, Recurrency
from chargepoint.core.settings import Settings
from chargepoint.protocol.v16.keys import KeyCatalogue
from chargepoint.protocol.v201.device_model import DeviceModel
from chargepoint.protocol.v201.smart_charging import Refused, profile_from_201, profile_to_201


def wire(**extra: Any) -> dict[str, Any]:
    """A 2.0.1 ChargingProfileType in the library's snake_case spelling."""
    schedule = {"id": 3, "charging_rate_unit": "W", "start_schedule": "2030-01-01T22:00:00Z",
                "duration": 7200, "min_charging_rate": 1380.0,
                "charging_schedule_period": [{"start_period": 0, "limit": 11040, "number_phases": 3},
                                             {"start_period": 3600, "limit": 4140.5}]}
    schedule.update(extra.pop("schedule", {}))
    return {"id": 3, "stack_level": 2, "charging_profile_purpose": "TxDefaultProfile",
            "charging_profile_kind": "Recurring", "recurrency_kind": "Daily",
            "valid_from": "2030-01-01T00:00:00Z", "valid_to": "2031-01-01T00:00:00Z",
            "charging_schedule": [schedule], **extra}


def test_k01_a_profile_translates_to_the_core_and_back_unchanged() -> None:
    profile = profile_from_201(wire(), 1)
    assert (profile.id, profile.evse_id, profile.purpose, profile.stack_level) == (
        3, 1, Purpose.TX_DEFAULT, 2)
    assert (profile.kind, profile.recurrency) == (Kind.RECURRING, Recurrency.DAILY)
    s = profile.schedule
    assert (s.unit, s.duration_s, s.min_rate, s.start) == (RateUnit.WATTS, 7200, 1380.0, 1893535200.0)
    assert [(p.start_s, p.limit, p.phases) for p in s.periods] == [(0, 11040.0, 3), (3600, 4140.5, None)]
    back = profile_to_201(profile)
    expected = wire()
    expected["charging_schedule"][0]["start_schedule"] = "2030-01-01T22:00:00.000Z"
    expected["valid_from"], expected["valid_to"] = "2030-01-01T00:00:00.000Z", "2031-01-01T00:00:00.000Z"
    assert back == expected


def test_k01_a_relative_tx_profile_keeps_its_transaction_and_drops_a_start() -> None:
    profile = profile_from_201(wire(charging_profile_purpose="TxProfile", charging_profile_kind="Relative",
                                    recurrency_kind=None, transaction_id="tx-9"), 2)
    assert profile.purpose is Purpose.TX and profile.transaction_id == "tx-9"
    assert profile.schedule.start is None and profile.recurrency is None


@pytest.mark.parametrize(("extra", "why"), [
    ({"charging_profile_purpose": "ChargingStationExternalConstraints"}, "station itself"),
    ({"charging_schedule": [wire()["charging_schedule"][0]] * 2}, "one charging schedule"),
    ({"schedule": {"charging_schedule_period": [{"start_period": 0, "limit": 6, "number_phases": 1,
                                                 "phase_to_use": 2}]}}, "phaseToUse"),
])
def test_what_2_0_1_allows_but_the_station_cannot_do_is_refused_with_a_reason(extra: dict, why: str) -> None:
    with pytest.raises(Refused, match=why):
        profile_from_201(wire(**extra), 1)


def test_a_bad_date_is_a_property_constraint_violation() -> None:
    with pytest.raises(PropertyConstraintViolationError):
        profile_from_201(wire(valid_from="next tuesday"), 1)


@pytest.fixture
def settings() -> Settings:
    return Settings(parse({"station": {"identity": "CP-7"}, "ocpp": {"csms_url": "ws://csms.example/ocpp"}}))


def _value(model: DeviceModel, component: str, name: str, instance: str | None = None) -> str:
    variable = {"name": name, **({"instance": instance} if instance else {})}
    result = model.get_variables([{"component": {"name": component}, "variable": variable}])[0]
    assert result["attribute_status"] == "Accepted", result
    return str(result["attribute_value"])


def test_smart_charging_ctrlr_shows_the_limits_the_16_keys_show(settings: Settings) -> None:
    model = DeviceModel(settings, 1, clock=lambda: 0.0)
    keys = KeyCatalogue(settings, 1)
    assert _value(model, "SmartChargingCtrlr", "ProfileStackLevel") \
        == keys.info("ChargeProfileMaxStackLevel").value == str(smart_charging.MAX_STACK_LEVEL)
    assert _value(model, "SmartChargingCtrlr", "PeriodsPerSchedule") \
        == keys.info("ChargingScheduleMaxPeriods").value
    assert _value(model, "SmartChargingCtrlr", "RateUnit") == "A,W"
    entries = [item for item in model.report("FullInventory") or []
               if item["variable"] == {"name": "Entries", "instance": "ChargingProfiles"}]
    assert entries == [], "the live count is known only to a running station"
    characteristics = model.characteristics(next(
        v for v, _, _ in model.addresses() if v.component == "SmartChargingCtrlr" and v.name == "RateUnit"))
    assert characteristics["values_list"] == "A,W"


def test_reservation_ctrlr_non_evse_specific_is_the_any_connector_setting(settings: Settings) -> None:
    model = DeviceModel(settings, 1, clock=lambda: 0.0)
    assert _value(model, "ReservationCtrlr", "NonEvseSpecific") == "false"
    result = model.set_variables([{"component": {"name": "ReservationCtrlr"},
                                   "variable": {"name": "NonEvseSpecific"}, "attribute_value": "true"}])[0]
    assert result["attribute_status"] == "Accepted"
    assert settings.get("reserve_any_connector") is True
    assert KeyCatalogue(settings, 1).info("ReserveConnectorZeroSupported").value == "true"
