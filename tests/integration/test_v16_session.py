"""A station on the sim hal against a real websockets CSMS on loopback (OCPP 1.6J)."""

from __future__ import annotations

from ocpp.v16.enums import AuthorizationStatus, RegistrationStatus

from chargepoint.core.events import IdToken, TokenType
from hal.interfaces import MeterFailureKind
from tests.integration.conftest import charging, until

CARD = "CAFE0001"


async def test_boot_accepted_then_status_and_heartbeat(csms, station):
    csms.heartbeat_interval = 2  # simulated seconds: 0.2 s of real time
    async with station() as daemon:
        await csms.wait_for("Heartbeat", count=2)
        assert csms.paths[0] == "/ocpp/CP-TEST-1"
        assert csms.subprotocols[0] == "ocpp1.6"
        actions = csms.actions()
        assert actions[0] == "BootNotification"
        boot = csms.received[0].payload
        assert boot["charge_point_vendor"] == "chargepoint"
        statuses = csms.of("StatusNotification")
        assert [(s.payload["connector_id"], s.payload["status"]) for s in statuses[:2]] == [
            (0, "Available"), (1, "Available")]
        assert all(s.payload["error_code"] == "NoError" for s in statuses)
        assert daemon.settings.get("heartbeat_interval_s") == 2


async def test_boot_pending_and_rejected_are_retried_and_nothing_else_is_sent(csms, station):
    csms.boot_script = [(RegistrationStatus.pending, 1), (RegistrationStatus.rejected, 2)]
    async with station():
        await csms.wait_for("StatusNotification")
        actions = csms.actions()
        assert actions[:3] == ["BootNotification"] * 3
        boots = csms.of("BootNotification")
        # the intervals are simulated seconds; the sim runs 10x real time
        assert boots[1].at - boots[0].at >= 0.1 * 0.9
        assert boots[2].at - boots[1].at >= 0.2 * 0.9


async def test_whole_session_with_card_energy_matches_meter(csms, station):
    async with station() as daemon:
        world = daemon.hardware.worlds[1]
        await csms.wait_for("StatusNotification", connector_id=1, status="Available")
        world.plug_in()
        await csms.wait_for("StatusNotification", connector_id=1, status="Preparing")
        world.card_reader.tap(CARD)
        start = (await csms.wait_for("StartTransaction"))[0].payload
        assert start["id_tag"] == CARD and start["connector_id"] == 1
        assert csms.actions().index("Authorize") < csms.actions().index("StartTransaction")
        await csms.wait_for("StatusNotification", connector_id=1, status="Charging")
        samples = await csms.wait_for("MeterValues", count=2)
        assert all(s.payload["transaction_id"] == 100 for s in samples)
        values = samples[-1].payload["meter_value"][0]["sampled_value"]
        measurands = {v["measurand"] for v in values}
        assert {"Energy.Active.Import.Register", "Power.Active.Import", "Current.Import"} <= measurands
        world.card_reader.tap(CARD)  # same card again: ends the session
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["transaction_id"] == 100
        assert stop["reason"] == "Local"
        assert stop["id_tag"] == CARD
        energy_wh = stop["meter_stop"] - start["meter_start"]
        assert energy_wh > 0
        assert abs(stop["meter_stop"] - world.meter.energy_wh) <= 1
        contexts = [v["context"] for mv in stop["transaction_data"] for v in mv["sampled_value"]]
        # StopTxnSampledData (energy by default) of every reading the transaction took
        assert contexts[0] == "Transaction.Begin" and contexts[-1] == "Transaction.End"
        assert set(contexts[1:-1]) == {"Sample.Periodic"} and len(contexts) >= 4
        await csms.wait_for("StatusNotification", connector_id=1, status="Finishing")
        world.unplug()
        await csms.wait_for("StatusNotification", connector_id=1, status="Available", count=2)
        assert not world.contactor.closed


async def test_refused_card_starts_nothing(csms, station, station_log):
    csms.tag_status["BADCARD"] = AuthorizationStatus.blocked
    async with station() as daemon:
        world = daemon.hardware.worlds[1]
        world.plug_in()
        await csms.wait_for("StatusNotification", connector_id=1, status="Preparing")
        world.card_reader.tap("BADCARD")
        await csms.wait_for("Authorize")
        # the station has decided about the card (a session would have begun before this line)
        await station_log.wait_for("card BADCARD not accepted")
        assert daemon.station.connectors[1].session is None, "no session for a refused card"
        assert csms.of("StartTransaction") == []
        assert not world.contactor.closed


async def test_remote_start_and_remote_stop(csms, station):
    async with station() as daemon:
        world = daemon.hardware.worlds[1]
        await csms.wait_for("StatusNotification", connector_id=1)
        assert await csms.remote_start("REMOTE1", connector_id=1) == "Accepted"
        # a second start for the same connector is refused while the first holds it
        assert await csms.remote_start("REMOTE2", connector_id=1) == "Rejected"
        assert await csms.remote_start("REMOTE2", connector_id=7) == "Rejected"
        await csms.wait_for("StatusNotification", connector_id=1, status="Preparing")
        world.plug_in()
        start = (await csms.wait_for("StartTransaction"))[0].payload
        assert start["id_tag"] == "REMOTE1"
        assert csms.of("Authorize") == []  # AuthorizeRemoteTxRequests is false
        await until(lambda: world.contactor.closed)
        assert await csms.remote_stop(999) == "Rejected"
        assert await csms.remote_stop(100) == "Accepted"
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "Remote" and stop["transaction_id"] == 100
        assert not world.contactor.closed


