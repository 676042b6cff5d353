"""The outbox against a real SQLite file: what a message was sent as, and a store that fails."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import re
from typing import Any

import ocpp.v16
import pytest

from chargepoint.config import parse
from chargepoint.core.events import IdToken, MeterSample, ReadingContext, TransactionStarted
from chargepoint.core.settings import SetResult, Settings
from chargepoint.core.storage.outbox import Outbox, Sent
from chargepoint.core.storage.store import Store
from chargepoint.protocol.common.delivery import Delivery
from chargepoint.protocol.common.peer import RobustPeer
from chargepoint.protocol.v16.tx_messages import TransactionMessages
from chargepoint.protocol.v201.peer import RobustV201Peer
from chargepoint.protocol.v201.tx_events import TransactionEvents
from hal.clock import ManualClock
from hal.interfaces import MeterReading


async def reopen(path) -> tuple[Store, Outbox]:
    store = await Store.open(path)
    box = Outbox()
    await box.attach(store)
    return store, box


async def test_an_answer_that_cannot_be_recorded_is_one_line_and_holds_the_sender(tmp_path, caplog):
    """The store fails (here: its connection is gone) between a message's answer and its record:
    one line says so, no asyncio "exception was never retrieved" traceback, and whoever awaits the
    record waits for ever (the daemon stops; nothing more goes out)."""
    store, box = await reopen(tmp_path)
    start = await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 10.0, 1.0))
    await store.call(store.db.close)
    caplog.set_level(logging.INFO)
    committed = box.acknowledge(start, remote_id="7")
    for _ in range(200):  # the store's thread fails the write; its outcome reaches the loop
        await asyncio.sleep(0.005)
        if store.failure is not None and any("not recorded" in r.getMessage() for r in caplog.records):
            break
    assert not committed.done(), "the sender must not go on to the next message"
    del committed
    gc.collect()
    await asyncio.sleep(0)
    lines = [r for r in caplog.records if r.name.startswith("chargepoint.core.storage.outbox")]
    assert len(lines) == 1 and lines[0].exc_info is None, [r.getMessage() for r in lines]
    assert not any("never retrieved" in r.getMessage() for r in caplog.records)
    store._db = None  # already closed
    await store.close()


# ------------------------------------------------------------------ resends, byte for byte
#: A CALL frame: its id, action and payload text.
CALL = re.compile(r'^\[2,("[^"]*"),"([A-Za-z]+)",(.*)\]$', re.DOTALL)
#: What the test CSMS answers, per action.
ANSWERS = {"StartTransaction": {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}}


class Link:
    """The station's end of one WebSocket connection: keeps every frame sent; the CSMS's side
    answers each CALL at once, except the ones numbered in ``silent`` (0 = the first)."""

    def __init__(self, silent: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        self.frames: list[str] = []
        self.silent = silent
        self.peer: Any = None

    async def send(self, frame: str) -> None:
        self.frames.append(frame)
        if len(self.frames) - 1 in self.silent:
            return
        unique_id, action, _ = CALL.match(frame).groups()  # type: ignore[union-attr]
        answer = f"[3,{unique_id},{json.dumps(ANSWERS.get(action, {}))}]"
        asyncio.get_running_loop().call_soon(lambda: asyncio.ensure_future(self.peer.route_message(answer)))

    def payloads(self) -> list[str]:
        return [CALL.match(frame).group(3) for frame in self.frames]  # type: ignore[union-attr]


class Peer16(RobustPeer, ocpp.v16.ChargePoint):
    call_results = ocpp.v16.call_result


class Station:
    """What the senders tell the station about an answer (not looked at here)."""

    class authorization:  # noqa: N801
        @staticmethod
        async def remember(*_: object) -> None:
            return None

    @staticmethod
    def transaction_authorized(*_: object) -> None:
        return None


def connect(version: str, box: Outbox, settings: Settings, link: Link, connected_at: float) -> asyncio.Task:
    """One connection's delivery of transaction messages, draining ``box`` over ``link``."""
    spawn = asyncio.ensure_future
    if version == "2.0.1":
        peer: Any = RobustV201Peer("CP-RESEND", link, None, 30)  # type: ignore[arg-type]
        words: Any = TransactionEvents(Station(), box, settings, connected_at, spawn)  # type: ignore[arg-type]
    else:
        peer = Peer16("CP-RESEND", link, response_timeout=30)
        words = TransactionMessages(Station(), box, settings, spawn)  # type: ignore[arg-type]

    async def call(request: Any, *, built_here: bool = True, after_send: Any = None) -> Any:
        return await peer.call_built(request, after_send)

    link.peer = peer
    return asyncio.ensure_future(Delivery(box, settings, ManualClock(), words, call).run())


