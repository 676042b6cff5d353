"""A station that keeps charging whatever the CSMS or the network does.

Bad frames from the CSMS get the 1.6 CALLERROR (or no answer where none is
possible) and leave the session alone; a CSMS that stops answering and a link
that goes silent without closing are both noticed and replaced; the keepalive
follows WebSocketPingInterval; and fuzzed frames never crash the station.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from websockets.protocol import State

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from chargepoint.protocol.v16.adapter import V16Adapter
from chargepoint.protocol.v16.peer import Peer16
from tests.integration.conftest import running, station_config, until
from tests.integration.peers import RawCsms, TcpProxy

CARD = "CAFE0001"
#: MeterValueSampleInterval in simulated seconds: 0.2 s of real time at the tests' speed.
SAMPLE_S = 2
TRANSACTION_ACTIONS = ("StartTransaction", "MeterValues", "StopTransaction")


def config(url: str, state_dir: Path | str, **ocpp: Any) -> dict[str, Any]:
    return station_config(url, str(state_dir),
                          ocpp={"meter_value_sample_interval_s": SAMPLE_S, **ocpp})


async def start_charging(csms: RawCsms, daemon: Daemon) -> Any:
    world = daemon.hardware.worlds[1]
    await csms.wait_for("StatusNotification", connectorId=1, status="Available")
    world.plug_in()
    await csms.wait_for("StatusNotification", connectorId=1, status="Preparing")
    world.card_reader.tap(CARD)
    await csms.wait_for("StartTransaction")
    await csms.wait_for("StatusNotification", connectorId=1, status="Charging")
    await until(lambda: world.contactor.closed, 10, "the contactor to close")
    return world


def answers_between(csms: RawCsms, before: int, probe: list[Any]) -> list[list[Any]]:
    """The station's answers since ``before``, except the one to ``probe``."""
    return [a.frame for a in csms.answers[before:] if a.frame[1] != probe[1]]


async def probe(csms: RawCsms) -> list[Any]:
    """A valid CALL: it must get a CALLRESULT. The station reads frames in order and
    answers each before reading the next, so once this is answered, every answer to
    frames sent before it has arrived."""
    answer = await csms.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer[0] == 3, answer
    assert answer[2]["configurationKey"][0]["key"] == "HeartbeatInterval"
    return answer


# ------------------------------------------------------- bad frames, one by one

