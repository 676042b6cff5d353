"""OCPP 2.0.1 provisioning over a real WebSocket (OCTT B_06-B_13, B_32-B_39, B_43).

The station's side is a small 2.0.1 peer made of the product's parts (the
robust library peer, the provisioning handlers, the device model over real
settings); the CSMS is the ``ocpp`` library's own 2.0.1 side. Every frame the
station sends is checked against the official 2.0.1 JSON schemas that ship in
the ``ocpp`` package, independently of the library's own checks.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema
import ocpp.v201
import pytest
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v201 import ChargePoint as LibChargePoint
from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from chargepoint.config import parse
from chargepoint.core.settings import Settings
from chargepoint.protocol.common.peer import RobustPeer
from chargepoint.protocol.v16.keys import KeyCatalogue
from chargepoint.protocol.v201.device_model import DeviceModel
from chargepoint.protocol.v201.provisioning import ProvisioningHandlers
from chargepoint.protocol.v201.variables import ITEMS_PER_REPORT, ITEMS_PER_REQUEST, SECRET_VARIABLES
from tests.integration.conftest import until

SCHEMAS = Path(ocpp.v201.__file__).parent / "schemas"
KEY = "00112233445566778899aabbccddeeff"
SUBPROTOCOL = "ocpp2.0.1"


def validator(name: str) -> jsonschema.protocols.Validator:
    schema = json.loads((SCHEMAS / f"{name}.json").read_text(encoding="utf-8-sig"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


class Station201(RobustPeer, LibChargePoint):
    """The station's provisioning over 2.0.1, as the adapter composes it: the block over a context
    with the device model and the connection's CALL."""

    call_results = call_result
    secret_names = SECRET_VARIABLES

    def __init__(self, identity: str, ws: Any, device_model: DeviceModel) -> None:
        super().__init__(identity, ws, response_timeout=10)
        self.device_model = device_model
        context = SimpleNamespace(device_model=device_model,
                                  call=lambda request: self.call(request, suppress=False))
        self.add_block(ProvisioningHandlers(context))  # type: ignore[arg-type]


class Csms201(LibChargePoint):
    """The library's 2.0.1 central system side, recording every frame the station sends."""

    def __init__(self, identity: str, ws: ServerConnection) -> None:
        super().__init__(identity, ws, response_timeout=10)
        self.frames: list[list[Any]] = []
        self.actions: dict[str, str] = {}
        self.reports: dict[int, list[dict[str, Any]]] = {}

    async def route_message(self, raw_msg: str | bytes) -> None:
        self.frames.append(json.loads(raw_msg))
        await super().route_message(raw_msg)

    async def _send(self, message: str) -> None:
        frame = json.loads(message)
        if frame[0] == 2:
            self.actions[frame[1]] = frame[2]
        await super()._send(message)

    @on(Action.notify_report)
    def notify_report(self, request_id: int, **payload: Any) -> Any:
        self.reports.setdefault(request_id, []).append(payload)
        return call_result.NotifyReport()

    def check_frames(self) -> int:
        """Every frame the station sent is valid under the 2.0.1 schemas; how many there were."""
        for frame in self.frames:
            if frame[0] == 2:
                name = f"{frame[2]}Request"
            elif frame[0] == 3:
                name = f"{self.actions[frame[1]]}Response"
            else:
                continue  # a CALLERROR: checked where one is expected
            errors = sorted(validator(name).iter_errors(frame[-1]), key=str)
            assert not errors, f"{name}: {errors[0].message} in {json.dumps(frame)[:300]}"
        return len(self.frames)


@dataclass
class Rig:
    csms: Csms201
    station: Station201
    settings: Settings
    model: DeviceModel


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    settings = Settings(parse({"station": {"identity": "CP-201"},
                               "ocpp": {"csms_url": "ws://127.0.0.1:9/ocpp", "security_profile": 1,
                                        "authorization_key": KEY}}))
    model = DeviceModel(settings, 1, clock=lambda: 1_800_000_000.0)
    peers: asyncio.Queue[Csms201] = asyncio.Queue()

    async def serve_station(ws: ServerConnection) -> None:
        csms = Csms201(ws.request.path.strip("/"), ws)
        peers.put_nowait(csms)
        await csms.start()

    async with serve(serve_station, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
        port = server.sockets[0].getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/CP-201", subprotocols=[SUBPROTOCOL], proxy=None) as ws:
            assert ws.subprotocol == SUBPROTOCOL
            station = Station201("CP-201", ws, model)
            running = asyncio.ensure_future(station.start())
            csms = await asyncio.wait_for(peers.get(), 5)
            yield Rig(csms, station, settings, model)
            assert csms.check_frames() > 0
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)


def variable(component: str, name: str, **extra: Any) -> dict[str, Any]:
    return {"component": {"name": component}, "variable": {"name": name}, **extra}


async def test_b06_b07_b32_b33_b34_get_variables(rig):
    result = await rig.csms.call(call.GetVariables(get_variable_data=[
        variable("OCPPCommCtrlr", "HeartbeatInterval"),
        variable("TxCtrlr", "TxStopPoint"),
        {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"},
         "attribute_type": "MaxSet"},
        variable("NoSuchCtrlr", "HeartbeatInterval"),
        variable("OCPPCommCtrlr", "NoSuchVariable"),
        variable("OCPPCommCtrlr", "HeartbeatInterval", attribute_type="Target"),
        variable("SecurityCtrlr", "BasicAuthPassword"),
    ]))
    statuses = [(r["attribute_status"], r.get("attribute_value")) for r in result.get_variable_result]
    assert statuses == [("Accepted", "300"), ("Accepted", "EVConnected,Authorized"), ("Accepted", "22080"),
                        ("UnknownComponent", None), ("UnknownVariable", None),
                        ("NotSupportedAttributeType", None), ("Rejected", None)]


