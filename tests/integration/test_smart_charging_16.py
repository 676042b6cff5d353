"""Smart charging in 1.6 against the strict ``ocpp-rpc`` CSMS: every frame schema-checked.

A CSMS caps the station, sets a default for transactions, starts one remotely
with its own profile, lowers it to a pause and lifts it, asks for composite
schedules and clears profiles. The simulated EV must follow each change on the
pilot, the answers must be what the specification says, and the strict peer
must find nothing wrong in any frame the station sent.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from hal.sim.world import offered_current_a
from tests.integration import test_strict_peer
from tests.integration.strict_peer import StrictPeer

peer = test_strict_peer.peer  # the fixture: the node process running strict_csms.js

KEYS = ["ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit", "ChargingScheduleMaxPeriods",
        "MaxChargingProfilesInstalled", "SupportedFeatureProfiles"]


def amps_profile(pid: int, purpose: str, limit: float, *, level: int = 0, kind: str = "Relative",
                 **extra: Any) -> dict[str, Any]:
    schedule: dict[str, Any] = {"chargingRateUnit": "A",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": limit}]}
    schedule.update(extra.pop("schedule", {}))
    return {"chargingProfileId": pid, "stackLevel": level, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": schedule, **extra}


async def ok(peer: StrictPeer, action: str, params: dict[str, Any]) -> dict[str, Any]:
    answer = await peer.call(action, params)
    assert answer["event"] == "result", f"{action}: {answer}"
    return answer["result"]


async def test_smart_charging_messages_pass_strict_validation_and_reach_the_pilot(
        peer: StrictPeer, tmp_path: Path) -> None:
    config = parse({
        "station": {"identity": "CP-SMART-1", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_smart_charging_16>")
    daemon = Daemon(config)
    task = asyncio.ensure_future(daemon.run())
    try:
        await _scenario(peer, daemon)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], "ocpp-rpc (strict) rejected frames the station sent" + peer.report()
    assert peer.of("badMessage") == [], peer.report()


async def _scenario(peer: StrictPeer, daemon: Daemon) -> None:
    world = daemon.hardware.worlds[1]
    await peer.wait_call("StatusNotification", connectorId=1, status="Available")

    keys = {k["key"]: k for k in (await ok(peer, "GetConfiguration", {"key": KEYS}))["configurationKey"]}
    assert "SmartCharging" in keys["SupportedFeatureProfiles"]["value"].split(",")
    assert keys["ChargingScheduleAllowedChargingRateUnit"]["value"] == "Current,Power"
    assert all(k["readonly"] for k in keys.values()) and int(keys["ChargeProfileMaxStackLevel"]["value"]) > 0

    # The station's maximum, and a default for transactions in watts (11040 W on 3 x 230 V = 16 A).
    station_max = amps_profile(1, "ChargePointMaxProfile", 20, kind="Absolute",
                               schedule={"startSchedule": "2020-01-01T00:00:00Z"})
    assert await ok(peer, "SetChargingProfile", {"connectorId": 0, "csChargingProfiles": station_max}) \
        == {"status": "Accepted"}
    watts = [{"startPeriod": 0, "limit": 11040, "numberPhases": 3}]
    default = amps_profile(2, "TxDefaultProfile", 0,
                           schedule={"chargingRateUnit": "W", "chargingSchedulePeriod": watts})
    assert await ok(peer, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": default}) \
        == {"status": "Accepted"}
    # Refused: a station maximum on a connector, a TxProfile with no transaction, an unknown connector.
    for connector, profile in ((1, amps_profile(3, "ChargePointMaxProfile", 10)),
                               (1, amps_profile(4, "TxProfile", 10)),
                               (7, amps_profile(5, "TxDefaultProfile", 10))):
        params = {"connectorId": connector, "csChargingProfiles": profile}
        assert await ok(peer, "SetChargingProfile", params) == {"status": "Rejected"}

    composite = await ok(peer, "GetCompositeSchedule", {"connectorId": 1, "duration": 600})
    assert composite["status"] == "Accepted" and composite["connectorId"] == 1
    assert composite["chargingSchedule"]["chargingRateUnit"] == "A"
    assert composite["chargingSchedule"]["chargingSchedulePeriod"] == [
        {"startPeriod": 0, "limit": 16, "numberPhases": 3}]
    in_watts = await ok(peer, "GetCompositeSchedule", {"connectorId": 1, "duration": 600,
                                                       "chargingRateUnit": "W"})
    assert in_watts["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 11040
    unknown = await ok(peer, "GetCompositeSchedule", {"connectorId": 5, "duration": 60})
    assert unknown["status"] == "Rejected"

    # A remote start with the transaction's own profile: 10 A for the first 30 simulated seconds.
    own = amps_profile(10, "TxProfile", 10, schedule={"chargingSchedulePeriod": [
        {"startPeriod": 0, "limit": 10}, {"startPeriod": 30, "limit": 13}]})
    assert await ok(peer, "RemoteStartTransaction", {"connectorId": 1, "idTag": "REMOTE01",
                                                     "chargingProfile": own}) == {"status": "Accepted"}
    world.plug_in()
    await peer.wait_call("StatusNotification", connectorId=1, status="Charging")
    assert offered_current_a(world.pilot.duty_percent) == 10.0
    await peer.wait(lambda: offered_current_a(world.pilot.duty_percent) == 13.0, "13 A after 30 s", 10)

    # The CSMS pauses the transaction (0 A, stack level 1), then lifts the pause.
    pause = amps_profile(11, "TxProfile", 0, level=1, transactionId=1)
    assert await ok(peer, "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": pause}) \
        == {"status": "Accepted"}
    await peer.wait_call("StatusNotification", connectorId=1, status="SuspendedEVSE")
    assert world.pilot.duty_percent == 100.0 and not world.contactor.closed
    paused = await ok(peer, "GetCompositeSchedule", {"connectorId": 1, "duration": 60})
    assert paused["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 0
    assert await ok(peer, "ClearChargingProfile", {"id": 11}) == {"status": "Accepted"}
    await peer.wait_call("StatusNotification", count=2, connectorId=1, status="Charging")
    assert offered_current_a(world.pilot.duty_percent) == 13.0

    # Clearing by criteria; nothing left to match is Unknown.
    criteria = {"connectorId": 0, "chargingProfilePurpose": "ChargePointMaxProfile", "stackLevel": 0}
    assert await ok(peer, "ClearChargingProfile", criteria) == {"status": "Accepted"}
    assert await ok(peer, "ClearChargingProfile", {"id": 99}) == {"status": "Unknown"}
    answer = await peer.call("RemoteStopTransaction", {"transactionId": 1})
    assert answer["event"] == "result"
    await peer.wait_call("StopTransaction")
    await peer.wait(lambda: 10 not in daemon.smart_charging.profiles, "the transaction's profile to go")
    assert sorted(daemon.smart_charging.profiles) == [2]
    assert peer.of("close") == [] and daemon.link.connections == 1, "the link dropped" + peer.report()


async def test_bad_charging_profiles_get_the_16_error_and_the_link_stays(tmp_path: Path) -> None:
    """Frames ocpp-rpc would not send: a hand-written CSMS on loopback sends them raw."""
    from tests.integration.conftest import running, station_config
    from tests.integration.peers import RawCsms

    async with RawCsms() as csms:
        async with running(station_config(csms.url, str(tmp_path / "state"))) as daemon:
            await csms.wait_for("StatusNotification", connectorId=1)
            bad_date = amps_profile(1, "TxDefaultProfile", 16, validFrom="next tuesday")
            too_fine = amps_profile(2, "TxDefaultProfile", 16.25)  # 1.6 limits have one decimal
            for profile in (bad_date, too_fine):
                params = {"connectorId": 1, "csChargingProfiles": profile}
                answer = await csms.call("SetChargingProfile", params)
                assert answer[0] == 4 and answer[2] == "PropertyConstraintViolation", answer
            fine = amps_profile(3, "TxDefaultProfile", 13.3)  # 13.3 is a multiple of 0.1 as a decimal
            answer = await csms.call("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": fine})
            assert answer[:1] == [3] and answer[2] == {"status": "Accepted"}, answer
            assert daemon.station.view(1).claims["smart_charging"] == 13.3
            assert sorted(daemon.smart_charging.profiles) == [3]
            answer = await csms.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
            assert answer[0] == 3 and csms.connection == 1, "the link stayed up"
