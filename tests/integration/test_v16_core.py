"""OCPP 1.6 Core operations initiated by the CSMS, against the sim station on loopback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from ocpp.exceptions import OccurenceConstraintViolationError
from ocpp.v16 import call

from tests.integration.conftest import charging, until
from tests.integration.loopback_csms import LoopbackCsms

CARD = "CAFE0001"

#: Every configuration key the 1.6 Core profile requires of a charge point.
CORE_REQUIRED_KEYS = {
    "AuthorizeRemoteTxRequests", "ClockAlignedDataInterval", "ConnectionTimeOut",
    "ConnectorPhaseRotation", "GetConfigurationMaxKeys", "HeartbeatInterval", "LocalAuthorizeOffline",
    "LocalPreAuthorize", "MeterValuesAlignedData", "MeterValuesSampledData", "MeterValueSampleInterval",
    "NumberOfConnectors", "ResetRetries", "StopTransactionOnEVSideDisconnect",
    "StopTransactionOnInvalidId", "StopTxnAlignedData", "StopTxnSampledData", "SupportedFeatureProfiles",
    "TransactionMessageAttempts", "TransactionMessageRetryInterval", "UnlockConnectorOnEVSideDisconnect",
}


def configuration(result) -> dict[str, dict]:
    return {entry["key"]: entry for entry in result.configuration_key or []}


def periodic_samples_after(csms: LoopbackCsms, moment: float) -> list[dict[str, Any]]:
    """Periodic MeterValues of a transaction read later than ``moment`` (the station's epoch s)."""
    return [r.payload for r in csms.of("MeterValues")
            if "transaction_id" in r.payload
            and r.payload["meter_value"][0]["sampled_value"][0]["context"] == "Sample.Periodic"
            and datetime.fromisoformat(r.payload["meter_value"][0]["timestamp"]).timestamp() > moment]


async def test_get_configuration_lists_every_core_key(csms, station):
    async with station():
        await csms.wait_for("StatusNotification", connector_id=1)
        result = await csms.call(call.GetConfiguration())
        keys = configuration(result)
        assert CORE_REQUIRED_KEYS <= set(keys)
        assert keys["NumberOfConnectors"] == {"key": "NumberOfConnectors", "readonly": True, "value": "1"}
        assert keys["SupportedFeatureProfiles"]["value"] == (
            "Core,FirmwareManagement,LocalAuthListManagement,SmartCharging,Reservation,RemoteTrigger")
        assert keys["ReserveConnectorZeroSupported"] == {
            "key": "ReserveConnectorZeroSupported", "readonly": True, "value": "false"}
        assert "AuthorizationKey" not in keys, "write-only: not listed with a value"
        some = await csms.call(call.GetConfiguration(key=["HeartbeatInterval", "Bogus", "AuthorizationKey"]))
        assert list(configuration(some)) == ["HeartbeatInterval", "AuthorizationKey"]
        assert "value" not in configuration(some)["AuthorizationKey"]
        assert some.unknown_key == ["Bogus"]
        with pytest.raises(OccurenceConstraintViolationError):
            await csms.call(call.GetConfiguration(key=[f"K{i}" for i in range(65)]))


@pytest.mark.parametrize(
    ("key", "value", "status"),
    [
        ("HeartbeatInterval", "120", "Accepted"),
        ("HeartbeatInterval", "-5", "Rejected"),
        ("HeartbeatInterval", "often", "Rejected"),
        ("MeterValuesSampledData", "Energy.Active.Import.Register,Voltage", "Accepted"),
        ("MeterValuesSampledData", "Energy.Active.Import.Register,Smell", "Rejected"),
        ("NumberOfConnectors", "4", "Rejected"),
        ("StopTransactionOnEVSideDisconnect", "maybe", "Rejected"),
        ("ConnectorPhaseRotation", "1.RST", "Accepted"),
        ("ConnectorPhaseRotation", "1.XYZ", "Rejected"),
        ("NoSuchKey", "1", "NotSupported"),
    ],
)
async def test_change_configuration_checks_every_value(csms, station, key, value, status):
    async with station():
        await csms.wait_for("StatusNotification", connector_id=1)
        result = await csms.call(call.ChangeConfiguration(key=key, value=value))
        assert result.status == status


async def test_changed_configuration_survives_a_restart(csms, station):
    async with station() as daemon:
        await csms.wait_for("StatusNotification", connector_id=1)
        assert (await csms.call(call.ChangeConfiguration(key="MeterValueSampleInterval", value="33"))
                ).status == "Accepted"
        assert daemon.settings.get("sample_interval_s") == 33
    async with station() as daemon:
        await csms.wait_for("BootNotification", count=2)
        assert daemon.settings.get("sample_interval_s") == 33
        keys = configuration(await csms.call(call.GetConfiguration(key=["MeterValueSampleInterval"])))
        assert keys["MeterValueSampleInterval"]["value"] == "33"


async def test_heartbeat_interval_change_applies(csms, station):
    async with station():
        await csms.wait_for("StatusNotification", connector_id=1)
        assert not csms.of("Heartbeat")
        # the running 300 s wait is cut short: the new interval applies at once
        await csms.call(call.ChangeConfiguration(key="HeartbeatInterval", value="2"))
        beats = await csms.wait_for("Heartbeat", count=3, timeout=5)
        assert beats[2].at - beats[1].at >= 0.2 * 0.9  # 2 simulated seconds at 10x


async def test_change_availability_connector_and_station(csms, station, station_log):
    async with station() as daemon:
        world = daemon.hardware.worlds[1]
        await csms.wait_for("StatusNotification", connector_id=1)
        assert (await csms.call(call.ChangeAvailability(connector_id=5, type="Inoperative"))
                ).status == "Rejected"
        assert (await csms.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
                ).status == "Accepted"
        await csms.wait_for("StatusNotification", connector_id=1, status="Unavailable")
        await csms.wait_for("StatusNotification", connector_id=0, status="Unavailable")
        world.plug_in()
        world.card_reader.tap(CARD)
        # the station has turned the card away (it asks the CSMS only after finding a connector)
        await station_log.wait_for(f"card {CARD}: no free connector")
        assert daemon.station.connectors[1].session is None
        assert csms.of("Authorize") == [] and csms.of("StartTransaction") == []
        assert (await csms.call(call.ChangeAvailability(connector_id=0, type="Operative"))
                ).status == "Accepted"
        await csms.wait_for("StatusNotification", connector_id=1, status="Preparing")
        await csms.wait_for("StatusNotification", connector_id=0, status="Available", count=2)


async def test_inoperative_during_a_transaction_is_scheduled(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        assert (await csms.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
                ).status == "Scheduled"
        answered_at = daemon.clock.time()
        # The station takes periodic samples only of a transaction that goes on, so one read
        # after the answer shows the transaction outlived the decision.
        await until(lambda: periodic_samples_after(csms, answered_at), what="a sample after the answer")
        assert world.contactor.closed, "the running transaction is not disturbed"
        assert csms.of("StopTransaction") == []
        world.card_reader.tap(CARD)
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "Local", "the card ended the transaction, not the availability change"
        await csms.wait_for("StatusNotification", connector_id=1, status="Unavailable")


async def test_availability_survives_a_restart(csms, station):
    async with station():
        await csms.wait_for("StatusNotification", connector_id=1)
        await csms.call(call.ChangeAvailability(connector_id=1, type="Inoperative"))
        await csms.wait_for("StatusNotification", connector_id=1, status="Unavailable")
    async with station():
        after_restart = await until(lambda: [
            s for s in csms.of("StatusNotification")
            if s.connection == 2 and s.payload["connector_id"] == 1])
        assert after_restart[0].payload["status"] == "Unavailable"


async def test_clear_cache_is_accepted(csms, station):
    async with station():
        await csms.wait_for("StatusNotification", connector_id=1)
        assert (await csms.call(call.ClearCache())).status == "Accepted"


async def test_data_transfer_both_ways(csms, station):
    async with station() as daemon:
        daemon.data_transfer["org.example"] = {"echo": lambda data: ("Accepted", (data or "")[::-1])}
        await csms.wait_for("StatusNotification", connector_id=1)
        unknown_vendor = await csms.call(call.DataTransfer(vendor_id="com.other", message_id="x"))
        assert unknown_vendor.status == "UnknownVendorId"
        unknown_message = await csms.call(call.DataTransfer(vendor_id="org.example", message_id="nope"))
        assert unknown_message.status == "UnknownMessageId"
        echoed = await csms.call(call.DataTransfer(vendor_id="org.example", message_id="echo", data="abc"))
        assert (echoed.status, echoed.data) == ("Accepted", "cba")
        status, _ = await daemon.adapter.data_transfer("org.example", "hello", "42")
        assert status == "Accepted"
        sent = (await csms.wait_for("DataTransfer"))[0].payload
        assert sent == {"vendor_id": "org.example", "message_id": "hello", "data": "42"}


@pytest.mark.parametrize(("kind", "reason"), [("Soft", "SoftReset"), ("Hard", "HardReset")])
async def test_reset_stops_transactions_then_restarts(csms, station, kind, reason):
    async with station() as daemon:
        world = await charging(csms, daemon)
        assert (await csms.call(call.Reset(type=kind))).status == "Accepted"
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == reason
        await until(lambda: daemon.restart_requested == kind.lower())
        assert not world.contactor.closed


async def test_unlock_connector_stops_the_transaction_first(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        assert world.lock.locked(), "the plug is locked while a transaction runs"
        result = await csms.call(call.UnlockConnector(connector_id=1))
        assert result.status == "Unlocked"
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "UnlockCommand"
        assert not world.contactor.closed and not world.lock.locked()


async def test_unlock_connector_failures(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        world.lock.jam()
        assert (await csms.call(call.UnlockConnector(connector_id=1))).status == "UnlockFailed"
        assert (await csms.call(call.UnlockConnector(connector_id=9))).status == "NotSupported"


async def test_unlock_without_a_plug_lock_is_not_supported(csms, station):
    async with station(simulation={"tethered": True}) as daemon:
        await charging(csms, daemon)
        assert (await csms.call(call.UnlockConnector(connector_id=1))).status == "NotSupported"
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "UnlockCommand"


async def test_clock_aligned_readings_inside_and_outside_transactions(csms, station):
    async with station(ocpp={"clock_aligned_data_interval_s": 10,
                             "meter_values_aligned_data": ["Energy.Active.Import.Register", "Voltage"],
                             "stop_txn_aligned_data": ["Energy.Active.Import.Register"],
                             "meter_value_sample_interval_s": 0}) as daemon:
        idle = (await csms.wait_for("MeterValues", timeout=5))[0].payload
        assert "transaction_id" not in idle
        values = idle["meter_value"][0]["sampled_value"]
        assert {v["context"] for v in values} == {"Sample.Clock"}
        assert {v["measurand"] for v in values} == {"Energy.Active.Import.Register", "Voltage"}
        world = await charging(csms, daemon)
        in_tx = await csms.wait_for("MeterValues", transaction_id=100, timeout=5)
        assert in_tx[0].payload["meter_value"][0]["sampled_value"][0]["context"] == "Sample.Clock"
        world.card_reader.tap(CARD)
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        contexts = {v["context"] for mv in stop["transaction_data"] for v in mv["sampled_value"]}
        assert {"Transaction.Begin", "Sample.Clock", "Transaction.End"} <= contexts


async def test_minimum_status_duration_hides_brief_states(csms, station, station_log):
    async with station(ocpp={"minimum_status_duration_s": 5}) as daemon:
        world = daemon.hardware.worlds[1]
        await csms.wait_for("StatusNotification", connector_id=1, status="Available")
        # Preparing, then Available again, each lasting only until the station has seen it:
        # a fraction of the 5 simulated seconds. Waiting for the station to log each change
        # makes sure it went through both brief states; a plug it never saw would hide nothing.
        world.plug_in()
        await station_log.wait_for("connector 1: EV plugged in")
        world.unplug()
        await station_log.wait_for("connector 1: EV unplugged")
        world.plug_in()
        await csms.wait_for("StatusNotification", connector_id=1, status="Preparing")
        statuses = [s.payload["status"] for s in csms.of("StatusNotification")
                    if s.payload["connector_id"] == 1]
        assert statuses == ["Available", "Preparing"]


async def test_transaction_survives_ev_side_disconnect_when_configured(csms, station):
    async with station(ocpp={"stop_transaction_on_ev_side_disconnect": False}) as daemon:
        world = await charging(csms, daemon)
        world.unplug()
        await csms.wait_for("StatusNotification", connector_id=1, status="SuspendedEV")
        await until(lambda: not world.contactor.closed)
        assert world.lock.locked(), "no unlock while the transaction goes on"
        assert csms.of("StopTransaction") == []
        world.plug_in()
        await csms.wait_for("StatusNotification", connector_id=1, status="Charging", count=2)
        world.card_reader.tap(CARD)
        assert (await csms.wait_for("StopTransaction"))[0].payload["reason"] == "Local"


async def test_unplugging_unlocks_the_connector(csms, station):
    async with station() as daemon:
        world = await charging(csms, daemon)
        world.unplug()
        await csms.wait_for("StopTransaction")
        await until(lambda: not world.lock.locked())
