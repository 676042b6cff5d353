"""The 2.0.1 device model on a running station: live state, and values that outlive a restart.

The daemon runs on the sim hal and talks 1.6 to the loopback CSMS; the device
model is built over its settings and station, as the 2.0.1 adapter builds it,
so a value set over 2.0.1 is checked where 1.6 and the state database see it.
"""

from __future__ import annotations

from ocpp.v16 import call

from chargepoint.core.events import StopReason
from chargepoint.protocol.v201.device_model import DeviceModel
from tests.integration.conftest import charging, until

EVSE_1 = {"name": "EVSE", "evse": {"id": 1}}
CONNECTOR_1 = {"name": "Connector", "evse": {"id": 1, "connector_id": 1}}


def get(model: DeviceModel, component: dict[str, object] | str, name: str,
        attribute: str | None = None) -> str:
    request: dict[str, object] = {
        "component": component if isinstance(component, dict) else {"name": component},
        "variable": {"name": name}}
    if attribute:
        request["attribute_type"] = attribute
    [result] = model.get_variables([request])
    assert result["attribute_status"] == "Accepted", result
    return result["attribute_value"]


async def test_availability_local_list_and_measured_power_come_from_the_station(csms, station):
    async with station() as daemon:
        model = DeviceModel(daemon.settings, 1, station=daemon.station)
        await csms.wait_for("StatusNotification", connector_id=1, status="Available")
        assert [get(model, c, "AvailabilityState") for c in ("ChargingStation", EVSE_1, CONNECTOR_1)] == [
            "Available"] * 3
        assert get(model, "LocalAuthListCtrlr", "Entries") == "0"
        summary = {(i["component"]["name"], i["variable"]["name"]) for i in model.report("SummaryInventory")}
        assert ("Connector", "AvailabilityState") in summary
        await charging(csms, daemon)
        assert get(model, CONNECTOR_1, "AvailabilityState") == "Occupied"
        await until(lambda: float(model.value(*_power(model)) or 0) > 1000, what="measured power")
        assert float(get(model, EVSE_1, "Power")) <= float(get(model, EVSE_1, "Power", "MaxSet"))
        daemon.station.change_availability(0, False)  # scheduled: inoperative once the transaction ends
        assert await daemon.station.stop_transaction(1, StopReason.LOCAL)
        await until(lambda: get(model, CONNECTOR_1, "AvailabilityState") == "Unavailable", what="Unavailable")


def _power(model: DeviceModel) -> tuple[object, str, int]:
    var = next(v for v, evse, _ in model.addresses() if v.name == "Power" and evse == 1)
    return var, "Actual", 1


async def test_a_value_set_over_201_is_what_16_reports_after_a_restart(csms, station):
    async with station() as daemon:
        await csms.wait_for("BootNotification")  # the state database is open
        model = DeviceModel(daemon.settings, 1, station=daemon.station)
        [result] = model.set_variables([{"component": {"name": "OCPPCommCtrlr"},
                                         "variable": {"name": "WebSocketPingInterval"},
                                         "attribute_value": "45"}])
        assert result["attribute_status"] == "Accepted"
    async with station() as daemon:
        await csms.wait_for("BootNotification", count=2)
        assert get(DeviceModel(daemon.settings, 1), "OCPPCommCtrlr", "WebSocketPingInterval") == "45"
        answer = await csms.call(call.GetConfiguration(key=["WebSocketPingInterval"]))
        assert answer.configuration_key == [
            {"key": "WebSocketPingInterval", "readonly": False, "value": "45"}]