async def until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.002)
    raise AssertionError("not within 1 s")


def reading(wh: float, at: float) -> MeterReading:
    return MeterReading(timestamp=at, energy_import_wh=wh, power_w=7360.0, currents_a=(32.0,),
                        voltages_v=(230.0,))


@pytest.mark.parametrize("version", ["2.0.1", "1.6"])
@pytest.mark.parametrize("unanswered", [0, 1, 2],
                         ids=["head-from-before", "made-with-the-one-before", "made-at-put"])
@pytest.mark.parametrize("restart", [True, False], ids=["restart", "link-down"])
async def test_a_resend_is_the_first_send_byte_for_byte(tmp_path, version, unanswered, restart):
    """A message sent and not answered (the daemon killed, or the link lost) is sent again as the
    same text, although the link's state (2.0.1's offline flag: the new connection opened after the
    event) and a setting it was made from (the sampled measurands) changed meanwhile. Each way a
    message gets its wire form is covered: the head waiting from before the connection, the next
    message made while the one before it is on the wire (2.0.1) or with its answer (1.6: it needs
    the transaction id), a message made as it was queued."""
    config = parse({"station": {"identity": "CP-RESEND", "state_dir": str(tmp_path)},
                    "ocpp": {"csms_url": "ws://csms.invalid/ocpp"}}, "<test>")
    settings = Settings(config)
    store, box = await reopen(tmp_path)
    await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 1000.5, 100.0))
    await box.put(MeterSample(1, "L1", reading(1100.25, 110.0), ReadingContext.PERIODIC, 32.0))
    first = Link(silent={unanswered})
    sender = connect(version, box, settings, first, connected_at=95.0)
    if unanswered == 2:  # the next sample is queued while the link is idle: made as it is queued
        await until(lambda: len(box) == 0)
        await box.put(MeterSample(1, "L1", reading(1200.75, 120.0), ReadingContext.PERIODIC, 32.0))
    await until(lambda: len(first.frames) == unanswered + 1)
    sender.cancel()  # killed, or the link lost, before the answer
    await asyncio.gather(sender, return_exceptions=True)
    if restart:
        await store.close()
        store, box = await reopen(tmp_path)
    assert settings.set("sampled_measurands", "Energy.Active.Import.Register") is SetResult.ACCEPTED
    second = Link()
    sender = connect(version, box, settings, second, connected_at=1000.0)
    await until(lambda: len(box) == 0)
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    assert second.payloads()[0].encode() == first.payloads()[unanswered].encode()
    assert second.frames[0] != first.frames[unanswered], "a new CALL, with a message id of its own"
    await store.close()


async def test_a_wire_form_made_again_for_another_version_is_the_one_kept(tmp_path):
    """The station changed its OCPP version between a send and the resend: the message is made
    again in the new version's form, and that form is what survives the next restart."""
    store, box = await reopen(tmp_path)
    start = await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 10.0, 1.0))
    await box.record_sent(start, Sent("ocpp1.6", "StartTransaction", '{"connectorId":1}'))
    await box.record_sent(start, Sent("ocpp2.0.1", "TransactionEvent", '{"seqNo":0}'))
    await store.close()
    store, box = await reopen(tmp_path)
    head = box.head()
    assert head is not None and head.event == start.event
    assert box.sent(head, "ocpp1.6") is None
    assert box.sent(head, "ocpp2.0.1") == Sent("ocpp2.0.1", "TransactionEvent", '{"seqNo":0}')
    await store.close()


