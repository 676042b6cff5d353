"""OCPP 2.0.1 Core, after the OCTT cases: provisioning without the device model (B), availability (G).

Each test is named after the OCTT 2.0.1 test case whose behaviour it checks, on
the real daemon with the simulated hal against the scripted 2.0.1 CSMS.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ocpp.exceptions import SecurityError
from ocpp.v201 import call

from tests.integration.conftest import until
from tests.integration.loopback_csms201 import LoopbackCsms201
from tests.integration.v201_rig import CARD, booted, charging, station201


@pytest.fixture
async def csms() -> AsyncIterator[LoopbackCsms201]:
    server = await LoopbackCsms201(heartbeat_interval=5).start()
    yield server
    await server.close()


# ------------------------------------------------------------------ B: boot and reset
async def test_b01_cold_boot_accepted(csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path, station={"serial_number": "SN-201"}) as daemon:
        await booted(csms, daemon)
        await csms.wait_for("Heartbeat")
    boot = csms.of("BootNotification")[0].payload
    assert boot["reason"] == "PowerUp"
    assert boot["charging_station"] == {"model": "Pi AC", "vendor_name": "chargepoint",
                                        "serial_number": "SN-201", "firmware_version": "0.1.0"}
    status = csms.of("StatusNotification")[0].payload
    assert (status["evse_id"], status["connector_id"], status["connector_status"]) == (1, 1, "Available")
    assert csms.actions()[0] == "BootNotification"


async def test_b02_cold_boot_pending(csms: LoopbackCsms201, tmp_path: Path) -> None:
    """Pending: nothing but BootNotification is sent, other requests are a SecurityError, a
    triggered BootNotification goes at once, and the station carries on once accepted."""
    csms.boot_script = [("Pending", 3000)]
    async with station201(csms, tmp_path) as daemon:
        await csms.wait_for("BootNotification")
        await until(lambda: daemon.adapter is not None and daemon.adapter.registration is not None,
                    what="the Pending answer")
        with pytest.raises(SecurityError):
            await csms.call(call.RequestStartTransaction(id_token={"idToken": "X", "type": "Central"},
                                                         remote_start_id=1))
        result = await csms.call(call.TriggerMessage(requested_message="BootNotification"))
        assert result.status == "Accepted"
        await csms.wait_for("BootNotification", count=2)
        await booted(csms, daemon)
    actions = csms.actions()
    assert actions[:2] == ["BootNotification", "BootNotification"]


async def test_b03_cold_boot_rejected(csms: LoopbackCsms201, tmp_path: Path) -> None:
    csms.boot_script = [("Rejected", 2)]
    async with station201(csms, tmp_path) as daemon:
        await csms.wait_for("BootNotification")
        await until(lambda: daemon.adapter is not None and daemon.adapter.registration is not None,
                    what="the Rejected answer")
        with pytest.raises(SecurityError):
            await csms.call(call.ClearCache())
        await csms.wait_for("BootNotification", count=2)  # after the interval given
        await booted(csms, daemon)
    assert csms.actions()[:2] == ["BootNotification", "BootNotification"]


async def test_b11_reset_without_ongoing_transaction(csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        assert (await csms.call(call.Reset(type="OnIdle"))).status == "Accepted"
        await until(lambda: daemon.restart_requested == "soft", what="the restart")
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
    assert [b.payload["reason"] for b in csms.of("BootNotification")] == ["PowerUp", "RemoteReset"]


async def test_b12_reset_on_idle_with_ongoing_transaction_waits(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world, tx_id = await charging(csms, daemon)
        assert (await csms.call(call.Reset(type="OnIdle"))).status == "Scheduled"
        await csms.wait_for("TransactionEvent", count=2)  # a sample goes by: still charging
        assert daemon.restart_requested is None and world.contactor.closed
        world.card_reader.tap(CARD)  # the driver ends the session
        await until(lambda: daemon.restart_requested == "soft", what="the restart once idle")
    ended = csms.transaction(tx_id)[-1]
    assert ended["event_type"] == "Ended" and ended["transaction_info"]["stopped_reason"] == "Local"
    assert ended["trigger_reason"] == "StopAuthorized"


async def test_b13_reset_immediate_with_ongoing_transaction(csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        _, tx_id = await charging(csms, daemon)
        assert (await csms.call(call.Reset(type="Immediate"))).status == "Accepted"
        await until(lambda: daemon.restart_requested == "soft", what="the restart")
    ended = csms.transaction(tx_id)[-1]
    assert ended["event_type"] == "Ended"
    assert ended["transaction_info"]["stopped_reason"] == "ImmediateReset"
    assert ended["trigger_reason"] == "ResetCommand"


async def test_reset_of_an_evse_ends_its_transaction_and_keeps_the_station(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        _, tx_id = await charging(csms, daemon)
        assert (await csms.call(call.Reset(type="Immediate", evse_id=1))).status == "Accepted"
        assert (await csms.call(call.Reset(type="Immediate", evse_id=9))).status == "Rejected"
        await csms.wait_for("TransactionEvent", event_type="Ended")
        assert daemon.restart_requested is None
    assert csms.transaction(tx_id)[-1]["transaction_info"]["stopped_reason"] == "ImmediateReset"


# ------------------------------------------------------------------ G: availability
async def test_g01_status_notification_per_evse_and_connector(csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world = await booted(csms, daemon)
        world.plug_in()
        await csms.wait_for("StatusNotification", connector_status="Occupied")
        world.unplug()
        await csms.wait_for("StatusNotification", count=2, connector_status="Available")
    statuses = [r.payload["connector_status"] for r in csms.of("StatusNotification")]
    assert statuses == ["Available", "Occupied", "Available"]
    assert all(r.payload["evse_id"] == 1 and r.payload["connector_id"] == 1
               for r in csms.of("StatusNotification"))


async def test_g03_change_availability_evse_to_inoperative_and_back(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        result = await csms.call(call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}))
        assert result.status == "Accepted"
        await csms.wait_for("StatusNotification", connector_status="Unavailable")
        refused = await csms.call(call.RequestStartTransaction(
            id_token={"idToken": "R1", "type": "Central"}, remote_start_id=5, evse_id=1))
        assert refused.status == "Rejected"
        result = await csms.call(call.ChangeAvailability(operational_status="Operative", evse={"id": 1}))
        assert result.status == "Accepted"
        await csms.wait_for("StatusNotification", count=2, connector_status="Available")


async def test_g04_change_availability_station_and_unknown_connector(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        result = await csms.call(call.ChangeAvailability(operational_status="Inoperative"))
        assert result.status == "Accepted"
        await csms.wait_for("StatusNotification", connector_status="Unavailable")
        unknown = await csms.call(call.ChangeAvailability(operational_status="Operative",
                                                          evse={"id": 1, "connectorId": 2}))
        assert unknown.status == "Rejected"
        assert (await csms.call(call.ChangeAvailability(operational_status="Operative"))).status == "Accepted"
        await csms.wait_for("StatusNotification", count=2, connector_status="Available")


async def test_g05_change_availability_during_transaction_is_scheduled(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world, tx_id = await charging(csms, daemon)
        result = await csms.call(call.ChangeAvailability(operational_status="Inoperative", evse={"id": 1}))
        assert result.status == "Scheduled"
        assert world.contactor.closed, "the transaction goes on"
        assert (await csms.call(call.RequestStopTransaction(transaction_id=tx_id))).status == "Accepted"
        await csms.wait_for("TransactionEvent", event_type="Ended")
        world.unplug()
        await csms.wait_for("StatusNotification", connector_status="Unavailable")


async def test_a_fault_is_notified_as_an_event_and_faulted_status(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world = await booted(csms, daemon)
        world.faults.trip("rcd")
        await csms.wait_for("StatusNotification", connector_status="Faulted")
        event = (await csms.wait_for("NotifyEvent"))[0].payload
    data = event["event_data"][0]
    assert data["component"] == {"name": "Connector", "evse": {"id": 1, "connector_id": 1}}
    assert data["variable"] == {"name": "Problem"} and data["actual_value"] == "true"
    assert data["tech_code"] == "rcd" and data["event_notification_type"] == "HardWiredNotification"
