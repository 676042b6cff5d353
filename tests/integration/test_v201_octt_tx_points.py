"""OCPP 2.0.1 TxStartPoint / TxStopPoint against the strict ``ocpp-rpc`` CSMS, by OCTT case.

The CSMS sets the points with SetVariables, as a test system does, and the
simulated EV and card reader play the driver. A transaction may begin with the
EV alone (no idToken; the card presented later names the driver in an Updated
event), with the authorization alone (no EV yet), or when energy flows; it ends
when its stop point no longer holds: the EV unplugged, the driver's stop, the
power path opened, the energy flow ended. Every frame the station sends is
schema-checked by the peer; each run ends with zero strict validation failures.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chargepoint.app.daemon import Daemon
from chargepoint.cli import main
from chargepoint.config import parse
from tests.integration.strict_peer import StrictPeer
from tests.integration.test_crash_recovery import kill, start_daemon
from tests.integration.test_v201_strict import ok, peer

__all__ = ["peer"]  # the fixture: the node process serving 2.0.1

CARD = "CAFE0E01"
CARD_TOKEN = {"idToken": CARD, "type": "ISO14443"}


def station(peer: StrictPeer, tmp_path: Path, **ocpp: Any) -> Daemon:
    return Daemon(parse({
        "station": {"identity": "CP-TXPOINTS-201", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "versions": ["2.0.1"],
                 "meter_value_sample_interval_s": 60, "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                 **ocpp},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_v201_octt_tx_points>"))


@pytest.fixture
async def daemon(peer: StrictPeer, tmp_path: Path) -> AsyncIterator[Daemon]:
    running = station(peer, tmp_path)
    task = asyncio.ensure_future(running.run())
    try:
        await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available")
        yield running
        assert peer.of("close") == [], "the connection dropped" + peer.report()
    finally:
        running.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], "ocpp-rpc (strict, 2.0.1) rejected frames" + peer.report()
    assert peer.of("badMessage") == [], peer.report()


async def points(peer: StrictPeer, start: str, stop: str, **tx_ctrlr: str) -> None:
    """Set TxStartPoint / TxStopPoint (and other TxCtrlr variables) as the test system does."""
    values = {"TxStartPoint": start, "TxStopPoint": stop, **tx_ctrlr}
    answer = await ok(peer, "SetVariables", {"setVariableData": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": name}, "attributeValue": value}
        for name, value in values.items()]})
    assert [r["attributeStatus"] for r in answer["setVariableResult"]] == ["Accepted"] * len(values), answer


def tx_events(peer: StrictPeer) -> list[dict[str, Any]]:
    return [e["params"] for e in peer.calls("TransactionEvent")]


async def event(peer: StrictPeer, what: str, match: Callable[[dict[str, Any]], bool],
                count: int = 1, timeout: float = 8.0) -> dict[str, Any]:
    """The ``count``-th TransactionEvent ``match`` accepts (waited for)."""
    found = await peer.wait(lambda: (hits := [e for e in tx_events(peer) if match(e)]) and len(hits) >= count
                            and hits, what, timeout)
    return found[count - 1]


def trigger(reason: str, kind: str = "Updated") -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["eventType"] == kind and e["triggerReason"] == reason


def one_transaction(peer: StrictPeer) -> list[dict[str, Any]]:
    """The run's TransactionEvents: one transaction, one Started and one Ended, seqNo without gaps."""
    events = tx_events(peer)
    assert {e["transactionInfo"]["transactionId"] for e in events} == {
        events[0]["transactionInfo"]["transactionId"]}
    kinds = [e["eventType"] for e in events]
    assert kinds[0] == "Started" and kinds[-1] == "Ended"
    assert kinds.count("Started") == kinds.count("Ended") == 1
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    return events