async def test_201_messages_made_ahead_are_numbered_as_after_the_answer_before_them(tmp_path):
    """2.0.1 makes the next TransactionEvent while the one before is on the wire (the delivery
    loop every version shares): its seqNo counts the one in flight as answered, so a backlog goes
    out numbered 0..n without a gap or a repeat."""
    config = parse({"station": {"identity": "CP-AHEAD", "state_dir": str(tmp_path)},
                    "ocpp": {"csms_url": "ws://csms.invalid/ocpp"}}, "<test>")
    settings = Settings(config)
    store, box = await reopen(tmp_path)
    await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 1000.0, 100.0))
    for n in range(4):
        await box.put(MeterSample(1, "L1", reading(1100.0 + n, 110.0 + n), ReadingContext.PERIODIC, 32.0))
    made_ahead: list[int] = []
    real_wire_form = TransactionEvents.wire_form

    def spying(self: TransactionEvents, entry: Any, in_flight: Any = None) -> Sent:
        if in_flight is not None:
            made_ahead.append(entry.seq)
        return real_wire_form(self, entry, in_flight)

    TransactionEvents.wire_form = spying  # type: ignore[method-assign]
    try:
        link = Link()
        sender = connect("2.0.1", box, settings, link, connected_at=95.0)
        await until(lambda: len(box) == 0)
        sender.cancel()
        await asyncio.gather(sender, return_exceptions=True)
    finally:
        TransactionEvents.wire_form = real_wire_form  # type: ignore[method-assign]
    assert [json.loads(p)["seqNo"] for p in link.payloads()] == [0, 1, 2, 3, 4]
    assert made_ahead, "no message was made while the one before was on the wire"
    await store.close()


# ------------------------------------------------------- the next one goes while the answer commits
class WatchedLink(Link):
    """A link that looks at the state database at the moment each CALL goes out (what a process
    killed right then would find) and can hold the CSMS's answer to one CALL until told."""

    def __init__(self, path: Any, held: int) -> None:
        super().__init__()
        self.path = path
        self.held = held
        self.release = asyncio.Event()
        self.on_disk_at_send: list[dict[int, str | None]] = []

    async def send(self, frame: str) -> None:
        self.on_disk_at_send.append(stored_forms(self.path))
        if len(self.frames) == self.held:
            self.frames.append(frame)
            unique_id, action, _ = CALL.match(frame).groups()  # type: ignore[union-attr]
            answer = f"[3,{unique_id},{json.dumps(ANSWERS.get(action, {}))}]"

            async def answer_when_released() -> None:
                await self.release.wait()
                await self.peer.route_message(answer)

            asyncio.ensure_future(answer_when_released())
            return
        await super().send(frame)


def stored_forms(path: Any) -> dict[int, str | None]:
    """Queued message -> the payload text of its stored wire form (None: none yet), read by a
    connection of its own."""
    import sqlite3

    db = sqlite3.connect(path / "chargepoint.sqlite")
    try:
        rows = db.execute("SELECT seq, event FROM outbox ORDER BY seq").fetchall()
    finally:
        db.close()
    return {seq: (json.loads(text).get("sent") or {}).get("payload") for seq, text in rows}


