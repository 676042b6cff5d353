"""OCPP 2.0.1 smart charging (K) and reservations (H) against the scripted 2.0.1 CSMS: what the strict
peer cannot send (malformed CALLs, answered with the 2.0.1 error while the link stays up) and what
outlives the daemon (a profile and a reservation are in force again after a restart)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from ocpp.exceptions import OccurrenceConstraintViolationError, PropertyConstraintViolationError
from ocpp.messages import Call
from ocpp.v201 import call

from tests.integration.loopback_csms201 import LoopbackCsms201
from tests.integration.v201_rig import booted, station201

SCHEDULE = {"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 10}]}
PROFILE = {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
           "chargingProfileKind": "Relative", "chargingSchedule": [SCHEDULE]}
TOKEN = {"idToken": "CAFE2001", "type": "ISO14443"}


@pytest.fixture
async def csms() -> AsyncIterator[LoopbackCsms201]:
    server = await LoopbackCsms201().start()
    yield server
    await server.close()


@pytest.mark.parametrize(("frame", "error"), [
    (Call("k1", "SetChargingProfile", {"evseId": 1, "chargingProfile": {**PROFILE, "validFrom": "tuesday"}}),
     PropertyConstraintViolationError),
    (Call("k2", "SetChargingProfile", {"evseId": 1, "chargingProfile": {**PROFILE, "chargingSchedule": []}}),
     OccurrenceConstraintViolationError),
    (Call("k3", "GetCompositeSchedule", {"duration": 60}), OccurrenceConstraintViolationError),
    (Call("h1", "ReserveNow", {"id": 1, "expiryDateTime": "soon", "idToken": TOKEN}),
     PropertyConstraintViolationError),
    (Call("h2", "CancelReservation", {}), OccurrenceConstraintViolationError),
])
async def test_bad_k_and_h_calls_get_the_201_error_and_the_link_stays_up(
        csms: LoopbackCsms201, tmp_path: Path, frame: Call, error: type) -> None:
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        peer = csms.peer
        assert peer is not None
        async with peer._call_lock:
            await peer._send(frame.to_json())
            answer = await peer._get_specific_response(frame.unique_id, 5)
        assert json.loads(answer.to_json())[2] == error.code, answer
        assert daemon.smart_charging.profiles == {} and daemon.station.reservations.all() == []
        assert (await csms.call(call.ClearCache())).status == "Accepted", "the link is still up"
        assert daemon.link.connections == 1


def _in(daemon: Any, seconds: float) -> str:
    return datetime.fromtimestamp(daemon.clock.time() + seconds, UTC).isoformat().replace("+00:00", "Z")


async def test_a_profile_and_a_reservation_are_in_force_again_after_a_restart(
        csms: LoopbackCsms201, tmp_path: Path) -> None:
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        answer = await csms.call(call.SetChargingProfile(evse_id=1, charging_profile=PROFILE))
        assert answer.status == "Accepted"
        answer = await csms.call(call.ReserveNow(id=5, expiry_date_time=_in(daemon, 3600), id_token=TOKEN,
                                                 evse_id=1))
        assert answer.status == "Accepted"
        await csms.wait_for("StatusNotification", evse_id=1, connector_status="Reserved")
    async with station201(csms, tmp_path) as daemon:
        await booted(csms, daemon)
        reserved = await csms.wait_for("StatusNotification", count=2, evse_id=1, connector_status="Reserved")
        assert reserved[-1].connection == 2, "the new connection reports the reservation held"
        composite = await csms.call(call.GetCompositeSchedule(duration=60, evse_id=1))
        assert composite.schedule["charging_schedule_period"][0]["limit"] == 10
        assert [r.id for r in daemon.station.reservations.all()] == [5]
