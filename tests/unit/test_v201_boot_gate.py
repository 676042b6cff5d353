"""What a 2.0.1 station answers before its BootNotification is accepted: while the answer is still
awaited, as while Pending, the CSMS's provisioning requests are answered, the rest is a SecurityError."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from ocpp.exceptions import SecurityError
from ocpp.messages import Call
from ocpp.v201.enums import RegistrationStatusEnumType

from chargepoint.config import parse
from chargepoint.core.settings import Settings
from chargepoint.protocol.v201.device_model import DeviceModel
from chargepoint.protocol.v201.peer import V201Peer
from chargepoint.protocol.v201.provisioning import ProvisioningHandlers


class Wire:
    """The frames the peer sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, frame: str) -> None:
        self.sent.append(frame)


@pytest.mark.parametrize("registration", [None, RegistrationStatusEnumType.pending])
async def test_provisioning_is_answered_while_the_boot_is_not_accepted(
        registration: RegistrationStatusEnumType | None) -> None:
    settings = Settings(parse({"station": {"identity": "CP"}, "ocpp": {"csms_url": "ws://x"}}, "<test>"))
    wire = Wire()
    peer = V201Peer("CP", wire, SimpleNamespace(registration=registration), 30)  # type: ignore[arg-type]
    peer.add_block(ProvisioningHandlers(SimpleNamespace(device_model=DeviceModel(settings, 1))))  # type: ignore[arg-type]
    await peer._handle_call(Call("1", "GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]}))
    [answer] = [json.loads(frame) for frame in wire.sent]
    assert answer[0] == 3 and answer[2]["getVariableResult"][0]["attributeStatus"] == "Accepted"
    with pytest.raises(SecurityError):
        await peer._handle_call(Call("2", "ClearCache", {}))