#: CALLs the CSMS may send in 1.6 that a station may leave out, each with a valid payload.
OPTIONAL_CALLS = {
    "ReserveNow": {"connectorId": 1, "expiryDate": "2030-01-01T00:00:00Z", "idTag": "X", "reservationId": 1},
    "CancelReservation": {"reservationId": 1},
    "TriggerMessage": {"requestedMessage": "Heartbeat"},
    "GetDiagnostics": {"location": "ftp://diagnostics.example/"},
    "UpdateFirmware": {"location": "https://firmware.example/fw.bin", "retrieveDate": "2030-01-01T00:00:00Z"},
    "SetChargingProfile": {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
        "chargingProfileKind": "Relative", "chargingSchedule": {
            "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16}]}}},
    "ClearChargingProfile": {},
    "GetCompositeSchedule": {"connectorId": 1, "duration": 60},
}
#: The station's own handlers, as the library's @on decorator marks them: the peer's and its blocks'.
IMPLEMENTED = {getattr(f._on_action, "value", f._on_action)
               for cls in (*Peer16.__mro__, *V16Adapter.block_types)
               for f in vars(cls).values() if hasattr(f, "_on_action")}
NOT_IMPLEMENTED = [action for action in OPTIONAL_CALLS if action not in IMPLEMENTED][:2]

BAD_FRAMES = [
    # (frame as sent, id the answer must carry, its error code; None: no answer at all)
    pytest.param('[2,"bf-1","FooBar",{}]', "bf-1", "NotImplemented", id="unknown-action"),
    *[pytest.param(json.dumps([2, f"bf-{action}", action, OPTIONAL_CALLS[action]]), f"bf-{action}",
                   "NotSupported", id=f"1.6-action-not-implemented-{action}") for action in NOT_IMPLEMENTED],
    pytest.param('[2,"bf-4","RemoteStopTransaction",{"transactionId":"abc"}]', "bf-4",
                 "TypeConstraintViolation", id="wrong-type"),
    pytest.param('[2,"bf-5","ChangeConfiguration",{"key":"HeartbeatInterval","value":300}]', "bf-5",
                 "TypeConstraintViolation", id="wrong-type-number-for-string"),
    pytest.param('[2,"bf-6","ChangeAvailability",{"connectorId":1,"type":"Sometimes"}]', "bf-6",
                 "PropertyConstraintViolation", id="value-not-in-enum"),
    pytest.param('[2,"bf-7","ChangeAvailability",{"type":"Inoperative"}]', "bf-7",
                 "OccurenceConstraintViolation", id="required-property-missing"),
    pytest.param('[2,"bf-8","GetConfiguration",{"key":["HeartbeatInterval"],"colour":"red"}]', "bf-8",
                 "FormationViolation", id="extra-property"),
    pytest.param('[2,"id-x","Heartbeat"]', "id-x", "FormationViolation", id="call-without-payload"),
    pytest.param('[2,"bf-9","GetConfiguration",{},"more"]', "bf-9", "FormationViolation",
                 id="call-with-five-elements"),
    pytest.param('[2,"bf-10","GetConfiguration",["key"]]', "bf-10", "FormationViolation",
                 id="payload-not-an-object"),
    pytest.param("{[", None, None, id="not-json"),
    pytest.param('{"a":1}', None, None, id="json-object"),
    pytest.param("[7,\"x\"]", None, None, id="unknown-message-type"),
    pytest.param("[]", None, None, id="empty-array"),
    pytest.param('"[2,\\"s-1\\",\\"GetConfiguration\\",{}]"', None, None, id="json-string"),
    pytest.param('[3,"no-such-call",{}]', None, None, id="callresult-for-nothing"),
    pytest.param('[4,"no-such-call","GenericError","",{}]', None, None, id="callerror-for-nothing"),
    pytest.param('[2,17,"GetConfiguration",{}]', None, None, id="call-with-number-id"),
]


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def charging(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[RawCsms, Daemon, Any]]:
    """One station in a charging session for the whole table of bad frames."""
    async with RawCsms() as csms:
        async with running(config(csms.url, tmp_path_factory.mktemp("state"))) as daemon:
            world = await start_charging(csms, daemon)
            yield csms, daemon, world


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("frame", "unique_id", "code"), BAD_FRAMES)
async def test_bad_frame_gets_its_answer_and_the_session_goes_on(charging, frame, unique_id, code):
    csms, daemon, world = charging
    connection, connections = csms.connection, daemon.link.connections
    meter_values = len(csms.of("MeterValues", connection))
    before = len(csms.answers)

    await csms.send(frame)
    answer = await probe(csms)

    got = answers_between(csms, before, answer)
    if code is None:
        assert got == [], f"no answer expected to {frame!r}"
    else:
        assert len(got) == 1, f"exactly one answer expected to {frame!r}, got {got}"
        error = got[0]
        assert error[:3] == [4, unique_id, code], error
        assert len(error) == 5 and isinstance(error[3], str) and isinstance(error[4], dict), error
    # the same connection, still charging, still reporting
    assert csms.connection == connection and daemon.link.connections == connections
    assert daemon.link.connected.is_set()
    assert world.contactor.closed
    assert len(daemon.station.active_transactions()) == 1
    await csms.wait_for("MeterValues", count=meter_values + 1, connection=connection, timeout=5)
    assert csms.calls[-1].answered


# --------------------------------------------------- a CSMS that stops answering


async def test_unanswered_calls_replace_the_connection_and_lose_nothing(tmp_path):
    async with RawCsms() as csms:
        cfg = config(csms.url, tmp_path / "state", response_timeout_s=1,
                     transaction_message_retry_interval_s=1)
        async with running(cfg) as daemon:
            world = await start_charging(csms, daemon)
            # The socket stays open; the CSMS just never answers again on it.
            csms.muted.add(1)
            await until(lambda: [c for c in csms.calls if not c.answered], 5, "an unanswered CALL")
            # Waiting for its own answer (1 s), the station still answers the CSMS's CALLs.
            assert csms.connection == 1
            await probe(csms)
            await until(lambda: daemon.link.connections >= 2, 20, "a second connection")
            await csms.wait_for("BootNotification", connection=2)
            assert world.contactor.closed, "charging goes on while the link is replaced"
            assert len(daemon.station.active_transactions()) == 1
            await csms.wait_for("MeterValues", connection=2, count=2)
            world.card_reader.tap(CARD)
            await csms.wait_for("StopTransaction", connection=2)
            await until(lambda: len(daemon.outbox) == 0, 10, "an empty outbox")
            assert csms.sockets[0].state is State.CLOSED, "the station closed the silent connection"

        unanswered = [c for c in csms.calls if not c.answered]
        assert len(unanswered) >= 2 and {c.connection for c in unanswered} == {1}
        assert any(c.action == "MeterValues" for c in unanswered)
        delivered = [c for c in csms.calls if c.answered and c.action in TRANSACTION_ACTIONS]
        assert [c.action for c in delivered].count("StartTransaction") == 1
        assert delivered[0].action == "StartTransaction"
        assert delivered[-1].action == "StopTransaction"
        assert [c.action for c in delivered].count("StopTransaction") == 1
        stop = delivered[-1].payload
        assert stop["transactionId"] == 100 and stop["reason"] == "Local"
        # Every transaction message the silent CSMS left unanswered arrives again, in order.
        payloads = [c.payload for c in delivered]
        for call in unanswered:
            if call.action in TRANSACTION_ACTIONS:
                assert call.payload in payloads, f"{call.action} left unanswered was lost"
        samples = [c.payload for c in delivered if c.action == "MeterValues"]
        assert all(s["transactionId"] == 100 for s in samples)
        stamps = [s["meterValue"][0]["timestamp"] for s in samples]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), "in order, each once"
        assert samples[-1]["meterValue"][0]["timestamp"] <= stop["timestamp"]


