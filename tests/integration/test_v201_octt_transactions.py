"""OCPP 2.0.1 Core, after the OCTT cases: transactions (E) and meter values (J).

TransactionEvent Started/Updated/Ended from the station's outbox: the station's
own transaction id, seqNo without gaps (also across a restart), trigger
reasons, stopped reasons, the offline flag, retries of a refused message, and
sampled, clock-aligned and end readings.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.conftest import station_config, until
from tests.integration.loopback_csms201 import LoopbackCsms201
from tests.integration.v201_rig import CARD, booted, charging, seq_numbers, station201


@pytest.fixture
async def csms() -> AsyncIterator[LoopbackCsms201]:
    server = await LoopbackCsms201().start()
    yield server
    await server.close()


def context_of(event: dict) -> set[str]:
    return {v["context"] for mv in event.get("meter_value") or [] for v in mv["sampled_value"]}


# ------------------------------------------------------------------ E: start and stop
async def test_e01_start_by_card_after_plug_in_and_e06_stop_by_the_same_card(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world, tx_id = await charging(csms, daemon)
        await csms.wait_for("TransactionEvent", count=2)
        world.card_reader.tap(CARD)
        await csms.wait_for("TransactionEvent", event_type="Ended")
    events = csms.transaction(tx_id)
    started, ended = events[0], events[-1]
    assert started["event_type"] == "Started" and started["trigger_reason"] == "Authorized"
    assert started["id_token"] == {"id_token": CARD, "type": "ISO14443"}
    assert started["evse"] == {"id": 1, "connector_id": 1}
    assert context_of(started) == {"Transaction.Begin"}
    assert started["transaction_info"]["charging_state"] == "EVConnected"
    changed = [e for e in events if e["trigger_reason"] == "ChargingStateChanged"]
    assert "Charging" in [e["transaction_info"]["charging_state"] for e in changed]
    assert ended["transaction_info"]["stopped_reason"] == "Local"
    assert ended["trigger_reason"] == "StopAuthorized" and ended["id_token"]["id_token"] == CARD
    assert "Transaction.End" in context_of(ended)
    assert seq_numbers(csms, tx_id) == list(range(len(events)))
    assert [e["event_type"] for e in events].count("Started") == 1
    assert [e["event_type"] for e in events].count("Ended") == 1


async def test_e02_start_by_card_before_plug_in_and_e05_stop_on_ev_disconnect(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world = await booted(csms, daemon)
        world.card_reader.tap(CARD)
        await csms.wait_for("Authorize")
        assert csms.of("TransactionEvent") == [], "no transaction before the EV is connected"
        world.plug_in()
        started = (await csms.wait_for("TransactionEvent", event_type="Started"))[0].payload
        await until(lambda: world.contactor.closed, what="charging")
        world.unplug()
        ended = (await csms.wait_for("TransactionEvent", event_type="Ended"))[0].payload
    assert ended["transaction_info"]["transaction_id"] == started["transaction_info"]["transaction_id"]
    assert ended["transaction_info"]["stopped_reason"] == "EVDisconnected"
    assert ended["trigger_reason"] == "EVCommunicationLost"


async def test_e07_deauthorized_by_the_csms_ends_the_transaction(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    csms.transaction_token_info[CARD] = {"status": "Blocked"}
    async with station201(csms, tmp_path) as daemon:
        world = await booted(csms, daemon)
        world.plug_in()
        world.card_reader.tap(CARD)
        ended = (await csms.wait_for("TransactionEvent", event_type="Ended"))[0].payload
    assert ended["transaction_info"]["stopped_reason"] == "DeAuthorized"
    assert ended["trigger_reason"] == "Deauthorized"


async def test_e04_offline_transaction_is_flagged_and_numbered_without_gaps(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path, ocpp={"allow_offline_tx_for_unknown_id": True}) as daemon:
        world = await booted(csms, daemon)
        await csms.close()
        await until(lambda: not daemon.link.connected.is_set(), what="offline")
        world.plug_in()
        world.card_reader.tap("OFFLINE1")
        await until(lambda: world.contactor.closed, what="charging offline")
        await until(lambda: len(daemon.outbox) >= 3, what="samples queued offline")
        world.unplug()
        await until(lambda: daemon.station.active_transactions() == [], what="the stop")
        await csms.start(csms.port)
        ended = (await csms.wait_for("TransactionEvent", event_type="Ended", timeout=15))[0].payload
        await until(lambda: len(daemon.outbox) == 0, what="the queue drained")
    tx_id = ended["transaction_info"]["transaction_id"]
    events = csms.transaction(tx_id)
    assert all(e["offline"] is True for e in events), [e.get("offline") for e in events]
    assert seq_numbers(csms, tx_id) == list(range(len(events)))
    assert events[0]["event_type"] == "Started" and events[0]["id_token"]["id_token"] == "OFFLINE1"


async def test_e13_refused_transaction_event_is_retried_with_the_same_seq_no(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    csms.refuse_transaction_events = 2
    async with station201(csms, tmp_path, ocpp={"transaction_message_attempts": 3,
                                                "transaction_message_retry_interval_s": 1}) as daemon:
        world = await booted(csms, daemon)
        world.plug_in()
        world.card_reader.tap(CARD)
        await csms.wait_for("TransactionEvent", count=4)
    started = csms.of("TransactionEvent")[:3]
    assert [e.payload["event_type"] for e in started] == ["Started"] * 3
    assert {e.payload["seq_no"] for e in started} == {0}
    assert csms.of("TransactionEvent")[3].payload["seq_no"] == 1


async def test_seq_no_continues_after_a_crash_and_the_power_loss_stop(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    """The daemon dies while charging; the next run ends the transaction (PowerLoss) with the
    next seqNo, and boots saying the previous run was killed (Watchdog)."""
    config = station_config(csms.url, str(tmp_path / "state"), ocpp={"versions": ["2.0.1"]},
                            control={"enabled": False})
    daemon = Daemon(parse(config, "<test>"))
    task = asyncio.ensure_future(daemon.run())
    world = await booted(csms, daemon)
    world.plug_in()
    world.card_reader.tap(CARD)
    await csms.wait_for("TransactionEvent", count=3)
    await until(lambda: daemon.outbox.head() is None, what="every message answered")
    task.cancel()  # killed: no stop, no clean end of the run
    await asyncio.gather(task, return_exceptions=True)
    daemon = Daemon(parse(config, "<test>"))
    task = asyncio.ensure_future(daemon.run())
    try:
        ended = (await csms.wait_for("TransactionEvent", event_type="Ended"))[0].payload
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    tx_id = ended["transaction_info"]["transaction_id"]
    assert ended["transaction_info"]["stopped_reason"] == "PowerLoss"
    # The one message whose answer the killed run had not recorded is sent again, under its
    # own number (the CSMS sees a repeat, never a gap).
    by_number: dict[int, dict] = {}
    for event in csms.transaction(tx_id):
        event = {k: v for k, v in event.items() if k != "offline"}
        assert by_number.setdefault(event["seq_no"], event) == event, "one number, two messages"
    assert sorted(by_number) == list(range(len(by_number)))
    assert len(csms.transaction(tx_id)) - len(by_number) <= 1
    assert [b.payload["reason"] for b in csms.of("BootNotification")] == ["PowerUp", "Watchdog"]


# ------------------------------------------------------------------ J: meter values
async def test_j07_sampled_meter_values_in_transaction_events(csms: LoopbackCsms201, tmp_path: Path) -> None:
    measurands = ["Energy.Active.Import.Register", "Power.Active.Import", "Current.Import", "Voltage"]
    async with station201(csms, tmp_path, ocpp={"meter_values_sampled_data": measurands}) as daemon:
        _, tx_id = await charging(csms, daemon)
        await csms.wait_for("TransactionEvent", trigger_reason="MeterValuePeriodic")
    updated = next(e for e in csms.transaction(tx_id) if e["trigger_reason"] == "MeterValuePeriodic")
    assert updated["event_type"] == "Updated" and updated["trigger_reason"] == "MeterValuePeriodic"
    values = updated["meter_value"][0]["sampled_value"]
    assert {v["measurand"] for v in values} == set(measurands)
    assert all(v["context"] == "Sample.Periodic" for v in values)
    energy = next(v for v in values if v["measurand"] == "Energy.Active.Import.Register")
    assert energy["unit_of_measure"] == {"unit": "Wh"} and isinstance(energy["value"], int | float)
    assert {v["phase"] for v in values if v["measurand"] == "Voltage"} == {"L1-N", "L2-N", "L3-N"}


async def test_j08_clock_aligned_values_in_and_j09_outside_transactions(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path, ocpp={"clock_aligned_data_interval_s": 10,
                                                "meter_value_sample_interval_s": 0}) as daemon:
        world = await booted(csms, daemon)
        outside = (await csms.wait_for("MeterValues"))[0].payload
        world.plug_in()
        world.card_reader.tap(CARD)
        clock = (await csms.wait_for("TransactionEvent", trigger_reason="MeterValueClock"))[0].payload
    assert outside["evse_id"] == 1
    assert outside["meter_value"][0]["sampled_value"][0]["context"] == "Sample.Clock"
    assert clock["event_type"] == "Updated" and context_of(clock) == {"Sample.Clock"}
