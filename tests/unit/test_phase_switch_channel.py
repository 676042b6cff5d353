"""The phase request on the supervisor channel: checked on the wire, refused without KM2, carried
out by the safety loop, and the phases in use in every state event."""

from __future__ import annotations

from typing import Any

import pytest

from chargepoint.safety.evse import EvseController
from chargepoint.safety.limits import LimitClaims
from chargepoint.supervisor import wire
from chargepoint.supervisor.hardware import Guarded
from chargepoint.supervisor.station import OrphanPolicy, SafetyStation
from chargepoint.supervisor.wire import WireError
from hal.clock import ManualClock
from tests.unit.test_evse import TICK, FakeContactor, FakeFaults, FakePilot
from tests.unit.test_phase_switch import FakePhaseContactor


def station(with_km2: bool) -> tuple[SafetyStation, EvseController, ManualClock]:
    clock = ManualClock()
    contactor = FakeContactor(clock)
    km2 = FakePhaseContactor(clock, contactor) if with_km2 else None
    limits = LimitClaims()
    limits.set("station", 16.0)
    evse = EvseController(FakePilot(clock), contactor, FakeFaults(), clock, limits, phase_contactor=km2)
    return SafetyStation([Guarded(1, evse, limits)], clock, OrphanPolicy(120.0, 16.0)), evse, clock


def ask(s: SafetyStation, **fields: Any) -> dict[str, Any]:
    request = wire.parse_request(wire.decode(wire.encode({"id": 1, "op": "phases", **fields})))
    return s.handle(request, control=True)


@pytest.mark.parametrize("phases", [0, 2.5, True, "1", 4])
def test_only_a_number_of_phases_from_one_to_three_passes_the_wire(phases):
    s, _, _ = station(True)
    with pytest.raises(WireError) as info:
        ask(s, connector=1, phases=phases)
    assert info.value.code == "bad_field"


def test_two_phases_pass_the_wire_but_the_safety_loop_refuses_them():
    s, _, _ = station(True)
    with pytest.raises(WireError, match="1 or 3") as info:
        ask(s, connector=1, phases=2)
    assert info.value.code == "refused"


def test_refused_without_a_phase_contactor():
    s, evse, _ = station(False)
    with pytest.raises(WireError, match="no phase contactor configured") as info:
        ask(s, connector=1, phases=1)
    assert info.value.code == "refused"
    assert wire.status_fields(evse.status)["phases"] is None


def test_a_request_is_carried_out_by_the_loop_and_shows_in_the_state_event():
    s, evse, clock = station(True)
    for _ in range(round(4.0 / TICK)):
        clock.advance(TICK)
        evse.step()
    assert wire.parse_status(wire.status_fields(evse.status)).phases == 3
    assert ask(s, connector=1, phases=1) == {}
    for _ in range(round(4.0 / TICK)):
        clock.advance(TICK)
        evse.step()
    fields = s.connector_state(s.connectors[1])["status"]
    assert fields["phases"] == 1 and wire.parse_status(fields).phases == 1


def test_a_status_from_a_supervisor_without_the_field_reads_as_no_phase_contactor():
    s, evse, _ = station(True)
    fields = wire.status_fields(evse.status)
    del fields["phases"]
    assert wire.parse_status(fields).phases is None


class RecordingClient:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def send(self, op: str, **fields: Any) -> int:
        self.sent.append((op, fields))
        return len(self.sent)


def test_the_daemon_side_asks_only_a_supervisor_that_has_the_contactor():
    from chargepoint.supervisor.client import RemoteEvse

    client = RecordingClient()
    remote = RemoteEvse(client, 1)  # type: ignore[arg-type]
    assert not remote.phases.configured
    assert "no phase contactor configured" in (remote.phases.request(1) or "")
    assert client.sent == []
    s, evse, _ = station(True)
    remote.took_state(s.connector_state(s.connectors[1]), attach=True, now=0.0)
    assert remote.phases.configured and remote.phases.phases == 1
    assert remote.phases.request(3) is None
    assert client.sent == [("phases", {"connector": 1, "phases": 3})]
    assert remote.phases.target == 3  # sent again to a restarted supervisor
