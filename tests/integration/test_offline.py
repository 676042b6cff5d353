"""Offline operation: local list, cache, queued messages across restarts, power loss."""

from __future__ import annotations

import asyncio
from typing import Any

from ocpp.v16 import call

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.conftest import station_config, until

LISTED = "LIST0001"


def outbox_kinds(daemon: Daemon, kind: str | None = None) -> list[str]:
    """The kinds of the messages waiting in the outbox, oldest first (only ``kind`` if given)."""
    kinds = [type(e.event).__name__ for e in list(daemon.outbox._queue)]
    return [k for k in kinds if kind is None or k == kind]


def entry(id_tag: str, status: str = "Accepted") -> dict[str, Any]:
    return {"idTag": id_tag, "idTagInfo": {"status": status}}


async def test_send_local_list_full_and_differential(csms, station):
    async with station() as daemon:
        await csms.wait_for("StatusNotification", connector_id=1)
        assert (await csms.call(call.GetLocalListVersion())).list_version == 0
        full = call.SendLocalList(list_version=5, update_type="Full",
                                  local_authorization_list=[entry("A"), entry("B", "Blocked")])
        assert (await csms.call(full)).status == "Accepted"
        assert (await csms.call(call.GetLocalListVersion())).list_version == 5
        stale = call.SendLocalList(list_version=5, update_type="Differential",
                                   local_authorization_list=[entry("C")])
        assert (await csms.call(stale)).status == "VersionMismatch"
        diff = call.SendLocalList(list_version=6, update_type="Differential",
                                  local_authorization_list=[{"idTag": "B"}, entry("C")])
        assert (await csms.call(diff)).status == "Accepted"
        assert sorted(daemon.station.authorization.local_list) == ["A", "C"]
    async with station():
        await csms.wait_for("BootNotification", count=2)
        assert (await csms.call(call.GetLocalListVersion())).list_version == 6


async def test_offline_session_with_a_listed_card_is_delivered_in_order(csms, station, station_log):
    async with station() as daemon:
        world = daemon.hardware.worlds[1]
        await csms.wait_for("StatusNotification", connector_id=1)
        await csms.call(call.SendLocalList(list_version=1, update_type="Full",
                                           local_authorization_list=[entry(LISTED)]))
        await csms.close()
        await until(lambda: not daemon.link.connected.is_set())
        world.plug_in()
        world.card_reader.tap("STRANGER")
        await station_log.wait_for("card STRANGER not accepted")
        assert daemon.station.connectors[1].session is None, "unknown cards are refused offline"
        assert daemon.station.active_transactions() == []
        world.card_reader.tap(LISTED)
        await until(lambda: world.contactor.closed)
        await until(lambda: len(outbox_kinds(daemon, "MeterSample")) >= 2, what="two periodic samples queued")
        world.card_reader.tap(LISTED)
        await until(lambda: daemon.station.active_transactions() == [])
        kinds = outbox_kinds(daemon)
        assert kinds[0] == "TransactionStarted" and kinds[-1] == "TransactionStopped"
        assert kinds.count("MeterSample") >= 2
        await csms.start_on(csms.port)
        stop = (await csms.wait_for("StopTransaction", timeout=15))[0]
        tx = [r.action for r in csms.received if r.action in
              ("StartTransaction", "MeterValues", "StopTransaction")]
        assert tx[0] == "StartTransaction" and tx[-1] == "StopTransaction" and "MeterValues" in tx
        assert stop.payload["reason"] == "Local" and stop.payload["transaction_id"] == 100
        assert all(r.payload["transaction_id"] == 100 for r in csms.of("MeterValues"))
        await until(lambda: len(daemon.outbox) == 0)


async def test_queued_messages_survive_a_restart_while_offline(csms, station):
    async with station(ocpp={"allow_offline_tx_for_unknown_id": True}) as daemon:
        world = daemon.hardware.worlds[1]
        await csms.wait_for("StatusNotification", connector_id=1)
        await csms.close()
        await until(lambda: not daemon.link.connected.is_set())
        world.plug_in()
        world.card_reader.tap("OFFLINE1")
        await until(lambda: world.contactor.closed)
        await until(lambda: outbox_kinds(daemon, "MeterSample"), what="a periodic sample queued")
        world.unplug()
        await until(lambda: daemon.station.active_transactions() == [])
        queued = len(daemon.outbox)
    assert queued >= 3
    await csms.start_on(csms.port)
    async with station() as daemon:
        stop = (await csms.wait_for("StopTransaction", timeout=15))[0].payload
        start = csms.of("StartTransaction")[0].payload
        assert start["id_tag"] == "OFFLINE1"
        assert stop["reason"] == "EVDisconnected" and stop["meter_stop"] > start["meter_start"]
        await until(lambda: len(daemon.outbox) == 0)


async def crash_while_charging(csms, config: dict[str, Any]) -> None:
    """Charge, then end the daemon the hard way: no transaction is stopped."""
    daemon = Daemon(parse(config, "<test>"))
    task = asyncio.ensure_future(daemon.run())
    world = daemon.hardware.worlds[1]
    await csms.wait_for("StatusNotification", connector_id=1)
    world.plug_in()
    world.card_reader.tap("CRASH1")
    await csms.wait_for("MeterValues", count=2)
    task.cancel()  # the process dies: finally-blocks run, the transaction stays open
    await asyncio.gather(task, return_exceptions=True)
    await until(lambda: not daemon.link.connected.is_set())


async def test_power_loss_stops_the_cut_off_transaction_at_the_last_reading(csms, tmp_path):
    config = station_config(csms.url, str(tmp_path / "state"))
    await crash_while_charging(csms, config)
    last_sample = csms.of("MeterValues")[-1].payload["meter_value"][0]["sampled_value"][0]
    daemon = Daemon(parse(config, "<test>"))
    task = asyncio.ensure_future(daemon.run())
    try:
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "PowerLoss" and stop["transaction_id"] == 100
        # The last persisted reading, in whole Wh rounded up: never below what the CSMS was sent.
        assert float(last_sample["value"]) <= stop["meter_stop"] < float(last_sample["value"]) + 1
        assert len(csms.of("StartTransaction")) == 1
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)


async def test_power_loss_resumes_when_configured_and_the_ev_is_still_there(csms, tmp_path):
    config = station_config(csms.url, str(tmp_path / "state"),
                            station={"resume_after_power_loss": True})
    await crash_while_charging(csms, config)
    daemon = Daemon(parse(config, "<test>"))
    world = daemon.hardware.worlds[1]
    world.plug_in()  # the EV never left
    task = asyncio.ensure_future(daemon.run())
    try:
        await until(lambda: world.contactor.closed)
        more = await csms.wait_for("MeterValues", count=4)
        assert more[-1].connection == 2 and more[-1].payload["transaction_id"] == 100
        assert csms.of("StopTransaction") == [] and len(csms.of("StartTransaction")) == 1
        world.card_reader.tap("CRASH1")
        stop = (await csms.wait_for("StopTransaction"))[0].payload
        assert stop["reason"] == "Local" and stop["transaction_id"] == 100
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
