"""Transaction messages reach a 2.1 CSMS whatever was spoken when they were made, and survive kills.

Queued under one version, delivered in 2.1: a transaction begun with a 2.0.1
CSMS goes on offline and ends; a 2.1 CSMS on the same address takes the rest,
numbered on from where the 2.0.1 CSMS left off, the end with its cost. Then
the SIGKILL test of ``test_crash_recovery.py`` in 2.1: each transaction one
Started and one Ended, its messages numbered without gaps, every Ended with
the session's cost under the home tariff.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.conftest import until
from tests.integration.loopback_csms import LoopbackCsms
from tests.integration.loopback_csms201 import LoopbackCsms201
from tests.integration.test_crash_recovery import (
    KILLS_201,
    assert_whole_transactions_201,
    kill_at_random_moments,
    transactions_201,
    write_config,
)


def daemon_for(port: int, tmp_path: Path, **ocpp: object) -> Daemon:
    return Daemon(parse({
        "station": {"identity": "CP-DELIVER21", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{port}", "reconnect_min_s": 0.1, "reconnect_max_s": 0.3,
                 "meter_value_sample_interval_s": 5, **ocpp},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
        "home": {"price_per_kwh": 0.25},
    }, "<test_v21_delivery>"))


async def test_a_transaction_begun_in_201_ends_in_21_numbered_on(tmp_path: Path) -> None:
    old = await LoopbackCsms201().start()
    port = old.port
    daemon = daemon_for(port, tmp_path)
    task = asyncio.ensure_future(daemon.run())
    new = LoopbackCsms201(subprotocol="ocpp2.1")
    try:
        await old.wait_for("StatusNotification", evse_id=1)
        world = daemon.hardware.worlds[1]
        world.plug_in()
        world.card_reader.tap("SWITCH21")
        started = (await old.wait_for("TransactionEvent", event_type="Started"))[0].payload
        tx_id = started["transaction_info"]["transaction_id"]
        await until(lambda: daemon.outbox.answered(tx_id) >= 1, what="the Started acknowledged")
        await old.close()
        await until(lambda: not daemon.link.connected.is_set(), what="offline")
        await asyncio.sleep(1.0)  # periodic samples are queued offline (5 simulated s: 0.5 s here)
        world.unplug()
        await until(lambda: daemon.station.active_transactions() == [], what="the stop")
        await new.start(port)
        await new.wait_for("TransactionEvent", event_type="Ended", timeout=15)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await new.close()
    assert daemon.version.name == "2.1"
    before = old.transaction(tx_id)
    after = new.transaction(tx_id)
    said_before = [e["seq_no"] for e in before]
    said_after = [e["seq_no"] for e in after]
    assert said_before == list(range(len(said_before))) and said_after == sorted(said_after)
    assert sorted({*said_before, *said_after}) == list(range(max(said_after) + 1)), "numbered on, no gap"
    # The one message the 2.0.1 CSMS may have had without the station hearing its answer goes again,
    # under its number, now in 2.1 words.
    assert set(said_before) & set(said_after) <= {said_before[-1]}
    assert after and all(e["event_type"] != "Started" for e in after)
    assert any(e.get("offline") for e in after), "what was made offline says so"
    ended = after[-1]
    assert ended["event_type"] == "Ended"
    cost = ended["cost_details"]
    assert cost["total_cost"]["currency"] == "EUR" and cost["charging_periods"][0]["tariff_id"] == "home"
    assert cost["total_usage"]["energy"] > 0


async def test_a_driver_tariff_prices_the_session_and_the_csms_total_is_shown_beside(tmp_path: Path) -> None:
    csms = await LoopbackCsms201(subprotocol="ocpp2.1").start()
    csms.total_cost = 2.35
    csms.driver_tariff = {"tariffId": "driver-9", "currency": "EUR",
                          "energy": {"prices": [{"priceKwh": 0.19}]}}
    daemon = daemon_for(csms.port, tmp_path)
    task = asyncio.ensure_future(daemon.run())
    try:
        await csms.wait_for("StatusNotification", evse_id=1)
        world = daemon.hardware.worlds[1]
        world.plug_in()
        world.card_reader.tap("TOTAL21")
        await csms.wait_for("TransactionEvent", event_type="Started")

        def shown() -> dict | None:
            session = daemon.service.status()["connectors"][0]["session"]
            return session and session["transaction"]
        await until(lambda: (shown() or {}).get("csms_cost") == "2.35", what="the CSMS's total shown")
        assert shown()["cost"]["tariff_id"] == "driver-9", "the tariff given with the authorization"
        world.unplug()
        ended = (await csms.wait_for("TransactionEvent", event_type="Ended"))[0].payload
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await csms.close()
    assert [p["tariff_id"] for p in ended["cost_details"]["charging_periods"]] == ["driver-9"]
    assert daemon.station.tariffs.driver_tariffs == {}, "used for that session only"


async def test_an_offline_16_transaction_reaches_a_21_csms(tmp_path: Path) -> None:
    old = await LoopbackCsms().start()
    port = old.port
    daemon = daemon_for(port, tmp_path, allow_offline_tx_for_unknown_id=True)
    task = asyncio.ensure_future(daemon.run())
    new = LoopbackCsms201(subprotocol="ocpp2.1")
    try:
        await old.wait_for("StatusNotification", connector_id=1)
        await old.close()
        await until(lambda: not daemon.link.connected.is_set(), what="offline")
        world = daemon.hardware.worlds[1]
        world.plug_in()
        world.card_reader.tap("SWITCH16")
        await until(lambda: world.contactor.closed, what="charging offline")
        world.unplug()
        await until(lambda: daemon.station.active_transactions() == [], what="the stop")
        await new.start(port)
        await new.wait_for("TransactionEvent", event_type="Ended", timeout=15)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await new.close()
    events = [r.payload for r in new.of("TransactionEvent")]
    assert events[0]["event_type"] == "Started" and events[0]["id_token"]["id_token"] == "SWITCH16"
    assert [e["seq_no"] for e in events] == list(range(len(events)))
    assert events[-1]["cost_details"]["total_cost"]["currency"] == "EUR"
    assert old.of("StartTransaction") == [], "nothing of it was said in 1.6"


async def test_sigkill_in_21_every_transaction_started_and_ended_once_numbered_without_gaps(
        tmp_path: Path) -> None:
    csms = await LoopbackCsms201(subprotocol="ocpp2.1").start()
    config = tmp_path / "station.toml"
    state = tmp_path / "state"
    write_config(config, csms.url, state, versions='["2.1"]')
    config.write_text(config.read_text() + "[home]\nprice_per_kwh = 0.3\n")
    await kill_at_random_moments(csms, config, KILLS_201, lambda: transactions_201(csms), 5)

    for numbered in assert_whole_transactions_201(csms, state).values():
        # priced to its end, or (cut off by a kill) to the last persisted reading
        ended = numbered[max(numbered)]
        assert ended["cost_details"]["total_cost"]["currency"] == "EUR", ended