async def test_remote_start_authorizes_first_when_configured(csms, station, station_log):
    csms.tag_status["NOPE"] = AuthorizationStatus.invalid
    async with station(ocpp={"authorize_remote_tx_requests": True}) as daemon:
        world = daemon.hardware.worlds[1]
        world.plug_in()
        await csms.wait_for("StatusNotification", connector_id=1, status="Preparing")
        assert await csms.remote_start("NOPE", connector_id=1) == "Accepted"
        await csms.wait_for("Authorize", id_tag="NOPE")
        # the station has decided about the refused id (a session would have begun before this line)
        await station_log.wait_for("remote start for NOPE not accepted")
        assert daemon.station.connectors[1].session is None, "no session for a refused id"
        assert csms.of("StartTransaction") == []
        assert await csms.remote_start("YES", connector_id=1) == "Accepted"
        await csms.wait_for("StartTransaction", id_tag="YES")
        assert [s.payload["id_tag"] for s in csms.of("StartTransaction")] == ["YES"]


async def test_unplugging_ends_the_transaction(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        world.unplug()
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "EVDisconnected"
        assert not world.contactor.closed


async def test_start_refused_by_csms_stops_the_transaction(csms, station):
    csms.start_status[CARD] = AuthorizationStatus.blocked  # blocked between Authorize and Start
    async with station() as daemon:
        world = daemon.hardware.worlds[1]
        world.plug_in()
        await csms.wait_for("StatusNotification", connector_id=1, status="Preparing")
        world.card_reader.tap(CARD)
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "DeAuthorized"
        assert not world.contactor.closed


async def test_free_vend_starts_on_plug_in(csms, station):
    async with station(station={"free_vend": True, "free_vend_id_tag": "HOME"}) as daemon:
        daemon.hardware.worlds[1].plug_in()
        start = (await csms.wait_for("StartTransaction"))[0].payload
        assert start["id_tag"] == "HOME"
        assert csms.of("Authorize") == []


async def test_reconnects_and_delivers_queued_messages_in_order(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        first = daemon.link.connections
        # the CSMS drops the socket; messages made meanwhile wait in the outbox
        await csms.sockets[-1].close()
        await until(lambda: not daemon.link.connected.is_set(), timeout=5)
        assert world.contactor.closed, "charging continues while offline"
        await until(lambda: daemon.link.connections > first, timeout=10)
        await csms.wait_for("BootNotification", count=2)
        world.card_reader.tap(CARD)
        stop = (await csms.wait_for("StopTransaction"))[0]
        assert stop.connection == 2
        assert stop.payload["transaction_id"] == 100
        tx_actions = [a for a in csms.actions() if a in ("StartTransaction", "StopTransaction")]
        assert tx_actions == ["StartTransaction", "StopTransaction"]


async def test_offline_session_is_delivered_after_reconnect(csms, station):
    async with station() as daemon:
        world = daemon.hardware.worlds[1]
        await csms.wait_for("StatusNotification", connector_id=1)
        await csms.close()  # the CSMS goes away entirely
        await csms.sockets[-1].wait_closed()
        await until(lambda: not daemon.link.connected.is_set(), timeout=5)
        daemon.station.remote_start(IdToken("OFFLINE1", TokenType.LOCAL), 1)  # a local start while offline
        world.plug_in()
        await until(lambda: world.contactor.closed)
        [(_, tx)] = daemon.station.active_transactions()
        # energy flows before the EV leaves, so the stop reading is above the start one
        await until(lambda: world.meter.energy_wh >= tx.meter_start_wh + 2, what="a few Wh charged")
        world.unplug()
        await until(lambda: daemon.station.active_transactions() == [])
        assert [type(e.event).__name__ for e in list(daemon.outbox._queue)][0] == "TransactionStarted"
        await csms.start_on(csms.port)
        stop = (await csms.wait_for("StopTransaction", timeout=15))[0].payload
        start = csms.of("StartTransaction")[0].payload
        assert start["id_tag"] == "OFFLINE1"
        assert stop["reason"] == "EVDisconnected"
        assert stop["transaction_id"] == 100
        assert stop["meter_stop"] > start["meter_start"]
        await until(lambda: len(daemon.outbox) == 0)


async def test_faults_are_reported_with_their_error_codes(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        world.faults.trip("rcd")
        assert not world.contactor.commanded, "the trip callback opens the contactor at once"
        faulted = (await csms.wait_for("StatusNotification", connector_id=1, status="Faulted"))[0]
        assert faulted.payload["error_code"] == "GroundFailure"


async def test_welded_contactor_reports_power_switch_failure(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        world.contactor.weld()
        world.card_reader.tap(CARD)
        await csms.wait_for("StopTransaction")
        faulted = (await csms.wait_for("StatusNotification", connector_id=1, status="Faulted"))[0]
        assert faulted.payload["error_code"] == "PowerSwitchFailure"


async def test_meter_failure_is_reported_and_recovers(csms, station):
    async with station() as daemon:
        world = daemon.hardware.worlds[1]
        await csms.wait_for("StatusNotification", connector_id=1)
        world.meter.fail_next(MeterFailureKind.TIMEOUT, count=3)
        failed = (await csms.wait_for("StatusNotification", connector_id=1,
                                      error_code="PowerMeterFailure"))[0]
        assert failed.payload["status"] == "Available"
        await csms.wait_for("StatusNotification", connector_id=1, error_code="NoError", count=2)


async def test_shutdown_stops_a_running_transaction_and_delivers_it(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
    stop = (await csms.wait_for("StopTransaction"))[0].payload
    assert stop["reason"] == "Reboot"
    assert not world.contactor.closed
