"""Limits, outbox, settings, measurands and backoff: the small parts the station leans on."""

from __future__ import annotations

import asyncio
import random

import pytest

from chargepoint.config import parse
from chargepoint.connection import Backoff, endpoint
from chargepoint.core.events import (
    IdToken,
    MeterSample,
    ReadingContext,
    StopReason,
    TransactionStarted,
    TransactionStopped,
)
from chargepoint.core.settings import SetResult, Settings
from chargepoint.core.storage.outbox import Outbox
from chargepoint.protocol.common.measurands import format_number, values_for
from chargepoint.protocol.v16.keys import KeyCatalogue
from chargepoint.safety.limits import LimitClaims
from hal.interfaces import MeterReading


def test_limits_resolve_to_the_minimum_and_name_the_binding_claim():
    limits = LimitClaims()
    assert limits.resolve().binding == ""
    limits.set("station", 32)
    limits.set("cable", 20)
    limits.set("operator", 25)
    assert (limits.resolve().amps, limits.resolve().binding) == (20, "cable")
    limits.set("cable", None)  # each source clears only its own entry
    assert (limits.resolve().amps, limits.resolve().binding) == (25, "operator")
    with pytest.raises(ValueError):
        limits.set("operator", -1)


def reading(wh: float) -> MeterReading:
    return MeterReading(timestamp=1.0, energy_import_wh=wh, power_w=7360.0,
                        currents_a=(16.0, 16.0, None), voltages_v=(230.0, 231.0, None),
                        frequency_hz=50.0, power_factor=0.99)


async def test_outbox_keeps_order_until_acknowledged_and_maps_ids():
    box = Outbox()
    start = await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 10.0, 1.0))
    sample = await box.put(MeterSample(1, "L1", reading(20.0), ReadingContext.PERIODIC))
    assert (await box.wait_head()) is start
    with pytest.raises(RuntimeError):
        await box.ack(sample)  # only the head leaves
    await box.ack(start, remote_id="42")
    assert box.remote_id("L1") == "42" and box.local_id("42") == "L1"
    assert box.head() is sample
    await box.ack(sample)
    waiter = asyncio.ensure_future(box.wait_head())
    await asyncio.sleep(0)
    assert not waiter.done()
    stop = await box.put(TransactionStopped(1, "L1", 30.0, 2.0, StopReason.LOCAL))
    assert (await asyncio.wait_for(waiter, 1)) is stop
    box.forget("L1")
    assert box.remote_id("L1") == "42", "kept while a message of the transaction is queued"
    await box.ack(stop)
    box.forget("L1")
    assert box.remote_id("L1") is None


def settings() -> Settings:
    return Settings(parse({"station": {"identity": "X"}, "ocpp": {"csms_url": "ws://h"}}))


@pytest.mark.parametrize(
    ("key", "text", "result", "value"),
    [
        ("HeartbeatInterval", "60", "Accepted", 60),
        ("HeartbeatInterval", "0", "Rejected", 300),
        ("HeartbeatInterval", "sixty", "Rejected", 300),
        ("AuthorizeRemoteTxRequests", "TRUE", "Accepted", True),
        ("AuthorizeRemoteTxRequests", "yes", "Rejected", False),
        ("MeterValuesSampledData", "Voltage,Frequency", "Accepted", "Voltage,Frequency"),
        ("MeterValuesSampledData", "Voltage,Bogus", "Rejected",
         "Energy.Active.Import.Register,Power.Active.Import,Current.Import"),
        ("NumberOfConnectors", "2", "Rejected", 1),
        ("NoSuchKey", "1", "NotSupported", None),
    ],
)
def test_16_keys_are_validated_on_every_write(key, text, result, value):
    keys = KeyCatalogue(settings(), 1)
    assert keys.change(key, text) == result
    if value is not None:
        assert keys.typed_value(key) == value


def test_a_16_key_and_the_neutral_setting_are_one_value():
    store = settings()
    keys = KeyCatalogue(store, 1)
    assert store.set("sample_interval_s", "25") == SetResult.ACCEPTED
    assert keys.info("MeterValueSampleInterval").value == "25"
    assert keys.change("MeterValueSampleInterval", "35") == "Accepted"
    assert store.get("sample_interval_s") == 35
    assert keys.info("AuthorizationKey").value is None, "a password is never read back"
    assert keys.refusal("HeartbeatInterval", "0") == "must be a whole number from 1 to 86400"


def test_settings_notify_listeners_and_render_as_text():
    store = settings()
    seen = []
    store.listeners.append(lambda name, value: seen.append((name, value)))
    store.set("sample_interval_s", "15")
    assert seen == [("sample_interval_s", 15)]
    assert store.as_text("authorize_remote_start") == "false"
    assert store.current.sampled_measurands[0] == "Energy.Active.Import.Register"
    assert store.set("heartbeat_interval_s", "0") == SetResult.REJECTED and len(seen) == 1


def test_values_for_selected_measurands_skips_what_the_meter_lacks():
    values = values_for(reading(1234.5), ["Energy.Active.Import.Register", "Current.Import", "Voltage",
                                          "Energy.Active.Export.Register", "Current.Offered"])
    assert [(v.measurand, v.phase, v.value, v.unit) for v in values] == [
        ("Energy.Active.Import.Register", None, 1234.5, "Wh"),
        ("Current.Import", "L1", 16.0, "A"),
        ("Current.Import", "L2", 16.0, "A"),
        ("Voltage", "L1-N", 230.0, "V"),
        ("Voltage", "L2-N", 231.0, "V"),
    ]
    assert [v.value for v in values_for(reading(1), ["Current.Offered"], offered_a=13.0)] == [13.0]


@pytest.mark.parametrize(("number", "text"), [(1234.5, "1234.5"), (7.0, "7"), (0.1234, "0.123"),
                                              (-0.0001, "0"), (0, "0")])
def test_format_number(number, text):
    assert format_number(number) == text


def test_backoff_grows_exponentially_within_bounds_and_resets():
    backoff = Backoff(1.0, 30.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(10)]
    assert all(1.0 <= d <= 30.0 for d in delays)
    ceilings = [min(30.0, 2.0**n) for n in range(10)]
    assert all(d <= c for d, c in zip(delays, ceilings, strict=False))
    assert max(delays[6:]) > 8, "later attempts wait longer"
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_endpoint_appends_identity():
    assert endpoint("ws://h:9000/ocpp/", "CP-1") == "ws://h:9000/ocpp/CP-1"
    assert endpoint("wss://h", "CP-1") == "wss://h/CP-1"