# ------------------------------------------------------ a link that goes silent


async def test_a_silent_link_is_noticed_by_ping_and_replaced(tmp_path):
    async with RawCsms() as csms, TcpProxy(csms.port) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}/ocpp"
        # CALL timeouts (30 s) and heartbeats (300 s) are far off: only the ping can notice.
        cfg = config(url, tmp_path / "state", ping_interval_s=1, ping_timeout_s=1)
        async with running(cfg) as daemon:
            world = await start_charging(csms, daemon)
            await until(lambda: len(csms.sockets[0].pings) >= 1, 10, "a ping")
            proxy.freeze()
            await until(lambda: daemon.link.connections >= 2, 20, "a second connection")
            await csms.wait_for("BootNotification", connection=2)
            assert world.contactor.closed, "charging goes on while the link is replaced"
            assert len(daemon.station.active_transactions()) == 1
            samples = await csms.wait_for("MeterValues", connection=2, count=2)
            assert all(s.payload["transactionId"] == 100 for s in samples)
            await until(lambda: len(csms.sockets[1].pings) >= 1, 10, "pings on the new connection")
            assert world.contactor.closed
            # The CSMS never saw the first connection close: the station noticed by itself.
            assert csms.sockets[0].state is State.OPEN
        assert proxy.accepted >= 2


# ------------------------------------------------------- WebSocketPingInterval


async def test_websocket_ping_interval_turns_pings_off_and_on_live(tmp_path):
    """On a real socket: pings reach the CSMS, the keepalive takes WebSocketPingInterval 0
    and then 1 from ChangeConfiguration, and pings come again, all on the first connection.

    That no ping is sent while the interval is 0 needs time to pass for nothing to happen;
    tests/unit/test_connection_keepalive.py shows it in simulated time instead of here.
    """
    async with RawCsms() as csms:
        async with running(config(csms.url, tmp_path / "state", ping_interval_s=1)) as daemon:
            await csms.wait_for("BootNotification")
            pings = csms.sockets[0].pings
            await until(lambda: len(pings) >= 1, 10, "a ping")
            seen: list[float] = []  # every WebSocketPingInterval the keepalive reads
            read_setting = daemon.link.ping_interval

            def observed() -> float:
                seen.append(read_setting())
                return seen[-1]

            daemon.link.ping_interval = observed
            assert await csms.change_configuration("WebSocketPingInterval", "0") == "Accepted"
            await until(lambda: seen and seen[-1] == 0, 5, "the keepalive to read interval 0")
            assert await csms.change_configuration("WebSocketPingInterval", "1") == "Accepted"
            await until(lambda: seen[-1] == 1, 5, "the keepalive to read interval 1")
            # The keepalive reads the setting only after the pong to its last ping, and the CSMS
            # records a ping before it answers: every ping sent so far is counted here.
            resumed_from = len(pings)
            await until(lambda: len(pings) > resumed_from, 10, "pings to resume")
            assert daemon.link.connections == 1 and csms.connection == 1


