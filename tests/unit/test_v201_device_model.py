"""The OCPP 2.0.1 device model: variables over the station's settings (OCTT B_06-B_13, B_32-B_39).

The model answers in the ``ocpp`` library's snake_case dicts; each test names
the OCTT 2.0.1 case it mirrors where there is one.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from chargepoint.config import parse
from chargepoint.config.model import TX_POINTS
from chargepoint.core.events import Activity, StatusChanged
from chargepoint.core.settings import Settings
from chargepoint.core.storage.store import Store
from chargepoint.protocol.v16.keys import KeyCatalogue
from chargepoint.protocol.v201.device_model import DeviceModel, VariableCatalogue, availability_state
from chargepoint.protocol.v201.variables import SECRET_VARIABLES, SETTING_VARIABLES, TX_POINT_WORDS, VARIABLES

PASSWORD = "0123456789abcdefgh"  # 18 characters


def make_settings(**ocpp: Any) -> Settings:
    return Settings(parse({"station": {"identity": "CP-7", "vendor": "Acme", "max_current_a": 16},
                           "ocpp": {"csms_url": "ws://csms.example/ocpp", **ocpp},
                           "connectors": [{"id": 1}, {"id": 2, "max_current_a": 10}]}))


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def model(settings: Settings) -> DeviceModel:
    return DeviceModel(settings, 2, clock=lambda: 1_800_000_000.0)


def get(component: str | dict[str, Any], variable: str, instance: str | None = None,
        attribute: str | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"component": component if isinstance(component, dict) else {"name": component},
                               "variable": {"name": variable}}
    if instance:
        request["variable"]["instance"] = instance
    if attribute:
        request["attribute_type"] = attribute
    return request


def put(component: str | dict[str, Any], variable: str, value: str, attribute: str | None = None,
        instance: str | None = None) -> dict[str, Any]:
    return {**get(component, variable, instance, attribute), "attribute_value": value}


def one(results: list[dict[str, Any]]) -> dict[str, Any]:
    assert len(results) == 1
    return results[0]


# ------------------------------------------------------------------ GetVariables
def test_b06_get_variables_single_value(model):
    result = one(model.get_variables([get("OCPPCommCtrlr", "HeartbeatInterval")]))
    assert result == {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
                      "attribute_status": "Accepted", "attribute_value": "300"}


def test_b07_get_variables_multiple_values_answer_each_in_order(model):
    results = model.get_variables([
        get("TxCtrlr", "EVConnectionTimeOut"), get("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"),
        get("ChargingStation", "VendorName"), get("ClockCtrlr", "DateTime"),
        get({"name": "EVSE", "evse": {"id": 2}}, "Power", attribute="MaxSet"),
        get({"name": "Connector", "evse": {"id": 1, "connector_id": 1}}, "ConnectorType"),
        get("securityctrlr", "identity"),  # names are case-insensitive
    ])
    assert [r["attribute_value"] for r in results] == [
        "60", "3", "Acme", "2027-01-15T08:00:00Z", str(10 * 3 * 230), "sType2", "CP-7"]
    assert results[4]["attribute_type"] == "MaxSet"


def test_b32_get_variables_unknown_component(model):
    unknown = [get("FooCtrlr", "HeartbeatInterval"),
               get({"name": "EVSE", "evse": {"id": 3}}, "Power"),  # this station has two
               get({"name": "Connector", "evse": {"id": 1, "connector_id": 2}}, "ConnectorType"),
               get({"name": "EVSE"}, "Power"),
               get({"name": "OCPPCommCtrlr", "evse": {"id": 1}}, "HeartbeatInterval"),
               get({"name": "OCPPCommCtrlr", "instance": "Second"}, "HeartbeatInterval")]
    assert {r["attribute_status"] for r in model.get_variables(unknown)} == {"UnknownComponent"}


def test_b33_get_variables_unknown_variable(model):
    results = model.get_variables([get("OCPPCommCtrlr", "Foo"), get("OCPPCommCtrlr", "MessageAttempts", "X")])
    assert [r["attribute_status"] for r in results] == ["UnknownVariable", "UnknownVariable"]
    assert all("attribute_value" not in r for r in results)


def test_b34_get_variables_not_supported_attribute_type(model):
    assert one(model.get_variables([get("OCPPCommCtrlr", "HeartbeatInterval", attribute="Target")])) \
        ["attribute_status"] == "NotSupportedAttributeType"
    # Without a station there is no measured power, only the rating.
    assert one(model.get_variables([get({"name": "EVSE", "evse": {"id": 1}}, "Power")])) \
        ["attribute_status"] == "NotSupportedAttributeType"


def test_write_only_is_never_revealed(model, settings):
    assert one(model.set_variables([put("SecurityCtrlr", "BasicAuthPassword", PASSWORD)]))[
        "attribute_status"] == "Accepted"
    result = one(model.get_variables([get("SecurityCtrlr", "BasicAuthPassword")]))
    assert result["attribute_status"] == "Rejected" and "attribute_value" not in result
    secret_hex = PASSWORD.encode().hex()
    assert settings.get("authorization_key") == secret_hex  # the octets sent, as 1.6 writes them
    for base in ("FullInventory", "ConfigurationInventory"):
        text = json.dumps(model.report(base))
        assert PASSWORD not in text and secret_hex not in text
        item = next(i for i in model.report(base) if i["variable"]["name"] == "BasicAuthPassword")
        assert item["variable_attribute"] == [
            {"type": "Actual", "mutability": "WriteOnly", "persistent": True, "constant": False}]
    catalogue = VariableCatalogue(settings, 2)
    assert catalogue.info("SecurityCtrlr.BasicAuthPassword").value is None
    assert "SecurityCtrlr.BasicAuthPassword" not in catalogue.readable()
    assert "BasicAuthPassword" in SECRET_VARIABLES


# ------------------------------------------------------------------ SetVariables
def test_b09_set_variables_single_value_is_the_16_key_and_back(model, settings):
    keys = KeyCatalogue(settings, 2)
    assert one(model.set_variables([put("OCPPCommCtrlr", "HeartbeatInterval", "120")])) == {
        "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
        "attribute_type": "Actual", "attribute_status": "Accepted"}
    assert keys.info("HeartbeatInterval").value == "120"
    keys.change("MeterValuesSampledData", "Energy.Active.Import.Register,Voltage")
    assert one(model.get_variables([get("SampledDataCtrlr", "TxUpdatedMeasurands")]))[
        "attribute_value"] == "Energy.Active.Import.Register,Voltage"
    keys.change("StopTransactionOnInvalidId", "false")
    assert one(model.get_variables([get("TxCtrlr", "StopTxOnInvalidId")]))["attribute_value"] == "false"


def test_b10_set_variables_multiple_values(model, settings):
    results = model.set_variables([
        put("TxCtrlr", "TxStartPoint", "PowerPathClosed"),
        put("TxCtrlr", "TxStopPoint", "Authorized,EVConnected"),
        put("AuthCtrlr", "LocalPreAuthorize", "true"),
        put("AlignedDataCtrlr", "Interval", "900"),
        put("OCPPCommCtrlr", "MessageAttemptInterval", "30", instance="TransactionEvent"),
        # Points the station has no sensor for are refused, never accepted and ignored.
        put("TxCtrlr", "TxStartPoint", "ParkingBayOccupancy"),
        put("TxCtrlr", "TxStopPoint", "DataSigned"),
    ])
    assert [r["attribute_status"] for r in results] == ["Accepted"] * 5 + ["Rejected"] * 2
    assert all(r["attribute_status_info"]["reason_code"] == "InvalidValue" for r in results[5:])
    assert settings.get("tx_start_points") == "power_path_closed"
    assert set(str(settings.get("tx_stop_points")).split(",")) == {"ev_connected", "authorized"}
    assert settings.get("local_pre_authorize") is True
    assert settings.get("aligned_interval_s") == 900
    assert settings.get("tx_message_retry_interval_s") == 30
    assert one(model.get_variables([get("TxCtrlr", "TxStartPoint")]))["attribute_value"] == "PowerPathClosed"


def test_tx_points_default_to_how_the_station_behaves_under_16(model):
    results = model.get_variables([get("TxCtrlr", "TxStartPoint"), get("TxCtrlr", "TxStopPoint")])
    assert [r["attribute_value"] for r in results] == ["PowerPathClosed", "EVConnected,Authorized"]


@pytest.mark.parametrize(("start", "stop", "stored"), [
    ("EVConnected", "EVConnected", ("ev_connected", "ev_connected")),
    ("Authorized,EVConnected", "Authorized", ("authorized,ev_connected", "authorized")),
    ("EnergyTransfer", "PowerPathClosed,EnergyTransfer",
     ("energy_transfer", "power_path_closed,energy_transfer")),
])
def test_every_point_the_station_can_see_is_taken(model, settings, start, stop, stored):
    results = model.set_variables([put("TxCtrlr", "TxStartPoint", start),
                                   put("TxCtrlr", "TxStopPoint", stop)])
    assert [r["attribute_status"] for r in results] == ["Accepted", "Accepted"]
    assert (settings.get("tx_start_points"), settings.get("tx_stop_points")) == stored
    assert [r["attribute_value"] for r in model.get_variables(
        [get("TxCtrlr", "TxStartPoint"), get("TxCtrlr", "TxStopPoint")])] == [start, stop]


@pytest.mark.parametrize("value", ["", "EVConnected,EVConnected", "DataSigned", "ParkingBayOccupancy",
                                   "EVConnected,DataSigned"])
def test_points_without_a_sensor_or_no_point_at_all_are_refused(model, settings, value):
    result = one(model.set_variables([put("TxCtrlr", "TxStartPoint", value)]))
    assert result["attribute_status"] == "Rejected", value
    assert result["attribute_status_info"]["additional_info"]
    assert settings.get("tx_start_points") == "power_path_closed"


@pytest.mark.parametrize(("component", "variable", "value"), [
    ("OCPPCommCtrlr", "HeartbeatInterval", "often"),
    ("OCPPCommCtrlr", "HeartbeatInterval", "0"),
    ("OCPPCommCtrlr", "WebSocketPingInterval", "-1"),
    ("TxCtrlr", "StopTxOnInvalidId", "yes"),
    ("TxCtrlr", "TxStartPoint", "DataSigned"),
    ("SampledDataCtrlr", "TxUpdatedMeasurands", "Energy.Active.Import.Register,Temperature"),
    ("SecurityCtrlr", "BasicAuthPassword", "short"),
    ("OCPPCommCtrlr", "NetworkConfigurationPriority", "2"),  # slot 2 holds no profile
    ("OCPPCommCtrlr", "NetworkConfigurationPriority", "0,0"),
])
def test_b11_set_variables_invalid_values_are_rejected_and_change_nothing(model, settings, component,
                                                                           variable, value):
    before = {name: settings.as_text(name) for name in settings.definitions}
    result = one(model.set_variables([put(component, variable, value)]))
    assert result["attribute_status"] == "Rejected"
    assert result["attribute_status_info"]["reason_code"] == "InvalidValue"
    assert result["attribute_status_info"]["additional_info"]
    assert {name: settings.as_text(name) for name in settings.definitions} == before


def test_b35_b36_b37_set_variables_unknown_component_variable_attribute(model):
    results = model.set_variables([put("FooCtrlr", "HeartbeatInterval", "60"),
                                   put("OCPPCommCtrlr", "Foo", "60"),
                                   put("OCPPCommCtrlr", "HeartbeatInterval", "60", attribute="MaxSet")])
    assert [r["attribute_status"] for r in results] == [
        "UnknownComponent", "UnknownVariable", "NotSupportedAttributeType"]


def test_b39_set_variables_read_only_is_rejected(model, settings):
    results = model.set_variables([put("SecurityCtrlr", "SecurityProfile", "2"),
                                   put("SecurityCtrlr", "Identity", "CP-8"),
                                   put("SampledDataCtrlr", "TxEndedInterval", "10"),
                                   put({"name": "EVSE", "evse": {"id": 1}}, "Power", "1000",
                                       attribute="MaxSet")])
    assert [r["attribute_status"] for r in results] == ["Rejected"] * 4
    assert {r["attribute_status_info"]["reason_code"] for r in results} == {"ReadOnly"}
    assert settings.get("security_profile") == 0 and settings.get("sample_interval_s") == 60


def test_reboot_required_for_the_network_priority(model, settings):
    assert one(model.set_variables([put("OCPPCommCtrlr", "NetworkConfigurationPriority", "0")]))[
        "attribute_status"] == "RebootRequired"


async def test_a_value_set_over_201_survives_a_restart(tmp_path):
    settings = make_settings()
    store = await Store.open(tmp_path)
    try:
        settings.listeners.append(
            lambda name, _: store.submit(store.save_setting, name, settings.as_text(name)))
        DeviceModel(settings, 2).set_variables([put("OCPPCommCtrlr", "HeartbeatInterval", "42"),
                                                put("AuthCtrlr", "LocalPreAuthorize", "true")])
        stored = await store.call(store.load_settings)
    finally:
        await store.close()
    restarted = make_settings()
    restarted.restore(stored)
    results = DeviceModel(restarted, 2).get_variables([get("OCPPCommCtrlr", "HeartbeatInterval"),
                                                       get("AuthCtrlr", "LocalPreAuthorize")])
    assert [r["attribute_value"] for r in results] == ["42", "true"]
    assert KeyCatalogue(restarted, 2).info("HeartbeatInterval").value == "42"


# ------------------------------------------------------------------ reports
#: The variables the 2.0.1 specification requires of the components this station has.
REQUIRED = {
    "OCPPCommCtrlr": {"FileTransferProtocols", "MessageAttemptInterval", "MessageAttempts", "MessageTimeout",
                      "NetworkConfigurationPriority", "NetworkProfileConnectionAttempts", "OfflineThreshold",
                      "ResetRetries", "RetryBackOffRandomRange", "RetryBackOffRepeatTimes",
                      "RetryBackOffWaitMinimum", "UnlockOnEVSideDisconnect", "WebSocketPingInterval"},
    "TxCtrlr": {"EVConnectionTimeOut", "StopTxOnEVSideDisconnect", "StopTxOnInvalidId", "TxStartPoint",
                "TxStopPoint"},
    "SampledDataCtrlr": {"TxEndedInterval", "TxEndedMeasurands", "TxStartedMeasurands", "TxUpdatedInterval",
                         "TxUpdatedMeasurands"},
    "AlignedDataCtrlr": {"Interval", "Measurands", "TxEndedInterval", "TxEndedMeasurands"},
    "AuthCtrlr": {"AuthorizeRemoteStart", "LocalAuthorizeOffline", "LocalPreAuthorize"},
    "LocalAuthListCtrlr": {"BytesPerMessage", "ItemsPerMessage"},
    "SecurityCtrlr": {"CertificateEntries", "OrganizationName", "Identity", "SecurityProfile"},
    "DeviceDataCtrlr": {"BytesPerMessage", "ItemsPerMessage"},
    "ClockCtrlr": {"DateTime", "TimeSource"},
    "ChargingStation": {"Available", "SupplyPhases"},
    "EVSE": {"Available", "Power", "SupplyPhases"},
    "Connector": {"Available", "ConnectorType", "SupplyPhases"},
}


def test_b13_full_inventory_has_every_required_variable_of_every_instance(model):
    report = model.report("FullInventory")
    seen: dict[tuple[str, str], set[str]] = {}
    for item in report:
        evse = item["component"].get("evse", {})
        scope = (item["component"]["name"], json.dumps(evse, sort_keys=True))
        seen.setdefault(scope, set()).add(item["variable"]["name"])
        assert item["variable_attribute"] and item["variable_characteristics"]["data_type"]
    for component, names in REQUIRED.items():
        instances = [s for s in seen if s[0] == component]
        expected = {"EVSE": 2, "Connector": 2}.get(component, 1)
        assert len(instances) == expected, component
        for scope in instances:
            assert names <= seen[scope], (scope, names - seen[scope])
    instances = {(i["variable"]["name"], i["variable"].get("instance")) for i in report
                 if i["component"]["name"] == "DeviceDataCtrlr"}
    assert {("ItemsPerMessage", n) for n in ("GetReport", "GetVariables", "SetVariables")} <= instances


def test_b12_configuration_inventory_lists_what_can_be_set(model):
    report = model.report("ConfigurationInventory")
    assert report and all(a["mutability"] in ("ReadWrite", "WriteOnly")
                          for i in report for a in i["variable_attribute"])
    names = {i["variable"]["name"] for i in report}
    assert {"HeartbeatInterval", "TxStartPoint", "BasicAuthPassword"} <= names


def test_summary_inventory_without_the_station_and_unknown_bases_not_supported(model):
    summary = model.report("SummaryInventory")  # no station: no live state, only what exists
    assert [(i["component"]["name"], i["variable"]["name"]) for i in summary] == [
        ("ChargingStation", "Available"), ("EVSE", "Available"), ("EVSE", "Available"),
        ("Connector", "Available"), ("Connector", "Available")]
    assert model.report("CustomInventory") is None


def test_characteristics_tell_the_rules():
    model = DeviceModel(make_settings(), 1)
    report = {(i["component"]["name"], i["variable"]["name"]): i for i in model.report("FullInventory")}
    assert report["OCPPCommCtrlr", "HeartbeatInterval"]["variable_characteristics"] == {
        "data_type": "integer", "supports_monitoring": False, "unit": "s", "min_limit": 1, "max_limit": 86400}
    values = {name: report["TxCtrlr", name]["variable_characteristics"]["values_list"]
              for name in ("TxStartPoint", "TxStopPoint")}
    every = "EVConnected,Authorized,PowerPathClosed,EnergyTransfer"  # no bay detector, no signed meter
    assert values == {"TxStartPoint": every, "TxStopPoint": every}
    power = report["EVSE", "Power"]["variable_attribute"]
    assert power == [{"type": "MaxSet", "mutability": "ReadOnly", "persistent": True, "constant": True,
                      "value": str(16 * 3 * 230)}]


@pytest.mark.parametrize(("facts", "word"), [
    ({}, "Available"), ({"plugged": True}, "Occupied"), ({"activity": Activity.AUTHORIZED}, "Occupied"),
    ({"operative": False}, "Unavailable"), ({"fault": "rcd", "operative": False}, "Faulted"),
])
def test_availability_state_from_the_station_facts(facts, word):
    assert availability_state(StatusChanged(1, 0.0, **facts)) == word


# ------------------------------------------------------------------ the CLI's view
def test_catalogue_names_components_variables_instances_and_attributes(settings):
    catalogue = VariableCatalogue(settings, 2)
    keys = catalogue.keys()
    assert {"OCPPCommCtrlr.HeartbeatInterval", "OCPPCommCtrlr.MessageAttempts[TransactionEvent]",
            "EVSE[2].Power:MaxSet", "Connector[1,1].ConnectorType"} <= set(keys)
    info = catalogue.info("ocppcommctrlr.heartbeatinterval")
    assert (info.key, info.readonly, info.secret, info.value, info.setting, info.kind) == (
        "OCPPCommCtrlr.HeartbeatInterval", False, False, "300", "heartbeat_interval_s", "int")
    assert catalogue.typed_value("EVSE[2].Power:MaxSet") == 6900.0
    assert catalogue.typed_value("TxCtrlr.StopTxOnInvalidId") is True
    assert catalogue.change("OCPPCommCtrlr.HeartbeatInterval", "90") == "Accepted"
    assert KeyCatalogue(settings, 2).info("HeartbeatInterval").value == "90"
    assert catalogue.refusal("OCPPCommCtrlr.HeartbeatInterval", "0") == \
        "must be a whole number from 1 to 86400"
    assert catalogue.refusal("SecurityCtrlr.SecurityProfile", "1") == \
        "SecurityCtrlr.SecurityProfile is read-only"
    assert catalogue.change("SecurityCtrlr.SecurityProfile", "1") == "Rejected"
    assert catalogue.change("Nope.Nothing", "1") == "UnknownVariable"
    assert catalogue.info("SampledDataCtrlr.TxStartedMeasurands").setting is None  # a mirror writes nothing


def test_every_transaction_point_of_the_station_has_its_201_word():
    assert set(TX_POINT_WORDS.values()) == set(TX_POINTS)


def test_setting_variables_name_settings_that_exist(settings):
    assert set(SETTING_VARIABLES.values()) <= set(settings.definitions)
    assert SETTING_VARIABLES["OCPPCommCtrlr.HeartbeatInterval"] == "heartbeat_interval_s"
    assert len({v.key + str(v.scope) for v in VARIABLES}) == len(VARIABLES)