# ------------------------------------------------------------------ start points
async def test_tc_e_09_tc_e_03_start_at_ev_connected_then_the_card_and_tc_e_14_stop_at_unplug(
        peer: StrictPeer, daemon: Daemon) -> None:
    """EVConnected / EVConnected: the plug-in begins the transaction without an idToken; no energy
    until the card; the card presented again stops the energy only; the unplug ends it."""
    world = daemon.hardware.worlds[1]
    await points(peer, "EVConnected", "EVConnected")
    world.plug_in()
    started = await event(peer, "Started at plug-in", trigger("CablePluggedIn", "Started"))
    assert "idToken" not in started and started["transactionInfo"]["chargingState"] == "EVConnected"
    assert started["seqNo"] == 0 and started["evse"] == {"id": 1, "connectorId": 1}
    assert not world.contactor.closed, "energy before anyone is authorized"
    world.card_reader.tap(CARD)
    authorized = await event(peer, "Updated Authorized", trigger("Authorized"))
    assert authorized["idToken"] == CARD_TOKEN
    await peer.wait(lambda: world.contactor.closed, "the contactor to close")
    await event(peer, "Charging", lambda e: e["transactionInfo"].get("chargingState") == "Charging")
    world.card_reader.tap(CARD)  # the driver's stop: the stop point is the EV's departure
    stop_authorized = await event(peer, "Updated StopAuthorized", trigger("StopAuthorized"))
    assert stop_authorized["idToken"] == CARD_TOKEN
    await peer.wait(lambda: not world.contactor.closed, "the energy to stop")
    assert daemon.station.active_transactions(), "the transaction goes on until the EV leaves"
    world.unplug()
    ended = await event(peer, "Ended at unplug", trigger("EVCommunicationLost", "Ended"))
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    events = one_transaction(peer)
    assert events.index(stop_authorized) < events.index(ended)
    assert len(peer.calls("Authorize")) == 1


async def test_tc_e_10_tc_e_04_start_at_authorized_card_first_and_tc_e_15_stop_authorized_local(
        peer: StrictPeer, daemon: Daemon) -> None:
    """Authorized / Authorized (StopTxOnEVSideDisconnect false): the card alone begins the transaction
    (no EV: Idle); the EV comes, leaves and comes back within it; the card presented again ends it."""
    world = daemon.hardware.worlds[1]
    await points(peer, "Authorized", "Authorized", StopTxOnEVSideDisconnect="false")
    world.card_reader.tap(CARD)
    started = await event(peer, "Started at the authorization", trigger("Authorized", "Started"))
    assert started["idToken"] == CARD_TOKEN and started["transactionInfo"]["chargingState"] == "Idle"
    world.plug_in()
    plugged = await event(peer, "Updated CablePluggedIn", trigger("CablePluggedIn"))
    assert plugged["transactionInfo"]["chargingState"] != "Idle"
    await peer.wait(lambda: world.contactor.closed, "the contactor to close")
    world.unplug()  # not a stop point here: the transaction waits for the EV
    left = await event(peer, "Updated EVCommunicationLost", trigger("EVCommunicationLost"))
    assert left["transactionInfo"]["chargingState"] == "Idle"
    world.plug_in()
    await event(peer, "the EV back", trigger("CablePluggedIn"), count=2)
    world.card_reader.tap(CARD)
    ended = await event(peer, "Ended by the card", trigger("StopAuthorized", "Ended"))
    assert ended["transactionInfo"]["stoppedReason"] == "Local" and ended["idToken"] == CARD_TOKEN
    one_transaction(peer)