async def test_a_shorter_ping_interval_applies_without_waiting_out_the_old_one(tmp_path):
    async with RawCsms() as csms:
        async with running(config(csms.url, tmp_path / "state", ping_interval_s=60)):
            await csms.wait_for("BootNotification")
            pings = csms.sockets[0].pings
            assert await csms.change_configuration("WebSocketPingInterval", "1") == "Accepted"
            # "changes apply at once": not after the 60 s the keepalive was already waiting
            await until(lambda: len(pings) >= 2, 6, "pings every second")


# ------------------------------------------------------------------- fuzzing

#: Actions the station implements, 1.6 actions it does not, and a few foreign ones.
#: Reset is left out: a valid one restarts the station, which is correct, but ends the run.
ACTIONS = [
    "ChangeAvailability", "ChangeConfiguration", "ClearCache", "DataTransfer", "GetConfiguration",
    "RemoteStartTransaction", "RemoteStopTransaction", "UnlockConnector",
    "ReserveNow", "CancelReservation", "TriggerMessage", "SetChargingProfile", "GetDiagnostics",
    "UpdateFirmware", "SendLocalList", "GetLocalListVersion", "ClearChargingProfile",
    "GetCompositeSchedule", "BootNotification", "Heartbeat", "StartTransaction",
    "TransactionEvent", "SetVariables", "reset", "",
]
#: Settings the fuzzer may change; SecurityProfile is left out (accepting it reconnects, by design).
KEYS = ["HeartbeatInterval", "MeterValueSampleInterval", "ConnectionTimeOut", "MeterValuesSampledData",
        "NumberOfConnectors", "AuthorizationKey", "LocalPreAuthorize", "WebSocketPingInterval",
        "MinimumStatusDuration", "NoSuchKey"]
FIELDS = ["connectorId", "type", "key", "value", "idTag", "transactionId", "vendorId", "messageId",
          "data", "requestedMessage", "chargingProfile"]

texts = st.text(st.characters(codec="utf-8"), max_size=24)
scalars = (st.none() | st.booleans() | st.integers(-(2**53), 2**53) | texts
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.sampled_from(["Operative", "Inoperative", "Hard", "Soft", "1", "0", "true", "300"]))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS) | texts, inner,
                                                                max_size=4),
    max_leaves=12,
)
random_payloads = st.dictionaries(st.sampled_from(FIELDS) | texts, json_values, max_size=5)


def _optional(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=fields)


