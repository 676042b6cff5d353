"""The operator's display messages in the core: rules, what shows, the store, time on a ManualClock.

A real state database in a temporary directory, a ManualClock the test moves,
the simulation's display (``hal.display.LogDisplay``) and a small stand-in for
the station's state and transactions.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from chargepoint.config import parse
from chargepoint.core.display_messages import (
    Capabilities,
    DisplayMessage,
    DisplayMessages,
    Format,
    Priority,
    SetResult,
    State,
)
from chargepoint.core.events import Activity, StatusChanged
from chargepoint.core.settings import Settings
from chargepoint.core.storage.store import Store
from hal.clock import ManualClock
from hal.display import LogDisplay


def _settings(tmp_path: Path) -> Settings:
    return Settings(parse({"station": {"identity": "CP-DISPLAY", "state_dir": str(tmp_path)},
                           "ocpp": {"csms_url": "ws://csms.invalid/ocpp"}}, "<test>"))


class FakeStation:
    """The parts of ``Station`` the messages follow: statuses and running transactions."""

    def __init__(self) -> None:
        self.status_listeners: list[Callable[[StatusChanged], None]] = []
        self.connectors = {1: None}
        self.status = StatusChanged(1, 0.0)
        self.open: list[str] = []

    def status_of(self, evse_id: int) -> StatusChanged:
        return self.status

    def active_transactions(self) -> list[tuple[int, SimpleNamespace]]:
        return [(1, SimpleNamespace(local_id=tx, stopping=False)) for tx in self.open]

    def changed(self, **facts: object) -> None:
        self.status = StatusChanged(1, 0.0, **facts)  # type: ignore[arg-type]
        for listener in list(self.status_listeners):
            listener(self.status)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await Store.open(tmp_path)
    yield store
    await store.close()


def _msg(mid: int, priority: Priority = Priority.NORMAL_CYCLE, **kw: object) -> DisplayMessage:
    return DisplayMessage(mid, priority, kw.pop("content", f"message {mid}"), **kw)  # type: ignore[arg-type]


async def _settle(display: LogDisplay, texts: list[str]) -> None:
    for _ in range(200):
        if [t.text for t in display.shown] == texts:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"the display shows {[t.text for t in display.shown]}, not {texts}")


async def test_set_answers_each_refusal_and_replaces_by_id(tmp_path: Path, store: Store) -> None:
    settings = _settings(tmp_path)
    caps = Capabilities(priorities=frozenset({Priority.IN_FRONT, Priority.NORMAL_CYCLE}),
                        states=frozenset({State.IDLE, State.CHARGING}), max_messages=2)
    engine = DisplayMessages(ManualClock(), settings, capabilities=caps)
    await engine.attach(store)
    assert await engine.set(_msg(1)) == SetResult.ACCEPTED
    assert await engine.set(_msg(2, Priority.ALWAYS_FRONT)) == SetResult.UNSUPPORTED_PRIORITY
    assert await engine.set(_msg(2, format=Format.HTML)) == SetResult.UNSUPPORTED_FORMAT
    assert await engine.set(_msg(2, state=State.FAULTED)) == SetResult.UNSUPPORTED_STATE
    assert await engine.set(_msg(2, transaction_id="tx-none")) == SetResult.UNKNOWN_TRANSACTION
    assert await engine.set(_msg(2, end=engine.clock.time() - 1)) == SetResult.REJECTED, "already over"
    assert await engine.set(_msg(2, state=State.CHARGING)) == SetResult.ACCEPTED
    assert await engine.set(_msg(3)) == SetResult.REJECTED, "full (two at most)"
    assert await engine.set(_msg(1, content="replaced")) == SetResult.ACCEPTED, "a held id replaces"
    assert [m.content for m in engine.all()] == ["replaced", "message 2"]
    settings.set("display_messages_enabled", "false")
    assert await engine.set(_msg(1)) == SetResult.REJECTED, "disabled"
    assert engine.query(state=State.CHARGING)[0].id == 2
    assert engine.query(ids=[1], priority=Priority.IN_FRONT) == []
    assert await engine.clear(2) and not await engine.clear(2)


async def test_messages_survive_a_restart_and_one_that_ran_out_meanwhile_is_gone(
        tmp_path: Path) -> None:
    clock = ManualClock()
    settings = _settings(tmp_path)
    store = await Store.open(tmp_path)
    engine = DisplayMessages(clock, settings)
    await engine.attach(store)
    kept = _msg(5, Priority.IN_FRONT, language="en", state=State.IDLE, start=clock.time() + 10,
                display={"name": "Display"})
    await engine.set(kept)
    await engine.set(_msg(6, end=clock.time() + 60))
    await engine.set(_msg(7))
    assert await engine.clear(7)
    await store.close()

    clock.advance(120)  # message 6 ends while the station is stopped
    store = await Store.open(tmp_path)
    try:
        again = DisplayMessages(clock, settings)
        await again.attach(store)
        assert again.all() == [dataclass_with_seq(kept, 1)]
        await store.call(lambda: None)  # the deletion of 6 queued first
        rows = await store.call(lambda: store.db.execute("SELECT id FROM display_messages").fetchall())
        assert rows == [(5,)]
    finally:
        await store.close()


def dataclass_with_seq(m: DisplayMessage, seq: int) -> DisplayMessage:
    return dataclasses.replace(m, seq=seq)


async def test_the_window_on_the_injected_clock_shows_then_removes(tmp_path: Path, store: Store) -> None:
    clock = ManualClock()
    display = LogDisplay()
    engine = DisplayMessages(clock, _settings(tmp_path), display)
    await engine.attach(store)
    engine.start()
    try:
        now = clock.time()
        await engine.set(_msg(1, start=now + 60, end=now + 120, content="later"))
        await engine.set(_msg(2, content="now"))
        await _settle(display, ["now"])
        clock.advance(60)
        await _settle(display, ["later", "now"])  # in the order they were set
        clock.advance(60)
        await _settle(display, ["now"])
        assert [m.id for m in engine.all()] == [2], "removed once its end passed"
        await store.call(lambda: None)
        rows = await store.call(lambda: store.db.execute("SELECT id FROM display_messages").fetchall())
        assert rows == [(2,)]
    finally:
        await engine.close()


async def test_always_front_alone_the_newest_then_in_front_then_the_cycle_by_state(
        tmp_path: Path, store: Store) -> None:
    clock = ManualClock()
    display = LogDisplay()
    station = FakeStation()
    engine = DisplayMessages(clock, _settings(tmp_path), display)
    await engine.attach(store)
    engine.start(station)
    try:
        await engine.set(_msg(1, content="cycle"))
        await engine.set(_msg(2, content="cycle when charging", state=State.CHARGING))
        await _settle(display, ["cycle"])
        station.changed(activity=Activity.CHARGING, plugged=True)
        await _settle(display, ["cycle", "cycle when charging"])
        await engine.set(_msg(9, Priority.IN_FRONT, content="front A"))
        await engine.set(_msg(8, Priority.IN_FRONT, content="front B"))
        await _settle(display, ["front A", "front B"])
        await engine.set(_msg(20, Priority.ALWAYS_FRONT, content="first always"))
        await engine.set(_msg(10, Priority.ALWAYS_FRONT, content="second always"))
        await _settle(display, ["second always"])
        assert {m.id for m in engine.query(priority=Priority.ALWAYS_FRONT)} == {10, 20}, "both kept"
        station.changed(fault="rcd_trip")
        assert engine.state is State.FAULTED
        station.changed(operative=False)
        assert engine.state is State.UNAVAILABLE
    finally:
        await engine.close()


async def test_a_transaction_message_goes_when_its_transaction_ends(tmp_path: Path, store: Store) -> None:
    clock = ManualClock()
    display = LogDisplay()
    station = FakeStation()
    station.open = ["tx-1"]
    engine = DisplayMessages(clock, _settings(tmp_path), display)
    await engine.attach(store)
    engine.start(station)
    engine.recovered()
    try:
        assert await engine.set(_msg(3, transaction_id="tx-1", content="for you")) == SetResult.ACCEPTED
        await _settle(display, ["for you"])
        station.open = []
        station.changed(activity=Activity.FINISHING, plugged=True)
        await _settle(display, [])
        assert engine.all() == []
    finally:
        await engine.close()