async def test_tc_e_02_start_at_energy_transfer_and_tc_e_22_stop_when_the_ev_suspends(
        peer: StrictPeer, daemon: Daemon) -> None:
    """EnergyTransfer / EnergyTransfer: nothing is begun by the plug-in nor by the card; the
    transaction begins with the flow (Charging) and ends when the EV stops drawing."""
    world = daemon.hardware.worlds[1]
    await points(peer, "EnergyTransfer", "EnergyTransfer")
    world.plug_in()
    world.card_reader.tap(CARD)
    await peer.wait_call("Authorize")
    await peer.wait(lambda: world.contactor.closed, "the contactor to close")
    started = await event(peer, "Started with the energy", lambda e: e["eventType"] == "Started")
    assert started["triggerReason"] == "ChargingStateChanged" and started["idToken"] == CARD_TOKEN
    assert started["transactionInfo"]["chargingState"] == "Charging"
    world.ev.target_soc = 0.0  # the battery is full: the EV opens S2
    ended = await event(peer, "Ended when the energy ends", lambda e: e["eventType"] == "Ended")
    assert ended["transactionInfo"]["stoppedReason"] == "StoppedByEV"
    one_transaction(peer)


async def test_tc_e_01_start_at_power_path_closed_and_tc_e_07_stop_power_path_closed_local(
        peer: StrictPeer, daemon: Daemon) -> None:
    """PowerPathClosed / PowerPathClosed: neither the EV nor the card alone begins it; both do;
    the card presented again opens the path for good and ends it."""
    world = daemon.hardware.worlds[1]
    await points(peer, "PowerPathClosed", "PowerPathClosed")
    world.plug_in()
    await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Occupied")
    assert tx_events(peer) == [], "no transaction with the EV alone"
    world.card_reader.tap(CARD)
    started = await event(peer, "Started", trigger("Authorized", "Started"))
    assert started["idToken"] == CARD_TOKEN and started["transactionInfo"]["chargingState"] == "EVConnected"
    await peer.wait(lambda: world.contactor.closed, "the contactor to close")
    world.card_reader.tap(CARD)
    ended = await event(peer, "Ended by the card", trigger("StopAuthorized", "Ended"))
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    one_transaction(peer)
    world.unplug()
    await peer.wait_call("StatusNotification", count=2, evseId=1, connectorStatus="Available")


async def test_f03_the_csms_stop_with_ev_connected_as_the_stop_point_stops_the_energy_only(
        peer: StrictPeer, daemon: Daemon) -> None:
    """PowerPathClosed / EVConnected: RequestStopTransaction ends the authorization as the driver's
    stop does (Updated RemoteStop, no energy); the transaction ends when the EV leaves."""
    world = daemon.hardware.worlds[1]
    await points(peer, "PowerPathClosed", "EVConnected")
    world.plug_in()
    world.card_reader.tap(CARD)
    started = await event(peer, "Started", lambda e: e["eventType"] == "Started")
    await peer.wait(lambda: world.contactor.closed, "the contactor to close")
    tx_id = started["transactionInfo"]["transactionId"]
    assert await ok(peer, "RequestStopTransaction", {"transactionId": tx_id}) == {"status": "Accepted"}
    stopped = await event(peer, "Updated RemoteStop", trigger("RemoteStop"))
    assert "idToken" not in stopped
    await peer.wait(lambda: not world.contactor.closed, "the energy to stop")
    world.unplug()
    ended = await event(peer, "Ended at unplug", trigger("EVCommunicationLost", "Ended"))
    assert ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    one_transaction(peer)