connector_ids = st.integers(-1, 3)
valid_calls = st.one_of(
    st.tuples(st.just("ChangeAvailability"), st.fixed_dictionaries(
        {"connectorId": connector_ids, "type": st.sampled_from(["Operative", "Inoperative"])})),
    st.tuples(st.just("ChangeConfiguration"), st.fixed_dictionaries(
        {"key": st.sampled_from(KEYS) | st.text(max_size=50),
         "value": st.sampled_from(["0", "1", "60", "true", "-5", ""]) | st.text(max_size=20)})),
    st.tuples(st.just("GetConfiguration"), _optional(
        key=st.lists(st.sampled_from(KEYS) | st.text(max_size=50), max_size=5))),
    st.tuples(st.just("ClearCache"), st.just({})),
    st.tuples(st.just("DataTransfer"), st.fixed_dictionaries(
        {"vendorId": st.text(max_size=20)}, optional={"messageId": st.text(max_size=20), "data": texts})),
    st.tuples(st.just("RemoteStartTransaction"), st.fixed_dictionaries(
        {"idTag": st.text(min_size=1, max_size=20)}, optional={"connectorId": connector_ids})),
    st.tuples(st.just("RemoteStopTransaction"), st.fixed_dictionaries(
        {"transactionId": st.integers(-5, 200)})),
    st.tuples(st.just("UnlockConnector"), st.fixed_dictionaries({"connectorId": connector_ids})),
    st.tuples(st.just("TriggerMessage"), st.fixed_dictionaries(
        {"requestedMessage": st.sampled_from(["Heartbeat", "StatusNotification", "Nope"])})),
)
unique_ids = st.text(st.characters(codec="utf-8"), max_size=36) | st.uuids().map(str)
well_formed_calls = st.one_of(
    st.tuples(unique_ids, valid_calls).map(lambda t: [2, t[0], t[1][0], t[1][1]]),
    st.tuples(unique_ids, st.sampled_from(ACTIONS) | texts, random_payloads).map(lambda t: [2, *t]),
)
#: Text with lone surrogates too: json.dumps escapes them (valid JSON, invalid UTF-16 once decoded).
any_texts = st.text(max_size=36)
junk = st.one_of(
    texts,  # mostly not JSON
    json_values.map(json.dumps),
    st.lists(json_values, max_size=6).map(json.dumps),
    st.tuples(st.sampled_from([2, 3, 4, 5, 2.0, "2", None]), unique_ids | json_values,
              st.lists(json_values, max_size=4)).map(lambda t: json.dumps([t[0], t[1], *t[2]])),
    st.tuples(unique_ids, json_values).map(lambda t: json.dumps([3, t[0], t[1]])),
    st.tuples(unique_ids, texts, texts, json_values).map(lambda t: json.dumps([4, *t])),
)
frames = st.one_of(
    well_formed_calls.map(json.dumps),
    well_formed_calls.map(lambda f: json.dumps(f, ensure_ascii=False)),
    st.tuples(any_texts, st.sampled_from(ACTIONS) | any_texts, random_payloads).map(
        lambda t: json.dumps([2, *t])),
    junk,
)


def well_formed_call(text: str) -> bool:
    """[2, "<id up to 36 chars>", "<action>", {payload}]"""
    try:
        frame = json.loads(text)
    except ValueError:
        return False
    return (isinstance(frame, list) and len(frame) == 4 and type(frame[0]) is int and frame[0] == 2
            and isinstance(frame[1], str) and len(frame[1]) <= 36 and isinstance(frame[2], str)
            and isinstance(frame[3], dict))


def message_type(text: str) -> Any:
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    return frame[0] if isinstance(frame, list) and frame else None


@pytest.fixture
async def fuzz_station(tmp_path: Path) -> AsyncIterator[tuple[RawCsms, Daemon, asyncio.Future[Any]]]:
    async with RawCsms() as csms:
        daemon = Daemon(parse(config(csms.url, tmp_path / "state"), "<fuzz>"))
        task = asyncio.ensure_future(daemon.run())
        try:
            await csms.wait_for("StatusNotification", connectorId=1)
            yield csms, daemon, task
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 20)


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frame=frames)
async def test_fuzzed_frames_never_crash_and_every_call_is_answered_once(fuzz_station, frame):
    csms, daemon, task = fuzz_station
    before = len(csms.answers)
    await csms.send(frame)
    answer = await probe(csms)

    got = answers_between(csms, before, answer)
    kind = "call" if well_formed_call(frame) else "type-2" if message_type(frame) == 2 else "other"
    event(f"{kind} -> {got[0][0] if got else None} {got[0][2] if got and got[0][0] == 4 else ''}")
    if well_formed_call(frame):
        unique_id = json.loads(frame)[1]
        assert len(got) == 1, f"one answer expected to {frame!r}, got {got}"
        assert got[0][0] in (3, 4) and got[0][1] == unique_id, got
        if got[0][0] == 4:
            assert got[0][2] != "InternalError", f"a handler failed on {frame!r}: {got[0]}"
    elif message_type(frame) == 2:
        assert len(got) <= 1, f"at most one answer expected to {frame!r}, got {got}"
        assert all(g[0] == 4 for g in got), got
    else:
        assert got == [], f"no answer expected to {frame!r}, got {got}"
    assert not task.done()
    assert daemon.link.connected.is_set()
    assert daemon.link.connections == 1 and csms.connection == 1
