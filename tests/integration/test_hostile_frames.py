"""Frames built to hurt: nesting thousands deep, floods, huge payloads, secrets.

The operator's test lab sent these to a station in the field. Each must be
answered (or dropped, where no answer is possible) on the same connection,
and must leave a log a person on site can read: one line per event, payloads
capped, repeated warnings counted, secrets masked.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio

from chargepoint.app import logfilter
from chargepoint.app.command import setup_logging as _setup_logging
from chargepoint.app.daemon import Daemon
from chargepoint.protocol.common.intake import CALL_QUEUE_MAX
from chargepoint.protocol.common.peer import MAX_NESTING
from tests.integration.conftest import running, station_config, until
from tests.integration.peers import RawCsms
from tests.loglines import Lines


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


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def site_log(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[[str], tuple[Lines, Clock]]]:
    """``site_log(level)``: the daemon's logging set up as ``chargepoint run --log-level level``
    does it (``_setup_logging``), with one more root handler whose lines the test reads.
    Its rate limit runs on a clock the test moves. Undone afterwards."""
    root, library = logging.getLogger(), logging.getLogger("ocpp")
    saved_level = library.level
    handler = Lines()

    def setup(level: str) -> tuple[Lines, Clock]:
        caplog.set_level(getattr(logging, level.upper()))
        root.addHandler(handler)
        _setup_logging(level)
        clock = Clock()
        for f in handler.filters:
            if isinstance(f, logfilter.RateLimit):
                f.clock = clock
        return handler, clock

    yield setup
    root.removeHandler(handler)
    library.setLevel(saved_level)
    for h in root.handlers:  # pytest's own handlers: the next tests count every line
        for f in [f for f in h.filters if isinstance(f, logfilter.Scrub | logfilter.RateLimit)]:
            h.removeFilter(f)


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


# ------------------------------------------------------- floods and big frames

@pytest.mark.asyncio(loop_scope="module")
async def test_a_flood_of_callerrors_writes_a_few_lines_and_counts_the_rest(booted, site_log):
    csms, daemon = booted
    out, clock = site_log("info")
    before = len(csms.answers)

    for batch in range(0, 500, CALL_QUEUE_MAX):  # as many at once as may wait: none is answered busy
        sent = min(500, batch + CALL_QUEUE_MAX)
        for n in range(batch, sent):
            await csms.send([2, f"flood-{n}", "SignCertificate", {"csr": "x"}])
        await until(lambda sent=sent: len(csms.answers) >= before + sent, 30, f"{sent} answers")
    assert {a.frame[2] for a in csms.answers[before:]} == {"NotSupported"}
    await probe(csms)

    assert len(out.lines) < 30, out.text()
    assert len(out.text()) < 5000
    assert "Traceback" not in out.text()
    flood = [line for line in out.lines if "SignCertificate" in line]
    assert 1 <= len(flood) <= logfilter.BURST
    assert all(line.startswith("WARNING ") for line in flood)

    clock.now += 61
    await csms.call("SignCertificate", {"csr": "x"})
    counted = [line for line in out.lines if "SignCertificate" in line][-1]
    assert counted.endswith(f"(similar line repeated {500 - len(flood)} times in the last 61 s)"), counted


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("level", ["info", "debug"])
async def test_a_900_kB_payload_in_a_rejected_call_writes_a_few_kB(booted, site_log, level):
    csms, daemon = booted
    out, _ = site_log(level)
    huge = "7" * 900_000

    await csms.send([2, "big-1", "RemoteStopTransaction", {"transactionId": huge}])
    await csms.send([2, "big-2", "ChangeConfiguration", {"key": "HeartbeatInterval", "value": huge}])
    await probe(csms)

    answers = [a for a in csms.answers if a.frame[1] in ("big-1", "big-2")][-2:]
    assert [a.frame[2] for a in answers] == ["TypeConstraintViolation", "TypeConstraintViolation"]
    assert all(len(a.raw) < 1000 for a in answers), "the answer does not echo the payload"
    mentions = [line for line in out.lines if "7777777777" in line]
    assert mentions, "the rejection is logged"
    assert sum(map(len, mentions)) < 4000, [len(line) for line in mentions]
    assert "Traceback" not in out.text()
    assert len(out.text()) < 50_000, f"{len(out.text())} characters logged at {level}"
    kept = [e for e in daemon.recorder.entries if e["kind"] == "event"]
    assert all(len(e["text"]) <= logfilter.LINE_MAX for e in kept)


# ---------------------------------------------------------------- secrets

#: The key the station starts with, and the one the CSMS sets (16 and 20 octets).
OLD_KEY = "00ff10e2c3a4b5c6d7e8f90a1b2c3d4e5f607182"
NEW_KEY = "0123456789abcdeffedcba9876543210"


def basic(key_hex: str) -> str:
    return "Basic " + base64.b64encode(b"CP-TEST-1:" + bytes.fromhex(key_hex)).decode()


async def test_no_key_and_no_basic_credentials_in_any_line_at_debug(tmp_path, site_log, caplog):
    """Profile 1 at DEBUG: websockets logs the Authorization header of every handshake, the
    ocpp library every frame, the ChangeConfiguration of a new AuthorizationKey among them."""
    out, _ = site_log("debug")
    async with RawCsms(authorization=basic(OLD_KEY)) as csms:
        cfg = station_config(csms.url, str(tmp_path / "state"),
                             ocpp={"security_profile": 1, "authorization_key": OLD_KEY})
        async with running(cfg) as daemon:
            await csms.wait_for("StatusNotification", connectorId=1)
            assert await csms.change_configuration("AuthorizationKey", NEW_KEY) == "Accepted"
            # the frames again, as a CSMS that sends them twice, in another key order
            await csms.send(json.dumps([2, "again", "ChangeConfiguration", {"value": NEW_KEY,
                                                                             "key": "AuthorizationKey"}]))
            await probe(csms)
            csms.authorization = basic(NEW_KEY)
            await csms.sockets[0].close()
            await csms.wait_for("BootNotification", connection=2)
            kept = [str(e["text"]) for e in daemon.recorder.entries]
    assert [h.authorization for h in csms.handshakes] == [basic(OLD_KEY), basic(NEW_KEY)]

    written = {"the log": out.text(), "pytest's capture": caplog.text,
               "the records": "\n".join(r.getMessage() for r in caplog.records),
               "chargepoint logs": "\n".join(kept)}
    for where, text in written.items():
        for key in (OLD_KEY, NEW_KEY):
            assert key not in text.lower(), f"{key} in {where}"
            assert basic(key).split()[1] not in text, f"Basic credentials of {key} in {where}"
    # what was masked was there: the header at each handshake, the frames with the key
    assert out.text().count("> Authorization: Basic (redacted)") == 2, "the station sent it twice"
    assert [line for line in out.lines if "AuthorizationKey" in line and "(redacted)" in line]
    assert [t for t in kept if "AuthorizationKey" in t and "(redacted)" in t]


# ------------------------------------------------------------ the state file

def _modes(path: Any) -> dict[str, str]:
    files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
    return {f.name: oct(f.stat().st_mode & 0o777) for f in files if f.exists()}


async def test_the_state_database_is_for_the_service_user_only(tmp_path):
    """It holds the authorization key and id tags. Fresh, and as an older release left it."""
    umask = os.umask(0o022)  # the usual one, with which files come out readable by all
    try:
        async with RawCsms() as csms:
            cfg = station_config(csms.url, str(tmp_path / "state"),
                                 ocpp={"security_profile": 1, "authorization_key": OLD_KEY})
            csms.authorization = basic(OLD_KEY)
            async with running(cfg) as daemon:
                await csms.wait_for("StatusNotification", connectorId=1)
                assert await csms.change_configuration("AuthorizationKey", NEW_KEY) == "Accepted"
                path = daemon.store.path
                modes = _modes(path)
                assert set(modes) == {path.name, f"{path.name}-wal", f"{path.name}-shm"}, modes
                assert set(modes.values()) == {"0o600"}, modes
            # As a release before this one left them, -wal and -shm too (held open here).
            other = sqlite3.connect(path)
            try:
                other.execute("SELECT count(*) FROM settings").fetchall()
                for name in _modes(path):
                    os.chmod(path.with_name(name), 0o644)
                assert set(_modes(path).values()) == {"0o644"} and len(_modes(path)) == 3
                csms.authorization = basic(NEW_KEY)  # kept in the file
                async with running(cfg) as daemon:
                    await csms.wait_for("StatusNotification", connectorId=1, connection=2)
                    modes = _modes(path)
                    assert set(modes.values()) == {"0o600"}, modes
            finally:
                other.close()
    finally:
        os.umask(umask)
