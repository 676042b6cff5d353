"""Small parts of the dashboard and metrics: the OCPP message counter, the chart, the tick histogram."""

from __future__ import annotations

from chargepoint.safety.ticktimes import BOUNDS, TickTimes
from chargepoint.web.feed import CHART_POINTS, Chart
from chargepoint.web.ocppstats import MAX_PENDING, MessageCounter


def test_calls_are_counted_by_direction_action_and_result():
    counter = MessageCounter()
    counter.frame("out", '[2,"a1","BootNotification",{"chargePointVendor":"x"}]')
    counter.frame("in", '[3,"a1",{"status":"Accepted"}]')
    counter.frame("in", '[2, "c7", "GetConfiguration", {}]')
    counter.frame("out", '[4,"c7","NotImplemented","no",{}]')
    counter.frame("out", b'[2,"a2","Heartbeat",{}]')
    counter.frame("in", '[3,"unknown-id",{}]')  # an answer to nothing: ignored
    counter.frame("in", "not json at all")
    assert counter.counts == {("sent", "BootNotification", "ok"): 1,
                              ("received", "GetConfiguration", "NotImplemented"): 1}
    counter.new_connection()
    assert counter.counts[("sent", "Heartbeat", "no_answer")] == 1
    for n in range(MAX_PENDING * 2):
        counter.frame("in", f'[2,"x{n}","Reset",{{}}]')
    counter.new_connection()
    assert counter.counts[("received", "Reset", "no_answer")] == MAX_PENDING


def connector(local_id: str | None, power: float = 7000.0) -> dict:
    session = {"transaction": {"local_id": local_id}} if local_id else None
    return {"session": session, "meter": {"power_w": power, "currents_a": [10.0, 10.0, 10.0]}}


def test_chart_keeps_the_running_session_and_thins_itself_to_fit():
    chart = Chart()
    assert chart.sample(connector(None), 0.0) is None and chart.points == []
    for t in range(CHART_POINTS * 3):
        chart.sample(connector("tx1"), float(t))
    assert len(chart.points) < CHART_POINTS
    assert chart.points[0][0] == 0.0 and chart.points[-1][0] >= CHART_POINTS * 3 - chart.stride
    chart.sample(connector("tx2", 3000.0), 9999.0)  # a new session starts a new chart
    assert chart.local_id == "tx2" and chart.points == [[9999.0, 3000.0, [10.0, 10.0, 10.0]]]


def test_tick_histogram_buckets():
    times = TickTimes()
    for seconds in (0.0001, 0.0002, 0.004, 2.0):
        times.observe(seconds)
    counts, total = times.snapshot()
    assert len(counts) == len(BOUNDS) + 1
    assert counts[0] == 2  # le 0.0002 includes its bound
    assert counts[BOUNDS.index(0.005)] == 1 and counts[-1] == 1
    assert abs(total - 2.0043) < 1e-9
    # What the supervisor's status shows: the bucket bound of the quantile, the longest step for the last.
    assert times.quantile_bound(0.5) == 0.0002 and times.quantile_bound(0.75) == 0.005
    assert times.quantile_bound(1.0) == times.max == 2.0 and TickTimes().quantile_bound(0.99) is None
