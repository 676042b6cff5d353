"""The channel on a real Unix socket: who may connect, and what bad frames get.

A ``ChannelServer`` over the simulation on a ManualClock (nothing steps unless the
test says so), a real socket in the test's directory, and clients that send
what a hostile or broken peer would: another uid, oversized and malformed
frames, unknown operations, fuzzed requests. Each gets an error (or is
disconnected, for another uid), the connection of a legitimate peer stays up,
and no output changes.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chargepoint.config import parse
from chargepoint.supervisor import wire
from chargepoint.supervisor.hardware import build_simulation
from chargepoint.supervisor.server import ChannelServer
from chargepoint.supervisor.sim import sim_action
from chargepoint.supervisor.station import OrphanPolicy, SafetyStation
from hal.clock import ManualClock


class Rig:
    def __init__(self, tmp_path: Path, controller_uid: int) -> None:
        config = parse({"station": {"identity": "CP1", "state_dir": str(tmp_path)}}, "<test>")
        self.clock = ManualClock()
        hardware = build_simulation(config, self.clock)
        self.station = SafetyStation(hardware.connectors, self.clock, OrphanPolicy(), sim_action)
        self.path = str(tmp_path / "safety.sock")
        self.server = ChannelServer(self.station, self.path, controller_uid, lambda: {"pid": os.getpid()})
        self.world = hardware.connectors[0].world
        self.evse = hardware.connectors[0].evse

    def outputs(self) -> tuple[Any, ...]:
        c = self.world.contactor
        return c.commanded, c.closed, self.world.pilot.duty_percent, self.evse.status.charging_allowed, \
            self.station.connectors[1].limits.snapshot()


@pytest.fixture
async def rig(tmp_path: Path) -> Any:
    rig = Rig(tmp_path, controller_uid=os.getuid())
    await rig.server.start()
    yield rig
    await rig.server.close()


async def talk(path: str, *frames: bytes, answers: int | None = None) -> list[dict[str, Any]]:
    """Send raw frames, read the answers (events skipped): one per frame unless told."""
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 20)
    try:
        for frame in frames:
            writer.write(frame)
        await writer.drain()
        out: list[dict[str, Any]] = []
        while len(out) < (len(frames) if answers is None else answers):
            line = await asyncio.wait_for(reader.readline(), 5)
            assert line, f"the connection closed after {out}"
            message = json.loads(line)
            if "event" not in message:
                out.append(message)
        return out
    finally:
        writer.close()


def frame(**fields: Any) -> bytes:
    return wire.encode(fields)


async def test_the_daemon_controls_after_its_hello_and_bad_frames_change_nothing(rig: Rig):
    before = rig.outputs()
    bad = [
        b"not json\n",
        b"[1, 2, 3]\n",
        b'{"v": 2, "id": 1, "op": "hello"}\n',
        frame(id=2, op="format_disk"),
        frame(id=3, op="energy", connector=1, granted="yes"),
        frame(id=4, op="claim", connector=1, name="operator", amps=1e308),
        b'{"v": 1, "id": 5, "op": "claim", "connector": 1, "name": "x", "amps": NaN}\n',
        frame(id=6, op="energy", connector=1, granted=True, extra=1),
        frame(id=7, op="output_test", connector=1),
        frame(id=8, op="claim", connector=1, name="station", amps=80),
        b"x" * (wire.MAX_FRAME * 3) + b"\n",
        frame(id=9, op="sim", connector=1, action="explode"),
    ]
    answers = await talk(rig.path, frame(id=1, op="hello"), *bad)
    assert answers[0]["role"] == "control"
    codes = [a["error"]["code"] for a in answers[1:]]
    assert codes == ["bad_frame", "bad_frame", "bad_version", "unknown_op", "bad_field", "bad_field",
                     "bad_frame", "bad_field", "bad_field", "refused", "bad_frame", "bad_field"]
    assert rig.outputs() == before
    # After all that, the same connection still works.
    ok = await talk(rig.path, frame(id=1, op="hello"), frame(id=2, op="state"))
    assert ok[1]["ok"] and ok[1]["connectors"][0]["connector"] == 1


async def test_a_peer_that_asks_to_read_only_changes_nothing_and_keeps_the_daemon_in_control(rig: Rig):
    daemon_reader, daemon_writer = await asyncio.open_unix_connection(rig.path)
    daemon_writer.write(frame(id=1, op="hello"))
    await daemon_writer.drain()
    assert json.loads(await daemon_reader.readline())["role"] == "control"
    answers = await talk(rig.path, frame(id=1, op="hello", read_only=True),
                         frame(id=2, op="energy", connector=1, granted=True))
    assert answers[0]["role"] == "read" and answers[1]["error"]["code"] == "read_only"
    assert rig.server.controller_connected and not rig.evse.status.charging_allowed
    daemon_writer.close()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to connect as another user")
async def test_another_uid_is_refused_and_disconnected():
    import tempfile

    where = Path(tempfile.mkdtemp(prefix="cp-channel-", dir="/tmp"))
    where.chmod(0o755)  # the other user must reach the socket for the supervisor to refuse it
    rig = Rig(where, controller_uid=0)
    await rig.server.start()
    try:
        before = rig.outputs()
        script = (
            "import os, socket, sys\n"
            "os.setgid(65534); os.setuid(65534)\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])\n"
            "print(s.recv(4096).decode(), flush=True)\n"  # the supervisor says no at once
            "try:\n"
            "    s.sendall(b'{\"v\":1,\"id\":1,\"op\":\"energy\",\"connector\":1,\"granted\":true}\\n')\n"
            "    assert s.recv(4096) == b''\n"  # and hangs up
            "except OSError:\n"
            "    pass\n")
        result = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", script, rig.path],
                                         capture_output=True, text=True, timeout=20)
        assert result.stdout, result.stderr
        answer = json.loads(result.stdout.splitlines()[0])
        assert answer["error"]["code"] == "forbidden" and "65534" in answer["error"]["message"]
        assert rig.server.refused == 1 and rig.outputs() == before
    finally:
        await rig.server.close()


async def test_a_second_daemon_connection_replaces_the_first(rig: Rig):
    reader, writer = await asyncio.open_unix_connection(rig.path)
    writer.write(frame(id=1, op="hello"))
    await writer.drain()
    assert json.loads(await reader.readline())["role"] == "control"
    answers = await talk(rig.path, frame(id=1, op="hello"), frame(id=2, op="claim", connector=1,
                                                                  name="operator", amps=10))
    assert answers[1]["ok"] and rig.station.connectors[1].limits.get("operator") == 10
    # The supervisor closed the old connection: it reads to its end.
    while await asyncio.wait_for(reader.readline(), 5):
        pass
    writer.close()


async def test_the_first_line_a_peer_reads_is_the_answer_to_its_hello(rig: Rig):
    """Events go to a peer only once its hello is answered: the daemon's connect reads one line and
    took an event there for "nobody answers", then started a second supervisor."""
    reader, writer = await asyncio.open_unix_connection(rig.path)
    published = 0
    while published < 50:  # the connection is accepted and registered within a few of these
        rig.server.publish_supervisor()
        rig.server.publish_connector(1)
        published += 1
        await asyncio.sleep(0.001)
    writer.write(frame(id=7, op="hello", read_only=True))
    await writer.drain()
    first = json.loads(await asyncio.wait_for(reader.readline(), 5))
    assert first["id"] == 7 and first["ok"] and first["role"] == "read"
    rig.server.publish_supervisor()
    assert json.loads(await asyncio.wait_for(reader.readline(), 5))["event"] == "supervisor"
    writer.close()

async def test_a_server_that_could_not_start_leaves_the_listening_socket_alone(rig: Rig, tmp_path: Path):
    """Closing a server whose start found another listening removes nothing: the file is the
    other's, and without it that supervisor's daemon could never reconnect."""
    other = ChannelServer(rig.station, rig.path, os.getuid(), lambda: {})
    with pytest.raises(OSError, match="already listens"):
        await other.start()
    await other.close()
    assert (await talk(rig.path, frame(id=1, op="hello", read_only=True)))[0]["ok"]


async def test_a_server_removes_its_own_socket_and_not_one_made_since(rig: Rig, tmp_path: Path):
    os.unlink(rig.path)  # someone removed it; another server made the path its own
    newer = Rig(tmp_path, controller_uid=os.getuid())
    await newer.server.start()
    try:
        await rig.server.close()
        assert (await talk(newer.path, frame(id=1, op="hello", read_only=True)))[0]["ok"]
    finally:
        await newer.server.close()
    assert not os.path.exists(newer.path)


_values = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False),
                    st.text(max_size=40), st.lists(st.integers(), max_size=3))
_requests = st.fixed_dictionaries(
    {"v": st.sampled_from([1, 1, 1, 2, "1"]), "id": st.one_of(st.integers(-5, 2**33), st.text(max_size=3))},
    optional={"op": st.one_of(st.sampled_from(sorted(wire.OPS)), st.text(max_size=12)),
              "connector": _values, "name": _values, "amps": _values, "granted": _values,
              "contactor": _values, "duty": _values, "hold_s": _values, "action": _values,
              "locked": _values, "operative": _values})


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_requests)
def test_fuzzed_requests_get_an_answer_or_an_error_and_never_an_exception(request: dict[str, Any]):
    """Whatever a frame holds, the checks and the station answer it with fields or a WireError."""
    rig = _fuzz_rig()
    line = json.dumps(request).encode()
    try:
        parsed = wire.parse_request(wire.decode(line))
        rig.station.handle(parsed, control=True)
    except wire.WireError as exc:
        assert exc.code in {"bad_frame", "bad_version", "unknown_op", "bad_field", "refused", "read_only"}
    # With no EV plugged, nothing a request does may close the contactor but a technician's output test.
    rig.evse.step()
    assert not rig.world.contactor.commanded or rig.evse.output_test_active
    rig.evse.end_output_test()
    rig.evse.step()


_RIG: list[Rig] = []


def _fuzz_rig() -> Rig:
    if not _RIG:
        import tempfile

        _RIG.append(Rig(Path(tempfile.mkdtemp(prefix="cp-fuzz-")), os.getuid()))
    return _RIG[0]