async def test_points_without_a_sensor_are_refused_and_change_nothing(
        peer: StrictPeer, daemon: Daemon) -> None:
    """TC_E_11 / TC_E_12 need a signed meter and a bay detector: this station has neither."""
    answer = await ok(peer, "SetVariables", {"setVariableData": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"}, "attributeValue": value}
        for value in ("DataSigned", "ParkingBayOccupancy")]})
    for result in answer["setVariableResult"]:
        assert result["attributeStatus"] == "Rejected"
        assert result["attributeStatusInfo"]["reasonCode"] == "InvalidValue"
        assert "EVConnected" in result["attributeStatusInfo"]["additionalInfo"]
    got = await ok(peer, "GetVariables", {"getVariableData": [
        {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"}}]})
    assert got["getVariableResult"][0]["attributeValue"] == "PowerPathClosed"


# ------------------------------------------------------------------ across a crash
def _config(path: Path, peer: StrictPeer, state: Path, control: Path) -> None:
    path.write_text(f"""
[station]
identity = "CP-TXPOINTS-CRASH"
state_dir = "{state}"
resume_after_power_loss = true
[ocpp]
csms_url = "ws://127.0.0.1:{peer.port}"
versions = ["2.0.1"]
tx_start_points = ["ev_connected"]
tx_stop_points = ["ev_connected"]
meter_value_sample_interval_s = 60
reconnect_min_s = 0.2
reconnect_max_s = 1.0
[simulation]
speed = 10.0
[control]
socket = "{control}"
""")


def _sim(control: Path, *args: str) -> None:
    result = CliRunner().invoke(main, ["sim", *args, "--socket", str(control)])
    assert result.exit_code == 0, result.output


def _taken_up(control: Path) -> bool:
    """The restarted daemon carries the transaction on (its status shows it on connector 1)."""
    result = CliRunner().invoke(main, ["status", "--json", "--socket", str(control)])
    if result.exit_code != 0:
        return False
    [connector] = [c for c in json.loads(result.stdout)["connectors"] if c["id"] == 1]
    return bool(connector["session"] and connector["session"]["transaction"])


async def test_a_transaction_begun_by_the_ev_alone_survives_a_kill_and_gets_its_driver_after(
        peer: StrictPeer, tmp_path: Path) -> None:
    """The daemon (a subprocess) is SIGKILLed while its transaction has no idToken yet; the next run
    carries it on (the EV still plugged in, the supervisor kept the simulation), the card names the
    driver, the unplug ends it: one Started, one Ended, its messages numbered without a gap (a message
    resent after the kill is the one first sent)."""
    config, control = tmp_path / "station.toml", tmp_path / "control.sock"
    _config(config, peer, tmp_path / "state", control)
    first = await start_daemon(config)
    await first.ready()
    await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available", timeout=20)
    await asyncio.to_thread(_sim, control, "plug")
    started = await event(peer, "Started at plug-in", trigger("CablePluggedIn", "Started"))
    assert "idToken" not in started
    await kill(first, config)

    second = await start_daemon(config)
    await second.ready()
    await peer.wait_call("BootNotification", count=2, timeout=20)
    for _ in range(400):  # the recovery's settling time: until then the connector takes no card
        if await asyncio.to_thread(_taken_up, control):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the transaction was not taken up after the restart")
    await asyncio.to_thread(_sim, control, "card", CARD)
    authorized = await event(peer, "Updated Authorized after the restart", trigger("Authorized"), timeout=20)
    assert authorized["idToken"] == CARD_TOKEN
    assert authorized["transactionInfo"]["transactionId"] == started["transactionInfo"]["transactionId"]
    await event(peer, "Charging", lambda e: e["transactionInfo"].get("chargingState") == "Charging",
                timeout=20)
    await asyncio.to_thread(_sim, control, "unplug")
    ended = await event(peer, "Ended at unplug", lambda e: e["eventType"] == "Ended", timeout=20)
    second.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(second.process.wait(), 30) == 0
    second.notify.close()

    numbered: dict[int, dict[str, Any]] = {}
    for sent in tx_events(peer):
        assert numbered.setdefault(sent["seqNo"], sent) == sent, "two messages under one seqNo"
    kinds = [numbered[n]["eventType"] for n in sorted(numbered)]
    assert sorted(numbered) == list(range(len(numbered))), sorted(numbered)
    assert kinds[0] == "Started" and kinds.count("Started") == 1 and kinds[-1] == "Ended"
    assert kinds.count("Ended") == 1 and ended["transactionInfo"]["stoppedReason"] == "EVDisconnected"
    assert {e["transactionInfo"]["transactionId"] for e in numbered.values()} == {
        started["transactionInfo"]["transactionId"]}
    assert peer.strict_failures() == [], "ocpp-rpc (strict, 2.0.1) rejected frames" + peer.report()
