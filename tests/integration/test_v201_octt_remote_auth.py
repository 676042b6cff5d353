"""OCPP 2.0.1 Core, after the OCTT cases: authorization (C) and remote control (F).

Authorize with typed IdTokens into the station's cache and local list, group
tokens, RequestStart/StopTransaction, UnlockConnector, TriggerMessage and
DataTransfer both ways, and CALLs the station answers with 2.0.1 errors while
the connection stays up.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from ocpp.exceptions import (
    FormatViolationError,
    NotImplementedError,
    OccurrenceConstraintViolationError,
    PropertyConstraintViolationError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call
from ocpp.v201 import call

from chargepoint.core.events import IdToken, TokenType
from tests.integration.conftest import until
from tests.integration.loopback_csms201 import LoopbackCsms201
from tests.integration.v201_rig import CARD, booted, charging, station201

REMOTE = {"idToken": "REMOTE201", "type": "Central"}


@pytest.fixture
async def csms() -> AsyncIterator[LoopbackCsms201]:
    server = await LoopbackCsms201().start()
    yield server
    await server.close()


# ------------------------------------------------------------------ C: authorization
async def test_c02_local_start_with_an_invalid_token_starts_nothing(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    csms.token_info["BAD01"] = {"status": "Invalid"}
    async with station201(csms, tmp_path) as daemon:
        world = await booted(csms, daemon)
        world.plug_in()
        world.card_reader.tap("BAD01")
        await csms.wait_for("Authorize")
        await until(lambda: daemon.station.view(1).session is None, what="the refusal")
        assert csms.of("TransactionEvent") == [] and not world.contactor.closed
    assert csms.of("Authorize")[0].payload["id_token"] == {"id_token": "BAD01", "type": "ISO14443"}


async def test_c04_cached_token_authorizes_offline_until_clear_cache(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    """idTokenInfo with a cache expiry goes into the cache; ClearCache empties it."""
    csms.token_info[CARD] = {"status": "Accepted", "cacheExpiryDateTime": "2099-01-01T00:00:00Z",
                             "groupIdToken": {"idToken": "FLEET", "type": "Central"}}
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        result = await daemon.station.authorize(IdToken(CARD, TokenType.ISO14443))
        assert result.status.value == "accepted" and result.group_id == "FLEET"
        assert result.expiry is not None and result.expiry > 4e9
        cached = daemon.station.authorization.known(CARD)
        assert cached is not None and cached.group_id == "FLEET"
        assert (await csms.call(call.ClearCache())).status == "Accepted"
        await until(lambda: daemon.station.authorization.known(CARD) is None, what="the cache cleared")


async def test_c06_local_list_is_sent_versioned_and_authorizes_offline(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path, ocpp={"local_authorize_offline": True}) as daemon:
        world = await booted(csms, daemon)
        assert (await csms.call(call.GetLocalListVersion())).version_number == 0
        accepted = {"status": "Accepted"}
        listed = [{"idToken": {"idToken": "LISTED01", "type": "ISO14443"}, "idTokenInfo": accepted},
                  {"idToken": {"idToken": "GONE01", "type": "ISO14443"}, "idTokenInfo": accepted}]
        result = await csms.call(call.SendLocalList(version_number=4, update_type="Full",
                                                    local_authorization_list=listed))
        assert result.status == "Accepted"
        removal = [{"idToken": {"idToken": "GONE01", "type": "ISO14443"}}]
        diff = await csms.call(call.SendLocalList(version_number=5, update_type="Differential",
                                                  local_authorization_list=removal))
        assert diff.status == "Accepted"
        assert daemon.station.authorization.known("GONE01") is None
        assert (await csms.call(call.GetLocalListVersion())).version_number == 5
        await csms.close()
        await until(lambda: not daemon.link.connected.is_set(), what="offline")
        world.plug_in()
        world.card_reader.tap("LISTED01")
        await until(lambda: world.contactor.closed, what="charging on the local list")


async def test_c07_a_token_of_the_same_group_ends_the_session(csms: LoopbackCsms201, tmp_path: Path) -> None:
    group = {"groupIdToken": {"idToken": "FLEET", "type": "Central"}}
    csms.token_info[CARD] = {"status": "Accepted", **group}
    csms.token_info["FLEETMATE"] = {"status": "Accepted", **group}
    async with station201(csms, tmp_path) as daemon:
        world, tx_id = await charging(csms, daemon)
        world.card_reader.tap("FLEETMATE")
        ended = (await csms.wait_for("TransactionEvent", event_type="Ended"))[0].payload
    assert ended["transaction_info"]["transaction_id"] == tx_id
    assert ended["id_token"]["id_token"] == "FLEETMATE"


# ------------------------------------------------------------------ F: remote control
async def test_f01_remote_start_with_the_cable_plugged_in_first(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world = await booted(csms, daemon)
        world.plug_in()
        await csms.wait_for("StatusNotification", connector_status="Occupied")
        result = await csms.call(call.RequestStartTransaction(id_token=REMOTE, remote_start_id=41, evse_id=1))
        assert result.status == "Accepted"
        started = (await csms.wait_for("TransactionEvent", event_type="Started"))[0].payload
        await until(lambda: world.contactor.closed, what="charging")
    assert started["trigger_reason"] == "RemoteStart"
    assert started["transaction_info"]["remote_start_id"] == 41
    assert started["id_token"] == {"id_token": "REMOTE201", "type": "Central"}


async def test_f02_remote_start_first_and_f03_remote_stop(csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world = await booted(csms, daemon)
        result = await csms.call(call.RequestStartTransaction(id_token=REMOTE, remote_start_id=42))
        assert result.status == "Accepted"
        world.plug_in()
        started = (await csms.wait_for("TransactionEvent", event_type="Started"))[0].payload
        tx_id = started["transaction_info"]["transaction_id"]
        busy = await csms.call(call.RequestStartTransaction(id_token=REMOTE, remote_start_id=43, evse_id=1))
        assert busy.status == "Rejected", "one session per EVSE"
        assert (await csms.call(call.RequestStopTransaction(transaction_id=tx_id))).status == "Accepted"
        ended = (await csms.wait_for("TransactionEvent", event_type="Ended"))[0].payload
    assert started["transaction_info"]["remote_start_id"] == 42
    assert ended["transaction_info"]["stopped_reason"] == "Remote" and ended["trigger_reason"] == "RemoteStop"


async def test_f04_remote_stop_of_an_unknown_transaction_is_rejected(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        assert (await csms.call(call.RequestStopTransaction(transaction_id="nope"))).status == "Rejected"


async def test_f05_unlock_without_and_f06_with_an_ongoing_transaction(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world = await booted(csms, daemon)
        assert (await csms.call(call.UnlockConnector(evse_id=1, connector_id=1))).status == "Unlocked"
        unknown = await csms.call(call.UnlockConnector(evse_id=2, connector_id=1))
        assert unknown.status == "UnknownConnector"
        world.plug_in()
        world.card_reader.tap(CARD)
        await until(lambda: world.contactor.closed, what="charging")
        result = await csms.call(call.UnlockConnector(evse_id=1, connector_id=1))
        assert result.status == "OngoingAuthorizedTransaction"
        assert world.contactor.closed, "the transaction goes on"


async def test_f11_f14_trigger_messages(csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        world = await booted(csms, daemon)
        no_tx = await csms.call(call.TriggerMessage(requested_message="TransactionEvent", evse={"id": 1}))
        assert no_tx.status == "Rejected"
        for requested, evse in (("Heartbeat", None), ("StatusNotification", {"id": 1, "connectorId": 1}),
                                ("MeterValues", {"id": 1})):
            assert (await csms.call(call.TriggerMessage(requested_message=requested, evse=evse))).status == \
                "Accepted"
        await csms.wait_for("Heartbeat")
        await csms.wait_for("StatusNotification", count=2)
        meter = (await csms.wait_for("MeterValues"))[0].payload
        assert meter["meter_value"][0]["sampled_value"][0]["context"] == "Trigger"
        not_here = await csms.call(call.TriggerMessage(requested_message="PublishFirmwareStatusNotification"))
        assert not_here.status == "NotImplemented"
        world.plug_in()
        world.card_reader.tap(CARD)
        await csms.wait_for("TransactionEvent", event_type="Started")
        result = await csms.call(call.TriggerMessage(requested_message="TransactionEvent", evse={"id": 1}))
        assert result.status == "Accepted"
        await csms.wait_for("TransactionEvent", trigger_reason="Trigger")


async def test_data_transfer_both_ways(csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        daemon.data_transfer["org.example"] = {"ping": lambda data: ("Accepted", {"pong": data})}
        answer = await csms.call(call.DataTransfer(vendor_id="org.example", message_id="ping", data=7))
        assert (answer.status, answer.data) == ("Accepted", {"pong": 7})
        unknown = await csms.call(call.DataTransfer(vendor_id="org.other"))
        assert unknown.status == "UnknownVendorId"
        status, data = await daemon.adapter.data_transfer("org.example", "hello", {"n": 1})
        assert (status, data) == ("Accepted", {"echo": {"n": 1}})


@pytest.mark.parametrize(("frame", "error"), [
    (Call("e1", "RequestStopTransaction", {}), OccurrenceConstraintViolationError),
    (Call("e2", "RequestStopTransaction", {"transactionId": 5}), TypeConstraintViolationError),
    (Call("e3", "Reset", {"type": "Sideways"}), PropertyConstraintViolationError),
    (Call("e4", "ClearCache", {"extra": True}), FormatViolationError),
    (Call("e5", "NoSuchAction", {}), NotImplementedError),
])
async def test_bad_calls_get_the_201_error_code_and_the_link_stays_up(
        csms: LoopbackCsms201, tmp_path: Path, frame: Call, error: type) -> None:
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        peer = csms.peer
        assert peer is not None
        async with peer._call_lock:
            await peer._send(frame.to_json())
            answer = await peer._get_specific_response(frame.unique_id, 5)
        assert json.loads(answer.to_json())[2] == error.code
        assert (await csms.call(call.ClearCache())).status == "Accepted", "the link is still up"
        assert daemon.link.connections == 1