@pytest.mark.parametrize("version", ["2.0.1", "1.6"])
async def test_the_next_message_goes_while_the_answer_commits_a_kill_resends_two(tmp_path, version):
    """The delivery loop sends the next queued message as soon as the current one is answered,
    while that answer's commit runs; the message after it waits for the commit. At every send the
    database holds the message's wire form as sent (a resend is byte for byte) and at most one
    message that the CSMS has already answered (a kill resends at most two)."""
    config = parse({"station": {"identity": "CP-AHEAD", "state_dir": str(tmp_path)},
                    "ocpp": {"csms_url": "ws://csms.invalid/ocpp"}}, "<test>")
    settings = Settings(config)
    store, box = await reopen(tmp_path)
    start = await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 1000.0, 100.0))
    await box.ack(start, remote_id="7")  # the start was answered on an earlier connection
    samples = [await box.put(MeterSample(1, "L1", reading(1100.0 + n, 110.0 + n), ReadingContext.PERIODIC,
                                         32.0)) for n in range(5)]
    seqs = [entry.seq for entry in samples]
    link = WatchedLink(tmp_path, held=1)
    sender = connect(version, box, settings, link, connected_at=95.0)
    # The second message is on the wire, unanswered; the third's form is made and committed meanwhile.
    await until(lambda: len(link.frames) == 2 and stored_forms(tmp_path).get(seqs[2]) is not None)
    gate, entered = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def hold() -> None:  # the store's thread is busy (a slow card) until the gate opens
        loop.call_soon_threadsafe(entered.set)
        asyncio.run_coroutine_threadsafe(gate.wait(), loop).result()

    store.submit(hold)
    await entered.wait()
    link.release.set()  # the second is answered; its answer cannot commit while the store is held
    await until(lambda: len(link.frames) == 3)
    assert seqs[1] in stored_forms(tmp_path), "the third went out before the second's answer committed"
    for _ in range(50):
        await asyncio.sleep(0)
    assert len(link.frames) == 3, "the fourth must wait for the second's answer to be on disk"
    gate.set()
    await until(lambda: len(box) == 0)
    sender.cancel()
    await asyncio.gather(sender, return_exceptions=True)
    await store.close()

    assert len(link.frames) == len(samples)
    for sent_index, (seq, on_disk) in enumerate(zip(seqs, link.on_disk_at_send, strict=True)):
        assert on_disk.get(seq) == link.payloads()[sent_index], f"{seq} was sent before its form was stored"
        answered_but_stored = [s for s in on_disk if s < seq]
        assert len(answered_but_stored) <= 1, f"sending {seq}, answers unrecorded: {answered_but_stored}"


class BrokenLink(Link):
    """A link that breaks as the CALL numbered ``breaks_at`` (0 = the first) is sent."""

    def __init__(self, breaks_at: int) -> None:
        super().__init__()
        self.breaks_at = breaks_at

    async def send(self, frame: str) -> None:
        if len(self.frames) == self.breaks_at:
            raise ConnectionError("the link went down")
        await super().send(frame)


@pytest.mark.parametrize("version", ["2.0.1", "1.6"])
async def test_an_answer_waiting_for_the_next_send_is_recorded_when_the_link_breaks(tmp_path, version):
    """An answer is written with the next message's send; when that send fails (the link is down)
    it is written all the same, so the answered message is not sent again after a restart."""
    config = parse({"station": {"identity": "CP-BROKEN", "state_dir": str(tmp_path)},
                    "ocpp": {"csms_url": "ws://csms.invalid/ocpp"}}, "<test>")
    settings = Settings(config)
    store, box = await reopen(tmp_path)
    start = await box.put(TransactionStarted(1, "L1", IdToken("TAG"), 1000.0, 100.0))
    await box.ack(start, remote_id="7")
    samples = [await box.put(MeterSample(1, "L1", reading(1100.0 + n, 110.0 + n), ReadingContext.PERIODIC,
                                         32.0)) for n in range(4)]
    link = BrokenLink(breaks_at=2)
    sender = connect(version, box, settings, link, connected_at=95.0)
    await asyncio.gather(sender, return_exceptions=True)
    assert len(link.frames) == 2
    await store.call(lambda: None)  # the store's writes are done in order: all before this one
    await store.close()
    store, box = await reopen(tmp_path)
    assert [entry.seq for entry in box.entries()] == [entry.seq for entry in samples[2:]]
    await store.close()
