"""How often the supervisor's own asyncio loop wakes: when something is due, not ten times a second.

Its figures go out once a second and systemd's watchdog wants a ping every half
WatchdogSec; between those an idle station has nothing for it to do. An orphan
grace (the daemon gone while a car charges) must end on time, and a loop that
stopped stepping must be looked at often: then it ticks every ``TICK_S``. Judged
on a ``Supervisor`` over the simulation on a ManualClock, never started.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from chargepoint.config import parse
from chargepoint.supervisor.hardware import build_simulation
from chargepoint.supervisor.main import TICK_S, Supervisor
from hal.clock import ManualClock
from tests.unit.test_supervisor_station import charging


def supervisor(tmp_path: Path, *, exit_when_idle: bool = False) -> Supervisor:
    config = parse({"station": {"identity": "CP1", "state_dir": str(tmp_path), "max_current_a": 32},
                    "safety": {"orphan_grace_s": 120.0, "channel": str(tmp_path / "safety.sock")}}, "<test>")
    return Supervisor(config, build_simulation(config, ManualClock()), exit_when_idle=exit_when_idle)


def test_an_idle_supervisor_sleeps_until_its_figures_or_a_ping_are_due(tmp_path):
    s = supervisor(tmp_path)
    assert s._pause_s(100.0, math.inf, 100.9) == pytest.approx(0.9)  # no watchdog asked for
    assert s._pause_s(100.0, 100.4, 100.9) == pytest.approx(0.4)
    assert s._pause_s(100.0, 99.0, 100.9) == 0.0  # overdue: at once


def test_during_an_orphan_grace_and_with_a_loop_stopped_it_ticks(tmp_path):
    s = supervisor(tmp_path)
    charging(s.station, s.hardware.clock)
    assert s._pause_s(100.0, math.inf, 100.9) == pytest.approx(0.9)  # the daemon attached
    s.station.detach()
    assert s.station.orphan_left_s() is not None and s._pause_s(100.0, math.inf, 100.9) == TICK_S
    s.station.attach()
    s.loops_alive = False
    assert s._pause_s(100.0, math.inf, 100.9) == TICK_S


def test_an_on_demand_supervisor_without_its_daemon_ticks_to_exit_in_time(tmp_path):
    s = supervisor(tmp_path, exit_when_idle=True)
    assert not s.channel.controller_connected and s._pause_s(100.0, math.inf, 100.9) == TICK_S