async def test_b09_b10_b11_b39_set_variables_are_the_settings_16_sees(rig):
    result = await rig.csms.call(call.SetVariables(set_variable_data=[
        variable("OCPPCommCtrlr", "HeartbeatInterval", attribute_value="77"),
        variable("TxCtrlr", "TxStartPoint", attribute_value="DataSigned"),  # no signed meter: refused
        variable("AuthCtrlr", "LocalPreAuthorize", attribute_value="maybe"),
        variable("SecurityCtrlr", "SecurityProfile", attribute_value="0"),
        variable("SecurityCtrlr", "BasicAuthPassword", attribute_value="a-new-password-18"),
    ]))
    assert [r["attribute_status"] for r in result.set_variable_result] == [
        "Accepted", "Rejected", "Rejected", "Rejected", "Accepted"]
    assert [r.get("attribute_status_info", {}).get("reason_code") for r in result.set_variable_result] == [
        None, "InvalidValue", "InvalidValue", "ReadOnly", None]
    assert KeyCatalogue(rig.settings, 1).info("HeartbeatInterval").value == "77"
    assert rig.settings.get("tx_start_points") == "power_path_closed"
    assert rig.settings.get("security_profile") == 1
    assert bytes.fromhex(str(rig.settings.get("authorization_key"))) == b"a-new-password-18"
    again = await rig.csms.call(call.GetVariables(get_variable_data=[
        variable("OCPPCommCtrlr", "HeartbeatInterval")]))
    assert again.get_variable_result[0]["attribute_value"] == "77"


@pytest.mark.parametrize("base", ["FullInventory", "ConfigurationInventory", "SummaryInventory"])
async def test_b12_b13_base_report_in_parts(rig, base):
    result = await rig.csms.call(call.GetBaseReport(request_id=7, report_base=base))
    assert result.status == "Accepted"
    expected = rig.model.report(base)
    parts = len(range(0, len(expected), ITEMS_PER_REPORT))
    await until(lambda: len(rig.csms.reports.get(7, [])) == parts, what=f"{parts} NotifyReport parts")
    reports = rig.csms.reports[7]
    assert [r["seq_no"] for r in reports] == list(range(parts))
    assert [r.get("tbc", False) for r in reports] == [True] * (parts - 1) + [False]
    assert all(len(r["report_data"]) <= ITEMS_PER_REPORT for r in reports)
    assert {r["generated_at"] for r in reports} == {"2027-01-15T08:00:00Z"}
    assert [item for r in reports for item in r["report_data"]] == expected
    if base == "FullInventory":
        assert parts >= 3
    text = json.dumps(rig.csms.frames)
    assert KEY not in text


async def test_b43_set_network_profile_refuses_a_downgrade_and_keeps_a_good_one(rig):
    def profile(security: int, url: str = "ws://127.0.0.1:9/next", **extra: Any) -> dict[str, Any]:
        return {"ocpp_version": "OCPP20", "ocpp_transport": "JSON", "ocpp_csms_url": url,
                "message_timeout": 30, "security_profile": security, "ocpp_interface": "Wired0", **extra}

    refused = await rig.csms.call(call.SetNetworkProfile(configuration_slot=1, connection_data=profile(0)))
    assert refused.status == "Rejected"
    assert "downgrading is not allowed" in refused.status_info["additional_info"]
    for slot, data in ((1, profile(1, ocpp_transport="SOAP")),
                       (1, profile(1, apn={"apn": "internet", "apn_authentication": "NONE"})),
                       (7, profile(1))):
        assert (await rig.csms.call(call.SetNetworkProfile(configuration_slot=slot, connection_data=data))
                ).status == "Rejected"
    assert rig.model.network_profiles.slots() == [0]

    accepted = await rig.csms.call(call.SetNetworkProfile(configuration_slot=1, connection_data=profile(1)))
    assert accepted.status == "Accepted"
    priority = await rig.csms.call(call.SetVariables(set_variable_data=[
        variable("OCPPCommCtrlr", "NetworkConfigurationPriority", attribute_value="1,0")]))
    assert priority.set_variable_result[0]["attribute_status"] == "RebootRequired"
    assert [(p.slot, p.url, p.security_profile) for p in rig.model.network_profiles.in_priority()] == [
        (1, "ws://127.0.0.1:9/next", 1), (0, "ws://127.0.0.1:9/ocpp", 1)]
    assert rig.settings.get("security_profile") == 1


async def test_more_items_than_the_station_takes_get_a_callerror_and_the_link_stays_up(rig):
    many = [variable("OCPPCommCtrlr", "HeartbeatInterval")] * (ITEMS_PER_REQUEST + 1)
    with pytest.raises(OCPPError) as refused:
        await rig.csms.call(call.GetVariables(get_variable_data=many), suppress=False)
    assert refused.value.code == "OccurrenceConstraintViolation"
    fine = await rig.csms.call(call.GetVariables(get_variable_data=many[:ITEMS_PER_REQUEST]))
    assert len(fine.get_variable_result) == ITEMS_PER_REQUEST
