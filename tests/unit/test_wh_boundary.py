"""Whole Wh at the ends of 1.6 sessions: consecutive sessions never share a Wh, and none is lost.

1.6 bills ``meterStop - meterStart`` in whole Wh while samples carry decimals. Both ends follow
one rule (``whole_wh``), so a session that ends at a reading and the next one that starts at the
same reading meet at the same whole Wh, whatever the reading's fraction.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chargepoint.config import parse
from chargepoint.core.events import (
    IdToken,
    MeterSample,
    ReadingContext,
    StopReason,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.settings import Settings
from chargepoint.core.storage.outbox import Entry, Outbox
from chargepoint.core.transactions import whole_wh
from chargepoint.protocol.common.measurands import format_number
from chargepoint.protocol.v16.tx_messages import TransactionMessages
from hal.interfaces import MeterReading

#: Meter readings (Wh) where the fraction matters: a half, just below a half, just below a whole,
#: a whole, float noise either side of a whole (a kWh register times 1000).
FRACTIONS = [0.5, 0.49, 0.999, 0.0, 0.0004, 0.9996, 0.51]


def translator(tmp_path: Path) -> TransactionMessages:
    """The 1.6 translation of queued events (no station, no connection: only translation is used)."""
    config = parse({"station": {"identity": "CP-WH", "state_dir": str(tmp_path)},
                    "ocpp": {"csms_url": "ws://csms.invalid/ocpp"}}, "<test>")
    return TransactionMessages(None, Outbox(), Settings(config), None)  # type: ignore[arg-type]


def session(adapter: TransactionMessages, local_id: str, start_wh: float, stop_wh: float,
            samples: list[float]) -> tuple[int, int, list[float]]:
    """meterStart, meterStop and the sampled energy values (as sent) of one session."""
    adapter.outbox._remote_ids[local_id] = str(len(adapter.outbox._remote_ids) + 1)
    start = adapter.translate(Entry(1, TransactionStarted(1, local_id, IdToken("TAG"), start_wh, 1.0)))
    sent: list[float] = []
    for wh in samples:
        sample = MeterSample(1, local_id, MeterReading(timestamp=2.0, energy_import_wh=wh),
                             ReadingContext.PERIODIC)
        values = adapter.translate(Entry(2, sample)).meter_value[0]["sampledValue"]
        sent += [float(v["value"]) for v in values if v["measurand"] == "Energy.Active.Import.Register"]
    stop = adapter.translate(Entry(3, TransactionStopped(1, local_id, stop_wh, 3.0, StopReason.LOCAL,
                                                          IdToken("TAG"))))
    return start.meter_start, stop.meter_stop, sent


@pytest.mark.parametrize("fraction", FRACTIONS)
def test_consecutive_sessions_meet_at_the_same_whole_wh(tmp_path: Path, fraction: float) -> None:
    adapter = translator(tmp_path)
    first, boundary, last = 1000.0 + fraction, 1200.0 + fraction, 1400.0 + fraction
    start_a, stop_a, samples_a = session(adapter, "A", first, boundary, [1100.0 + fraction, boundary])
    start_b, stop_b, samples_b = session(adapter, "B", boundary, last, [boundary, 1300.0 + fraction])
    assert stop_a == start_b, f"{boundary} Wh: session A ends at {stop_a}, B starts at {start_b}"
    # no Wh counted twice, none lost: the bills add up to the meter's advance in whole Wh
    assert (stop_a - start_a) + (stop_b - start_b) == whole_wh(last) - whole_wh(first)
    # a stop is never below a sample the CSMS was sent
    assert stop_a >= max(samples_a) and stop_b >= max(samples_b)


def test_a_later_start_is_never_below_the_stop_before_it() -> None:
    """The rule never decreases: a start made from the same or a later reading is at least the stop."""
    readings = sorted(1000 + whole / 7 + fraction for whole in range(20) for fraction in FRACTIONS)
    for before, after in zip(readings, readings[1:], strict=False):
        assert whole_wh(before) <= whole_wh(after), (before, after)
    assert [whole_wh(1000 + f) for f in FRACTIONS] == [1001, 1001, 1001, 1000, 1000, 1001, 1001]
    assert whole_wh(12.345 * 1000) == 12345  # a kWh register's float noise is not a Wh
    assert all(whole_wh(wh) >= float(format_number(wh)) for wh in readings)
