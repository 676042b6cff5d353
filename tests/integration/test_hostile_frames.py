"""Frames built to hurt: nesting thousands deep, floods, huge payloads, secrets.

The operator's test lab sent these to a station in the field. Each must be
answered (or dropped, where no answer is possible) on the same connection,
and must leave a log a person on site can read: one line per event, payloads
capped, repeated warnings counted, secrets masked.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from chargepoint.app.daemon import Daemon
from chargepoint.protocol.common.peer import MAX_NESTING
from tests.integration.conftest import running, station_config
from tests.integration.peers import RawCsms


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def booted(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[RawCsms, Daemon]]:
    """One station, booted and idle, for the frames below."""
    async with RawCsms() as csms:
        async with running(station_config(csms.url, str(tmp_path_factory.mktemp("state")))) as daemon:
            await csms.wait_for("StatusNotification", connectorId=1)
            yield csms, daemon


async def probe(csms: RawCsms) -> list[Any]:
    """A valid CALL on the same connection: it must get its CALLRESULT. Frames are read
    and answered in order, so every answer to frames sent before it has arrived."""
    answer = await csms.call("GetConfiguration", {"key": ["HeartbeatInterval"]})
    assert answer[0] == 3, answer
    assert answer[2]["configurationKey"][0]["key"] == "HeartbeatInterval"
    return answer


def nested(depth: int) -> str:
    """An array nested ``depth`` levels deep, as JSON text."""
    return "[" * depth + "]" * depth


def data_transfer(unique_id: str, data: str) -> str:
    """A DataTransfer CALL whose data is ``data`` (JSON text): nested 2 levels more than it."""
    return f'[2,"{unique_id}","DataTransfer",{{"vendorId":"lab","data":{data}}}]'


# ------------------------------------------------------------- deep nesting

DEEP_FRAMES = [
    # (frame as sent, id the answer must carry, its error code or CALLRESULT; None: no answer at all)
    pytest.param(data_transfer("deep-1", nested(5000)), "deep-1", "FormationViolation", id="call-5000-deep"),
    pytest.param(data_transfer("deep-2", nested(MAX_NESTING - 1)), "deep-2", "FormationViolation",
                 id="call-one-level-too-deep"),
    pytest.param('[2, "deep-\\"3\\"" ,"DataTransfer",' + nested(5000) + "]", 'deep-"3"', "FormationViolation",
                 id="call-with-escaped-id"),
    pytest.param(data_transfer("deep-4", json.dumps("[" * 5000)), "deep-4", "CALLRESULT",
                 id="brackets-in-a-string-do-not-count"),
    pytest.param(data_transfer("deep-5", nested(MAX_NESTING - 2)), "deep-5", "TypeConstraintViolation",
                 id="call-as-deep-as-allowed"),
    pytest.param(nested(5000), None, None, id="array-5000-deep"),
    pytest.param("{" * 5000, None, None, id="objects-5000-deep-unclosed"),
    pytest.param('[3,"no-such-call",' + nested(5000) + "]", None, None, id="callresult-5000-deep"),
    pytest.param('[2,17,"DataTransfer",' + nested(5000) + "]", None, None, id="call-without-string-id"),
    pytest.param(nested(5000).encode(), None, None, id="binary-frame-5000-deep"),
]


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("frame", "unique_id", "code"), DEEP_FRAMES)
async def test_deeply_nested_frame_is_answered_or_dropped_and_the_connection_stays(
        booted, frame, unique_id, code):
    csms, daemon = booted
    connection, connections = csms.connection, daemon.link.connections
    before = len(csms.answers)

    await csms.send(frame)
    answer = await probe(csms)

    got = [a.frame for a in csms.answers[before:] if a.frame[1] != answer[1]]
    if code is None:
        assert got == [], f"no answer expected, got {got}"
    else:
        assert len(got) == 1, f"exactly one answer expected, got {got}"
        if code == "CALLRESULT":
            assert got[0][:2] == [3, unique_id], got[0]
        else:
            assert got[0][:3] == [4, unique_id, code], got[0]
        assert len(json.dumps(got[0])) < 1000, "the answer does not echo the frame"
    assert csms.connection == connection and daemon.link.connections == connections
    assert daemon.link.connected.is_set()
