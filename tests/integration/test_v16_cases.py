"""OCPP 1.6 behaviour an OCTT-style run asks for, on the station core through the 1.6 adapter."""

from __future__ import annotations

from ocpp.v16 import call
from ocpp.v16.enums import AuthorizationStatus

from tests.integration.conftest import charging, until


async def test_invalid_at_start_with_stop_on_invalid_id_false_stops_energy_and_keeps_the_transaction(
        csms, station):
    csms.start_status["CAFE0001"] = AuthorizationStatus.invalid
    async with station() as daemon:
        await csms.wait_for("StatusNotification", connector_id=1)
        change = call.ChangeConfiguration(key="StopTransactionOnInvalidId", value="false")
        assert (await csms.call(change)).status == "Accepted"
        world = daemon.hardware.worlds[1]
        world.plug_in()
        world.card_reader.tap("CAFE0001")
        await csms.wait_for("StartTransaction")
        await csms.wait_for("StatusNotification", connector_id=1, status="SuspendedEVSE")
        await until(lambda: not world.contactor.closed and world.ev.state == "B", 5, "no energy")
        assert csms.of("StopTransaction") == [], "the transaction stays open"
        assert daemon.station.active_transactions(), "kept open at the station too"


async def test_emergency_stop_while_charging_stops_the_transaction_with_its_reason(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        world.faults.trip("emergency_stop")
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "EmergencyStop"
        await csms.wait_for("StatusNotification", connector_id=1, status="Faulted")


async def test_a_card_of_the_same_group_ends_the_transaction(csms, station):
    csms.tag_parent.update({"CARD-A": "FLEET-1", "CARD-B": "FLEET-1", "CARD-C": "FLEET-2"})
    async with station() as daemon:
        world = await charging(csms, daemon, card="CARD-A")
        world.card_reader.tap("CARD-C")  # another fleet: no effect on this transaction
        await csms.wait_for("Authorize", id_tag="CARD-C")
        world.card_reader.tap("CARD-B")
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "Local" and stop["id_tag"] == "CARD-B"
        assert len(csms.of("StopTransaction")) == 1


async def test_a_card_while_finishing_starts_a_new_transaction(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        assert await csms.remote_stop(100) == "Accepted"
        await csms.wait_for("StopTransaction")
        await csms.wait_for("StatusNotification", connector_id=1, status="Finishing")
        world.card_reader.tap("CAFE0002")  # the EV is still plugged in
        starts = await csms.wait_for("StartTransaction", count=2)
        assert starts[1].payload["id_tag"] == "CAFE0002"
        await csms.wait_for("StatusNotification", connector_id=1, status="Charging", count=2)
