"""The heartbeat check on the simulation, and the words it leaves for a technician.

The simulated station carries the board's charge pump (``hal.sim.heartbeat``), so
its safety loop checks the heartbeat circuit before every session as a board's
does, and a simulated part failure refuses charging the same way. What the check
found travels from the supervisor's state to the daemon's mirror of the connector,
a failure's reason into the daemon's log (which ``chargepoint status`` shows), and
the check's last result into ``chargepoint selftest``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from chargepoint.config import parse
from chargepoint.control import output_tests
from chargepoint.control.selftest import FAIL, PASS, SKIP, WARN, heartbeat_check, supervisor_check
from chargepoint.protocol.v16.translate import ERROR_CODES
from chargepoint.safety.status import EvseFault
from chargepoint.supervisor.client import RemoteEvse, SupervisorClient
from chargepoint.supervisor.hardware import build_simulation
from chargepoint.supervisor.sim import sim_action
from chargepoint.supervisor.station import OrphanPolicy, SafetyStation
from hal.clock import ManualClock


class SimStation:
    """The supervisor's simulated hardware on a ManualClock, stepped by the test."""

    def __init__(self, tmp_path: Path) -> None:
        config = parse({"station": {"identity": "CP1", "state_dir": str(tmp_path)}}, "<test>")
        self.clock = ManualClock()
        hardware = build_simulation(config, self.clock)
        self.station = SafetyStation(hardware.connectors, self.clock, OrphanPolicy(), sim_action)
        self.guarded = hardware.connectors[0]
        self.world = self.guarded.world
        self.evse = self.guarded.evse
        self.tick = config.safety.tick_s

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / self.tick)):
            self.evse.step()
            self.clock.advance(self.tick)

    def session(self) -> None:
        self.run(0.1)
        self.evse.allow()
        self.world.plug_in()
        self.run(3.0)

    def mirrored(self) -> RemoteEvse:
        """The daemon's view of the connector, from the supervisor's state as the channel carries it."""
        remote = RemoteEvse(SupervisorClient("/nonexistent"), 1)
        remote.took_state(self.station.connector_state(self.guarded), attach=False, now=0.0)
        return remote


def test_the_simulated_station_checks_its_heartbeat_and_charges(tmp_path):
    sim = SimStation(tmp_path)
    assert sim.mirrored().heartbeat_check.report is None  # not run before the first session
    sim.session()
    assert sim.world.contactor.closed and sim.world.ev.current_a > 0
    report = sim.mirrored().heartbeat_check.report or ""
    assert report.startswith("check passed before the last session: G ") and "Q4 off" in report


def test_a_failed_part_in_the_simulation_refuses_charging_with_its_reason(tmp_path, caplog):
    sim = SimStation(tmp_path)
    sim.world.heartbeat.pump.fail(r62_ohms=math.inf)
    sim.session()
    assert not sim.world.contactor.closed and sim.world.ev.current_a == 0
    caplog.clear()
    remote = sim.mirrored()
    assert EvseFault.HEARTBEAT in remote.status.faults
    report = remote.heartbeat_check.report or ""
    assert report.startswith("check FAILED: G still reads ") and "R62 open" in report
    assert "chargepoint fault clear" in report
    # The daemon's log line, which status lists under the last errors, gives the reason.
    assert f"connector-1: fault heartbeat: {report}" in caplog.messages
    assert ERROR_CODES["heartbeat"].value == "PowerSwitchFailure"  # the 1.6 status a CSMS sees


def _target(evse: Any) -> output_tests.TestTarget:
    return output_tests.TestTarget(1, evse, lambda: None)


def test_selftest_reports_the_check_not_run_passed_and_failed(tmp_path):
    healthy = SimStation(tmp_path / "healthy")
    assert heartbeat_check(_target(healthy.mirrored())).status == SKIP  # no session yet
    healthy.session()
    remote = healthy.mirrored()
    check = heartbeat_check(_target(remote))
    assert (check.status, check.detail) == (PASS, remote.heartbeat_check.report)
    broken = SimStation(tmp_path / "broken")
    broken.world.heartbeat.pump.fail(q4_shorted=True)
    broken.session()
    check = heartbeat_check(_target(broken.mirrored()))
    assert check.status == FAIL and check.detail.startswith("check FAILED: Q4 conducts with G at ")


def test_the_supervisor_check_warns_when_a_step_outlasts_the_pump():
    figures = {"connected": True, "loops_alive": True, "pid": 1, "step_p99_ms": 2.0, "sched": "fifo",
               "memory_locked": True, "heartbeat": True}
    assert supervisor_check({**figures, "step_max_ms": 6.4}, True, 0.005).status == PASS
    slow = supervisor_check({**figures, "step_max_ms": 10.5}, True, 0.005)
    assert slow.status == WARN and "15 ms between heartbeat edges" in slow.detail
    assert supervisor_check({**figures, "step_max_ms": 10.5, "heartbeat": False}, True, 0.005).status == PASS
