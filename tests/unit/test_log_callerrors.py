"""A CALLERROR the station answers is one WARNING line: no traceback, no payload.

The ``ocpp`` library logged every CALLERROR it answered as an ERROR with a
traceback and the whole CALL (a 900 kB frame wrote 2.7 MB of log), and every
frame at INFO. These tests feed frames to the 1.6 peer through a fake
connection and look at every record logged, at DEBUG, by any logger.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from ocpp.v16 import call

from chargepoint.protocol.v16.peer import Peer16
from chargepoint.protocol.v16.reservations import ReservationHandlers


class Wire:
    """A connection the test feeds frames into and reads the station's frames from."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[str] = asyncio.Queue()
        self.sent: asyncio.Queue[str] = asyncio.Queue()

    async def recv(self) -> str:
        return await self.incoming.get()

    async def send(self, text: str) -> None:
        self.sent.put_nowait(text)


class Adapter:
    """Only what the handlers used here ask for."""

    def remote_stop(self, transaction_id: int) -> str:
        raise RuntimeError(f"no stop for {transaction_id}: a bug in the station")


@pytest.fixture
async def peer() -> AsyncIterator[tuple[Peer16, Wire]]:
    wire = Wire()
    adapter = Adapter()
    peer = Peer16("CP-1", wire, adapter, response_timeout=5)  # type: ignore[arg-type]
    peer.add_block(ReservationHandlers(adapter))  # type: ignore[arg-type]  # ReserveNow's schema is checked
    reader = asyncio.ensure_future(peer.start())
    yield peer, wire
    reader.cancel()
    await peer.stop_handling()
    await asyncio.gather(reader, return_exceptions=True)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every record of every logger, from DEBUG up (``log.records``)."""
    caplog.set_level(logging.DEBUG)
    return caplog


async def answer(wire: Wire, frame: str) -> list[Any]:
    wire.incoming.put_nowait(frame)
    text = await asyncio.wait_for(wire.sent.get(), 2)
    assert len(text) < 1000, f"the answer is {len(text)} characters"
    return json.loads(text)


def text_of(records: list[logging.LogRecord]) -> str:
    """All that the records would write: messages and tracebacks."""
    formatter = logging.Formatter("%(levelname)s %(name)s: %(message)s")
    return "\n".join(formatter.format(r) for r in records)


CALLERRORS = [
    pytest.param('[2,"e-1","FooBar",{}]', "NotImplemented", id="unknown-action"),
    pytest.param('[2,"e-2","SignCertificate",{"csr":"x"}]', "NotSupported",
                 id="action-not-supported"),
    pytest.param('[2,"e-3","RemoteStopTransaction",{"transactionId":"abc"}]', "TypeConstraintViolation",
                 id="wrong-type"),
    pytest.param('[2,"e-4","ChangeAvailability",{"connectorId":1,"type":"Sometimes"}]',
                 "PropertyConstraintViolation", id="not-in-enum"),
    pytest.param('[2,"e-5","ReserveNow",{"connectorId":1,"expiryDate":"tomorrow","idTag":"X",'
                 '"reservationId":1}]', "PropertyConstraintViolation", id="not-a-date"),
]


@pytest.mark.parametrize(("frame", "code"), CALLERRORS)
async def test_an_answered_callerror_is_one_warning_line_without_traceback(peer, log, frame, code):
    _, wire = peer
    got = await answer(wire, frame)
    assert got[0] == 4 and got[2] == code

    loud = [r for r in log.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1, [r.getMessage() for r in loud]
    line = loud[0]
    assert line.levelno == logging.WARNING and line.exc_info is None
    assert json.loads(frame)[2] in line.getMessage() and code in line.getMessage()
    assert "Traceback" not in text_of(log.records)


async def test_a_900_kB_payload_in_a_rejected_call_writes_a_few_kB_at_most(peer, log):
    _, wire = peer
    huge = "7" * 900_000
    got = await answer(wire, json.dumps([2, "big-1", "RemoteStopTransaction", {"transactionId": huge}]))
    assert got[:3] == [4, "big-1", "TypeConstraintViolation"]
    got = await answer(wire, json.dumps([2, "big-2", "Foo" + huge, {}]))
    assert got[:3] == [4, "big-2", "NotImplemented"]

    written = text_of(log.records)
    assert len(written) < 4000, f"{len(written)} characters logged for two rejected CALLs"
    assert "Traceback" not in written
    assert len([r for r in log.records if r.levelno >= logging.WARNING]) == 2


async def test_a_handler_failing_unexpectedly_is_an_error_with_traceback_naming_not_showing_the_call(
        peer, log):
    _, wire = peer
    got = await answer(wire, '[2,"bug-1","RemoteStopTransaction",{"transactionId":4711}]')
    assert got[:3] == [4, "bug-1", "InternalError"]

    loud = [r for r in log.records if r.levelno >= logging.WARNING]
    assert len(loud) == 1
    assert loud[0].levelno == logging.ERROR and loud[0].exc_info is not None, "a bug keeps its traceback"
    assert "RemoteStopTransaction" in loud[0].getMessage() and "bug-1" in loud[0].getMessage()
    assert "transactionId" not in loud[0].getMessage(), "the payload is not in the line"


async def test_the_librarys_own_lines_are_debug_detail(peer, log):
    station, wire = peer
    # a CALLERROR in answer to the station's own CALL: the caller reports it, in its words
    heartbeat = asyncio.ensure_future(station.call(call.Heartbeat(), suppress=False))
    sent = json.loads(await asyncio.wait_for(wire.sent.get(), 2))
    wire.incoming.put_nowait(json.dumps([4, sent[1], "InternalError", "x" * 5000, {}]))
    with pytest.raises(Exception, match="InternalError|x{20}"):
        await asyncio.wait_for(heartbeat, 2)

    library = [r for r in log.records if r.name == "ocpp"]
    assert library, "frames are still there at DEBUG"
    assert all(r.levelno == logging.DEBUG for r in library), [(r.levelname, r.getMessage()) for r in library]
    assert all(len(r.getMessage()) < 1200 for r in library)


class BrokenRegistration:
    """An adapter whose registration cannot be read: the station's check before the handler fails."""

    @property
    def registration(self) -> str:
        raise RuntimeError("a bug in the station")


async def test_a_failure_before_the_handler_is_answered_internal_error_not_left_to_time_out(log):
    from chargepoint.protocol.v201.peer import V201Peer

    wire = Wire()
    station = V201Peer("CP-1", wire, BrokenRegistration(), response_timeout=5)  # type: ignore[arg-type]
    reader = asyncio.ensure_future(station.start())
    try:
        got = await answer(wire, '[2,"bug-2","ClearCache",{}]')
        assert got[:3] == [4, "bug-2", "InternalError"]
        loud = [r for r in log.records if r.levelno >= logging.WARNING]
        assert len(loud) == 1 and loud[0].exc_info is not None and "bug-2" in loud[0].getMessage()
        # The connection stays: the next CALL is read and answered too.
        assert (await answer(wire, '[2,"bug-3","ClearCache",{}]'))[:2] == [4, "bug-3"]
    finally:
        reader.cancel()
        await station.stop_handling()
        await asyncio.gather(reader, return_exceptions=True)
