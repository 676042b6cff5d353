"""Smart charging in 2.0.1 (the K block) against the strict ``ocpp-rpc`` CSMS: every frame schema-checked.

A CSMS reads the SmartChargingCtrlr variables, caps the station (EVSE 0), sets a
default for transactions in watts, lists the profiles (GetChargingProfiles, the
report coming in parts afterwards), starts a transaction with its own profile,
pauses and resumes it, asks for composite schedules and clears profiles. The
simulated EV must follow each change on the pilot, the answers must be the
specification's, and the strict peer must find nothing wrong in any frame.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from hal.sim.world import offered_current_a
from tests.integration.strict_peer import StrictPeer
from tests.integration.test_v201_strict import ok, peer

__all__ = ["peer"]  # the fixture: the node process serving 2.0.1

ABSOLUTE = {"startSchedule": "2020-01-01T00:00:00Z"}


def profile(pid: int, purpose: str, limit: float, *, level: int = 0, kind: str = "Relative",
            **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"id": pid, "chargingRateUnit": "A",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
    schedule.update(extra.pop("schedule", {}))
    return {"id": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": [schedule], **extra}


async def test_k_block_passes_strict_validation_and_reaches_the_pilot(
        peer: StrictPeer, tmp_path: Path) -> None:
    daemon = Daemon(parse({
        "station": {"identity": "CP-SMART-201", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_v201_smart_charging>"))
    task = asyncio.ensure_future(daemon.run())
    try:
        await _scenario(peer, daemon)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], "ocpp-rpc (strict, 2.0.1) rejected frames the station sent" + \
        peer.report()
    assert peer.of("badMessage") == [], peer.report()


async def _variables(peer: StrictPeer) -> dict[str, str]:
    names = [("Entries", "ChargingProfiles"), ("LimitChangeSignificance", None), ("PeriodsPerSchedule", None),
             ("ProfileStackLevel", None), ("RateUnit", None), ("Enabled", None)]
    asked = [{"component": {"name": "SmartChargingCtrlr"},
              "variable": {"name": n, **({"instance": i} if i else {})}} for n, i in names]
    results = (await ok(peer, "GetVariables", {"getVariableData": asked}))["getVariableResult"]
    assert all(r["attributeStatus"] == "Accepted" for r in results), results
    return {r["variable"]["name"]: r["attributeValue"] for r in results}


async def _scenario(peer: StrictPeer, daemon: Daemon) -> None:
    world = daemon.hardware.worlds[1]
    await peer.wait_call("StatusNotification", evseId=1, connectorStatus="Available")

    # The device model: the engine's limits, as the 1.6 keys show them.
    values = await _variables(peer)
    assert values["RateUnit"] == "A,W" and values["Entries"] == "0" and values["Enabled"] == "true"
    assert int(values["ProfileStackLevel"]) > 0 and int(values["PeriodsPerSchedule"]) > 0

    # K01: the station's maximum on EVSE 0, a default for transactions in watts (11040 W = 16 A, 3 x 230 V).
    station_max = profile(1, "ChargingStationMaxProfile", 20, kind="Absolute", schedule=ABSOLUTE)
    assert await ok(peer, "SetChargingProfile", {"evseId": 0, "chargingProfile": station_max}) \
        == {"status": "Accepted"}
    watts = [{"startPeriod": 0, "limit": 11040, "numberPhases": 3}]
    default = profile(2, "TxDefaultProfile", 0,
                      schedule={"chargingRateUnit": "W", "chargingSchedulePeriod": watts})
    assert await ok(peer, "SetChargingProfile", {"evseId": 1, "chargingProfile": default}) \
        == {"status": "Accepted"}
    assert (await _variables(peer))["Entries"] == "2"
    # Rejected: the purpose and stack level of profile 2 under another id (K01.FR.06), a station maximum on
    # an EVSE, a TxProfile with no transaction, an EVSE the station lacks, external constraints.
    for evse, rejected in ((1, profile(3, "TxDefaultProfile", 10)),
                           (1, profile(4, "ChargingStationMaxProfile", 10)),
                           (1, profile(5, "TxProfile", 10)),
                           (7, profile(6, "TxDefaultProfile", 10)),
                           (0, profile(7, "ChargingStationExternalConstraints", 10))):
        answer = await ok(peer, "SetChargingProfile", {"evseId": evse, "chargingProfile": rejected})
        assert answer["status"] == "Rejected" and answer["statusInfo"]["additionalInfo"], answer

    # K08: the composite schedule, in A and in W; an unknown EVSE is Rejected.
    composite = await ok(peer, "GetCompositeSchedule", {"evseId": 1, "duration": 600})
    assert composite["status"] == "Accepted"
    schedule = composite["schedule"]
    assert (schedule["evseId"], schedule["duration"], schedule["chargingRateUnit"]) == (1, 600, "A")
    assert schedule["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 16, "numberPhases": 3}]
    in_watts = await ok(peer, "GetCompositeSchedule", {"evseId": 1, "duration": 600, "chargingRateUnit": "W"})
    assert in_watts["schedule"]["chargingSchedulePeriod"][0]["limit"] == 11040
    assert (await ok(peer, "GetCompositeSchedule", {"evseId": 5, "duration": 60}))["status"] == "Rejected"

    # K09: GetChargingProfiles answered at once, then ReportChargingProfiles per EVSE, tbc but on the last.
    assert await ok(peer, "GetChargingProfiles", {"requestId": 41, "chargingProfile": {}}) \
        == {"status": "Accepted"}
    reports = [c["params"] for c in await peer.wait_call("ReportChargingProfiles", count=2, requestId=41)]
    assert [(r["evseId"], r.get("tbc", False), r["chargingLimitSource"]) for r in reports] == [
        (0, True, "CSO"), (1, False, "CSO")]
    reported = reports[1]["chargingProfile"][0]
    assert (reported["id"], reported["chargingProfilePurpose"], reported["chargingProfileKind"]) == (
        2, "TxDefaultProfile", "Relative")
    assert reported["chargingSchedule"][0]["chargingSchedulePeriod"] == watts
    none = {"requestId": 42, "chargingProfile": {"chargingProfilePurpose": "TxProfile"}}
    assert await ok(peer, "GetChargingProfiles", none) == {"status": "NoProfiles"}
    by_id = {"requestId": 43, "evseId": 0, "chargingProfile": {"chargingProfileId": [1, 2]}}
    assert await ok(peer, "GetChargingProfiles", by_id) == {"status": "Accepted"}
    only = (await peer.wait_call("ReportChargingProfiles", requestId=43))[0]["params"]
    assert only["evseId"] == 0 and [p["id"] for p in only["chargingProfile"]] == [1]

    # K05: a remote start with the transaction's own profile (10 A for 30 simulated s, then 13 A); one
    # that names a transaction is refused with the start.
    bad = profile(9, "TxProfile", 10, transactionId="x")
    start = {"idToken": {"idToken": "REMOTE201", "type": "Central"}, "remoteStartId": 5, "evseId": 1}
    refused = await ok(peer, "RequestStartTransaction", {**start, "chargingProfile": bad})
    assert refused["status"] == "Rejected"
    own = profile(10, "TxProfile", 10, schedule={"chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": 10}, {"startPeriod": 30, "limit": 13}]})
    accepted = await ok(peer, "RequestStartTransaction", {**start, "chargingProfile": own})
    assert accepted["status"] == "Accepted"
    world.plug_in()
    started = (await peer.wait_call("TransactionEvent", eventType="Started"))[0]["params"]
    tx_id = started["transactionInfo"]["transactionId"]
    await peer.wait(lambda: world.contactor.closed, "the contactor to close")
    assert offered_current_a(world.pilot.duty_percent) == 10.0
    await peer.wait(lambda: offered_current_a(world.pilot.duty_percent) == 13.0, "13 A after 30 s", 10)
    assert daemon.smart_charging.profiles[10].transaction_id == tx_id

    # The CSMS pauses the transaction (0 A at stack level 1, naming it), then lifts the pause (K10 by id).
    pause = profile(11, "TxProfile", 0, level=1, transactionId=tx_id)
    assert await ok(peer, "SetChargingProfile", {"evseId": 1, "chargingProfile": pause}) \
        == {"status": "Accepted"}
    await peer.wait(lambda: world.pilot.duty_percent == 100.0 and not world.contactor.closed, "the pause")
    paused = await ok(peer, "GetCompositeSchedule", {"evseId": 1, "duration": 60})
    assert paused["schedule"]["chargingSchedulePeriod"][0]["limit"] == 0
    assert await ok(peer, "ClearChargingProfile", {"chargingProfileId": 11}) == {"status": "Accepted"}
    await peer.wait(lambda: offered_current_a(world.pilot.duty_percent) == 13.0 and world.contactor.closed,
                    "charging at 13 A again")

    # K10 by criteria; nothing left to match is Unknown.
    criteria = {"evseId": 0, "chargingProfilePurpose": "ChargingStationMaxProfile", "stackLevel": 0}
    assert await ok(peer, "ClearChargingProfile", {"chargingProfileCriteria": criteria}) \
        == {"status": "Accepted"}
    assert await ok(peer, "ClearChargingProfile", {"chargingProfileId": 99}) == {"status": "Unknown"}

    assert (await ok(peer, "RequestStopTransaction", {"transactionId": tx_id}))["status"] == "Accepted"
    await peer.wait_call("TransactionEvent", eventType="Ended")
    await peer.wait(lambda: 10 not in daemon.smart_charging.profiles, "the transaction's profile to go")
    assert sorted(daemon.smart_charging.profiles) == [2]
    assert peer.of("close") == [] and daemon.link.connections == 1, "the link dropped" + peer.report()
