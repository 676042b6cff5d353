"""The core's variable monitors in simulated time: thresholds, deltas, periods, level, base, disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from chargepoint.config import parse
from chargepoint.core.monitoring import Base, Monitor, MonitorEvent, MonitorKind, Refusal, VariableMonitoring
from chargepoint.core.settings import Settings
from chargepoint.core.storage.store import Store
from hal.clock import ManualClock

POWER = "EVSE|1||Power|"
STATE = "Connector|1|1|AvailabilityState|"
NO_LIMITS: tuple[float | None, float | None] = (None, None)


class Values:
    """The values the adapter would read, set by the test."""

    def __init__(self) -> None:
        self.now: dict[str, str | None] = {POWER: "0.0", STATE: "Available"}
        self.busy = False

    def read(self, target: str) -> str | None:
        return self.now.get(target)

    def running(self, _evse: int | None) -> bool:
        return self.busy


def _monitor(kind: MonitorKind, value: float, target: str = POWER, severity: int = 5,
             **kw: object) -> Monitor:
    return Monitor(0, target, kind, value, severity, evse_id=1, **kw)  # type: ignore[arg-type]


def test_threshold_alerts_once_when_crossed_and_once_cleared() -> None:
    clock, values = ManualClock(), Values()
    monitoring = VariableMonitoring(clock)
    upper = monitoring.install(_monitor(MonitorKind.UPPER_THRESHOLD, 1000), values.read(POWER))
    lower = monitoring.install(_monitor(MonitorKind.LOWER_THRESHOLD, 10, severity=4), values.read(POWER))
    first = monitoring.evaluate(values.read, values.running)
    assert [(e.monitor.id, e.cleared) for e in first] == [(lower.id, False)]  # 0 W is below 10 W
    values.now[POWER] = "7200.5"
    events = monitoring.evaluate(values.read, values.running)
    assert [(e.monitor.id, e.value, e.cleared) for e in events] == [(upper.id, "7200.5", False),
                                                                    (lower.id, "7200.5", True)]
    assert monitoring.evaluate(values.read, values.running) == []  # still above: said once
    values.now[POWER] = "1000"  # at the threshold is not above it
    assert [(e.monitor.id, e.cleared) for e in monitoring.evaluate(values.read, values.running)] == [
        (upper.id, True)]


def test_delta_counts_from_the_value_when_set_and_from_each_report() -> None:
    clock, values = ManualClock(), Values()
    monitoring = VariableMonitoring(clock)
    values.now[POWER] = "100"
    numeric = monitoring.install(_monitor(MonitorKind.DELTA, 500), values.read(POWER))
    state = monitoring.install(_monitor(MonitorKind.DELTA, 1, target=STATE), values.read(STATE))
    values.now[POWER] = "550"
    assert monitoring.evaluate(values.read, values.running) == []  # moved 450 < 500
    values.now[POWER], values.now[STATE] = "650", "Occupied"
    events = monitoring.evaluate(values.read, values.running)
    assert [(e.monitor.id, e.value) for e in events] == [(numeric.id, "650"), (state.id, "Occupied")]
    values.now[POWER] = "1100"  # 450 from the last report
    assert monitoring.evaluate(values.read, values.running) == []


def test_periodic_every_value_seconds_and_clock_aligned_at_multiples() -> None:
    clock, values = ManualClock(start=0.0, wall_start=1_700_000_000.0), Values()
    monitoring = VariableMonitoring(clock)
    periodic = monitoring.install(_monitor(MonitorKind.PERIODIC, 10))
    aligned = monitoring.install(_monitor(MonitorKind.PERIODIC_CLOCK_ALIGNED, 900, severity=3))
    seen: list[tuple[int, float]] = []
    for _ in range(1000):
        seen += [(e.monitor.id, e.at) for e in monitoring.evaluate(values.read, values.running)]
        clock.advance(1.0)
    periodic_at = [at for mid, at in seen if mid == periodic.id]
    gaps = [b - a for a, b in zip(periodic_at, periodic_at[1:], strict=False)]
    assert gaps == [10.0] * (len(periodic_at) - 1)
    assert len(periodic_at) == 99
    assert [at % 900 for mid, at in seen if mid == aligned.id] == [0.0]


def test_level_transaction_flag_and_refusals() -> None:
    clock, values = ManualClock(), Values()
    monitoring = VariableMonitoring(clock)
    quiet = monitoring.install(_monitor(MonitorKind.UPPER_THRESHOLD, 10, severity=8))
    during = monitoring.install(_monitor(MonitorKind.UPPER_THRESHOLD, 10, severity=2, transaction=True))
    values.now[POWER] = "50"
    assert [e.monitor.id for e in monitoring.evaluate(values.read, values.running)] == [quiet.id]
    values.busy = True
    values.now[POWER] = "0"
    monitoring.evaluate(values.read, values.running)
    values.now[POWER] = "60"
    assert [e.monitor.id for e in monitoring.evaluate(values.read, values.running)] == [quiet.id, during.id]
    # Refusals: duplicate, ranges, unknown id, severity.
    same = _monitor(MonitorKind.UPPER_THRESHOLD, 99, severity=8)
    assert monitoring.refusal(same, NO_LIMITS) is Refusal.DUPLICATE
    too_high = _monitor(MonitorKind.UPPER_THRESHOLD, 2e4)
    assert monitoring.refusal(too_high, (0.0, 11040.0)) is Refusal.OUT_OF_RANGE
    assert monitoring.refusal(_monitor(MonitorKind.DELTA, -1), NO_LIMITS) is Refusal.OUT_OF_RANGE
    assert monitoring.refusal(_monitor(MonitorKind.PERIODIC, 0), NO_LIMITS) is Refusal.OUT_OF_RANGE
    assert monitoring.refusal(_monitor(MonitorKind.DELTA, 1, severity=10), NO_LIMITS) is Refusal.REJECTED
    unknown = Monitor(77, POWER, MonitorKind.DELTA, 1, 5)
    assert monitoring.refusal(unknown, NO_LIMITS) is Refusal.REJECTED
    replacing = Monitor(quiet.id, POWER, MonitorKind.UPPER_THRESHOLD, 20, 8)
    assert monitoring.refusal(replacing, NO_LIMITS) is None  # replacing itself is no duplicate


async def test_level_filters_and_base_and_monitors_survive_a_restart(tmp_path: Path) -> None:
    clock, values = ManualClock(), Values()
    store = await Store.open(tmp_path / "state")
    try:
        monitoring = VariableMonitoring(clock)
        await monitoring.attach(store)
        kept = monitoring.install(_monitor(MonitorKind.UPPER_THRESHOLD, 10, severity=6))
        monitoring.install(_monitor(MonitorKind.DELTA, 5, target=STATE, severity=1))
        await monitoring.save()
        assert await monitoring.set_level(5)
        assert not await monitoring.set_level(10)
        values.now[POWER] = "50"
        assert monitoring.evaluate(values.read, values.running) == []  # severity 6 is above level 5
        again = VariableMonitoring(clock)
        await again.attach(store)
        assert again.monitors == monitoring.monitors and again.level == 5 and again.base is Base.ALL
        assert (await again.clear([kept.id, 99])) == {kept.id: True, 99: False}
        await again.set_base(Base.FACTORY_DEFAULT)
        third = VariableMonitoring(clock)
        await third.attach(store)
        assert third.monitors == {} and third.base is Base.FACTORY_DEFAULT
    finally:
        await store.close()


def test_offline_events_are_held_by_severity_and_handed_over_first_at_the_next_connection() -> None:
    clock, values = ManualClock(), Values()
    settings = Settings(parse({"station": {"identity": "CP-1"}, "ocpp": {"csms_url": "ws://csms.example"}}))
    settings.set("monitoring_offline_severity", "3")
    monitoring = VariableMonitoring(clock, settings)
    severe = monitoring.install(_monitor(MonitorKind.DELTA, 1, target=STATE, severity=2), "Available")
    minor = monitoring.install(_monitor(MonitorKind.DELTA, 1, target=STATE, severity=7), "Available")
    sent: list[list[tuple[int, str]]] = []

    def emit(events: list[MonitorEvent]) -> None:
        sent.append([(e.monitor.id, e.value) for e in events])

    monitoring.connect(values.read, values.running, emit)
    monitoring.disconnect(emit)  # the connection is lost: the reader stays
    values.now[STATE] = "Occupied"
    monitoring.deliver(monitoring.evaluate(values.read, values.running))
    assert [(e.monitor.id, e.value) for e in monitoring.held] == [(severe.id, "Occupied")]
    values.now[STATE] = "Available"
    monitoring.deliver(monitoring.evaluate(values.read, values.running))
    assert sent == []
    monitoring.connect(values.read, values.running, emit)
    assert sent == [[(severe.id, "Occupied"), (severe.id, "Available")]] and not monitoring.held
    values.now[STATE] = "Faulted"
    monitoring.deliver(monitoring.evaluate(values.read, values.running))
    assert sent[-1] == [(severe.id, "Faulted"), (minor.id, "Faulted")]  # connected: every event


async def test_a_database_that_cannot_be_written_leaves_the_monitors_in_force(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = await Store.open(tmp_path / "state")
    try:
        monitoring = VariableMonitoring(ManualClock())
        await monitoring.attach(store)
        store.failure = "disk full"  # as after a failed write: every later one is refused
        kept = monitoring.install(_monitor(MonitorKind.DELTA, 5))
        await monitoring.save()
        assert monitoring.monitors == {kept.id: kept}
        assert "variable monitors not kept on disk" in caplog.text
    finally:
        store.failure = None
        await store.close()
