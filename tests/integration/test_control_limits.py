"""The control socket cannot take the station down: a cap on clients, idle clients closed,
descriptors kept for the OCPP link, accept errors logged once a minute. And who may use it:
the CLI names the group to join (the configured one, or the socket's own).

A test lab held 1,100 idle clients on the socket: the daemon ran out of file
descriptors, the CSMS link dropped for 30 s and asyncio logged 188,487
tracebacks. These tests run the daemon in-process against a loopback CSMS and
check that the link stays up and the log stays short while clients misbehave.
"""

from __future__ import annotations

import asyncio
import grp
import json
import logging
import os
import resource
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from chargepoint.cli import main
from chargepoint.cli.client import Client, RemoteError
from chargepoint.control.server import MAX_CLIENTS, PROTOCOL_VERSION, ControlServer
from tests.integration.conftest import running, station_config, until
from tests.integration.loopback_csms import LoopbackCsms
from tests.integration.stranger import cli_as_a_stranger

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    # Short, under /tmp: a Unix socket path holds at most 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="cp-limits-", dir="/tmp"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Every log record at INFO and up, asyncio's own included (``log.records``)."""
    caplog.set_level(logging.INFO)
    return caplog


def request(command: str, request_id: int = 1) -> bytes:
    return json.dumps({"v": PROTOCOL_VERSION, "id": request_id, "cmd": command, "args": {}}).encode() + b"\n"


async def ask(stream: Stream, command: str = "hello") -> dict[str, Any]:
    reader, writer = stream
    writer.write(request(command))
    await writer.drain()
    return json.loads(await asyncio.wait_for(reader.readline(), 10))


async def admitted(path: str) -> Stream:
    """A client the server serves (it answered hello), which then stays silent."""
    stream = await asyncio.open_unix_connection(path)
    assert (await ask(stream))["ok"]
    return stream


async def first_line(path: str) -> dict[str, Any]:
    """What the server says to a new client before it asks anything (the busy answer)."""
    reader, writer = await asyncio.open_unix_connection(path)
    try:
        return json.loads(await asyncio.wait_for(reader.readline(), 5))
    finally:
        writer.close()


async def close_all(streams: list[Stream]) -> None:
    for _reader, writer in streams:
        writer.close()
    for _reader, writer in streams:
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


def control_lines(log: pytest.LogCaptureFixture, text: str) -> list[logging.LogRecord]:
    return [r for r in log.records if r.name == "chargepoint.control.server" and text in r.getMessage()]


async def test_clients_over_the_cap_are_told_busy_and_the_csms_link_stays(
        csms: LoopbackCsms, tmp_path: Path, socket_dir: Path, log: pytest.LogCaptureFixture):
    path = str(socket_dir / "control.sock")
    config = station_config(csms.url, str(tmp_path / "state"), control={"socket": path})
    async with running(config) as daemon:
        await until(daemon.link.connected.is_set, 15, "the CSMS link")
        await until(lambda: os.path.exists(path), 10, "the control socket")
        idle = [await admitted(path) for _ in range(MAX_CLIENTS)]
        # One over the cap is told at once, in the protocol's words, and closed.
        loop = asyncio.get_running_loop()
        started = loop.time()
        busy = await first_line(path)
        assert loop.time() - started < 2.0
        assert busy["v"] == PROTOCOL_VERSION and busy["ok"] is False and busy["error"]["code"] == "busy"
        assert f"{MAX_CLIENTS} control clients" in busy["error"]["message"]
        # A crowd: each one refused, one log line for all of them. (At most the backlog at once:
        # asyncio's non-blocking connect takes a full backlog's EAGAIN for "connected".)
        crowd = [answer for _ in range(3)
                 for answer in await asyncio.gather(*(first_line(path) for _ in range(100)))]
        assert {answer["error"]["code"] for answer in crowd} == {"busy"}
        refused = control_lines(log, "refused")
        assert len(refused) == 1, [r.getMessage() for r in refused]
        assert all(r.exc_info is None for r in log.records)
        assert not [r for r in log.records if r.name == "asyncio"]
        # The CLI says it too (its request may meet the closed socket: the error is read anyway).
        result = await asyncio.to_thread(CliRunner().invoke, main, ["status", "--json", "--socket", path])
        assert result.exit_code == 1, result.stdout
        assert json.loads(result.stdout)["error"]["code"] == "busy"
        # The station kept its CSMS link throughout: one connection, still up.
        assert daemon.link.connected.is_set() and len(csms.sockets) == 1
        # Once the idle clients go, a status request is served again.
        await close_all(idle)

        async def status_served() -> bool:
            reader, writer = await asyncio.open_unix_connection(path)
            try:
                return bool((await ask((reader, writer), "status"))["ok"])
            except (ConnectionError, json.JSONDecodeError):
                return False
            finally:
                writer.close()

        served = False
        deadline = loop.time() + 10
        while not served and loop.time() < deadline:
            served = await status_served()
        assert served


async def test_a_silent_client_is_closed_and_an_asking_one_is_not(
        csms: LoopbackCsms, tmp_path: Path, socket_dir: Path, log: pytest.LogCaptureFixture):
    path = str(socket_dir / "control.sock")
    config = station_config(csms.url, str(tmp_path / "state"), control={"enabled": False})
    async with running(config) as daemon:
        # A generous timeout against the asking client's short pauses: only a stall of
        # most of a second on the test machine could close it, not ordinary load.
        idle_s = 1.0
        server = ControlServer(daemon.service, path, idle_timeout_s=idle_s)
        assert await server.start()
        try:
            # Silent: the server closes it (end of file is the event waited for).
            reader, writer = await asyncio.open_unix_connection(path)
            assert await asyncio.wait_for(reader.read(), 10) == b""
            writer.close()
            closed = control_lines(log, "no request for 1 s")
            assert len(closed) == 1 and closed[0].exc_info is None
            # Asking every tenth of the timeout for 1.5 timeouts: served on one connection,
            # so the timeout runs from the last request, not from the connection's start.
            stream = await asyncio.open_unix_connection(path)
            asked_from = asyncio.get_running_loop().time()
            while asyncio.get_running_loop().time() - asked_from < 1.5 * idle_s:
                assert (await ask(stream))["ok"]
                await asyncio.sleep(idle_s / 10)
            stream[1].close()
            assert len(control_lines(log, "no request for")) == 1
            # The CLI's client finds its connection closed while it waited, and asks on a new one.
            client = Client(path, timeout_s=5)
            try:
                assert (await asyncio.to_thread(client.request, "hello"))["protocol"] == PROTOCOL_VERSION
                await until(lambda: server.clients == 0, 10, "the idle connection closed")
                assert (await asyncio.to_thread(client.request, "hello"))["protocol"] == PROTOCOL_VERSION
            finally:
                client.close()
            # status --watch with an interval longer than the idle timeout keeps working.
            result = await asyncio.to_thread(CliRunner().invoke, main, [
                "status", "--watch", "--count", "2", "--interval", str(1.5 * idle_s), "--json",
                "--socket", path])
            assert result.exit_code == 0, (result.stdout, result.stderr)
            assert len(result.stdout.splitlines()) == 2
        finally:
            await server.close()


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) - 1


async def test_descriptors_near_the_limit_are_kept_for_the_station(
        csms: LoopbackCsms, tmp_path: Path, socket_dir: Path, log: pytest.LogCaptureFixture):
    path = str(socket_dir / "control.sock")
    config = station_config(csms.url, str(tmp_path / "state"), control={"enabled": False})
    async with running(config) as daemon:
        await until(daemon.link.connected.is_set, 15, "the CSMS link")
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        # Room for about three more clients (two descriptors each in this process) before the reserve.
        server = ControlServer(daemon.service, path, fd_reserve=soft - open_descriptors() - 8)
        assert await server.start()
        streams: list[Stream] = []
        try:
            answer: dict[str, Any] = {"ok": True}
            while answer["ok"] and len(streams) < 20:
                stream = await asyncio.open_unix_connection(path)
                streams.append(stream)
                try:
                    answer = await ask(stream)
                except ConnectionError:  # closed before the request was written: read the answer
                    answer = json.loads(await asyncio.wait_for(stream[0].readline(), 5))
            assert not answer["ok"] and answer["error"]["code"] == "busy", answer
            assert "file descriptors" in answer["error"]["message"]
            assert 1 <= server.clients < 10
            # The CLI's client reads the answer even when the daemon closed before it asked.
            client = Client(path, timeout_s=5)
            refused = server.refused
            client.connect()
            await until(lambda: server.refused > refused, 10, "the refusal")
            with pytest.raises(RemoteError) as busy:
                await asyncio.to_thread(client.request, "hello")
            client.close()
            assert busy.value.code == "busy"
            assert daemon.link.connected.is_set()
        finally:
            await close_all(streams)
            await server.close()


async def test_accept_errors_are_logged_once_a_minute_and_the_clients_served_after(
        csms: LoopbackCsms, tmp_path: Path, socket_dir: Path, log: pytest.LogCaptureFixture):
    path = str(socket_dir / "control.sock")
    config = station_config(csms.url, str(tmp_path / "state"), control={"enabled": False})
    async with running(config) as daemon:
        await until(daemon.link.connected.is_set, 15, "the CSMS link")
        server = ControlServer(daemon.service, path, fd_reserve=0, accept_retry_s=0.05)
        assert await server.start()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        waiting: list[socket.socket] = []
        filler: list[int] = []
        try:
            # Out of descriptors, the way the lab's daemon was: clients wait in the backlog
            # and every accept fails with EMFILE (nothing awaits until the process is full).
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_descriptors() + 16, hard))
            for _ in range(3):
                client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                client.connect(path)  # completes in the backlog, before any accept
                waiting.append(client)
            while True:
                try:
                    filler.append(os.open(os.devnull, os.O_RDONLY))
                except OSError:
                    break
            await until(lambda: server.accept_errors >= 10, 10, "ten failed accepts")
        finally:
            for fd in filler:
                os.close(fd)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        failed = control_lines(log, "cannot accept a control client")
        assert len(failed) == 1, [r.getMessage() for r in failed]
        assert "Too many open files" in failed[0].getMessage() and failed[0].exc_info is None
        assert not [r for r in log.records if r.name == "asyncio"]
        # With descriptors back, the clients that waited are served.
        try:
            for client in waiting:
                stream = await asyncio.open_unix_connection(sock=client)
                assert (await ask(stream))["ok"]
                stream[1].close()
            assert daemon.link.connected.is_set() and len(csms.sockets) == 1
        finally:
            await server.close()
        # The minute's count goes to the log when the server closes, in one line.
        summary = control_lines(log, "more control socket accept errors")
        assert len(summary) == 1 and int(summary[0].getMessage().split()[0]) >= 9


# ------------------------------------------------------------------ permission
def a_group_to_own_the_socket() -> str:
    """A group that exists here and is not the configured one in the test below."""
    if os.geteuid() != 0:
        return grp.getgrgid(os.getegid()).gr_name  # a user cannot give a file to another group
    for name in ("daemon", "adm", "users"):
        try:
            grp.getgrnam(name)
        except KeyError:
            continue
        return name
    pytest.skip("no group daemon, adm or users to give the socket to")


def test_permission_denied_names_the_configured_group_or_the_sockets_own(socket_dir: Path):
    socket_dir.chmod(0o755)  # the stranger reaches the socket and is refused by its mode
    path = str(socket_dir / "control.sock")
    owner = a_group_to_own_the_socket()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    os.chmod(path, 0o660)
    if os.geteuid() == 0:
        os.chown(path, -1, grp.getgrnam(owner).gr_gid)
    config = socket_dir / "station.toml"
    config.write_text(f'[station]\nidentity = "CP-X"\n[ocpp]\ncsms_url = "ws://127.0.0.1:9"\n'
                      f'[control]\nsocket = "{path}"\ngroup = "wallbox"\n')
    config.chmod(0o644)
    try:
        # --config: the CLI knows the configured group, and says the socket's own where it differs.
        configured = cli_as_a_stranger(["status", "--config", str(config)], path)
        assert configured["code"] == 3, configured
        assert "add yourself to group wallbox, the configuration's [control] group" in configured["stderr"]
        assert "sudo usermod -aG wallbox $USER" in configured["stderr"]
        assert f"the socket itself belongs to group {owner}" in configured["stderr"]
        assert "group chargepoint" not in configured["stderr"]
        # The configured group owns the socket (as a daemon that could set it leaves it): that alone.
        config.write_text(config.read_text().replace('"wallbox"', f'"{owner}"'))
        matching = cli_as_a_stranger(["status", "--config", str(config)], path)
        assert f"add yourself to group {owner}, the configuration's" in matching["stderr"]
        assert "itself belongs" not in matching["stderr"]
        # --socket only: no configuration to ask, so the socket's own group, read from the socket.
        socket_only = cli_as_a_stranger(["status", "--socket", path], path)
        assert socket_only["code"] == 3, socket_only
        assert f"add yourself to the group that owns the socket ({owner})" in socket_only["stderr"]
        assert f"sudo usermod -aG {owner} $USER" in socket_only["stderr"]
        as_json = cli_as_a_stranger(["status", "--json", "--socket", path], path)
        assert json.loads(as_json["stdout"])["error"]["code"] == "permission"
    finally:
        listener.close()


async def test_the_socket_listens_before_its_name_appears(socket_dir: Path, monkeypatch: pytest.MonkeyPatch):
    # A CLI that sees the path may connect at once: it must never be refused in between.
    import chargepoint.control.server as server_module
    path = str(socket_dir / "control.sock")
    connects: list[str] = []
    real_replace = os.replace

    def replace_and_probe(source: Any, target: Any) -> None:
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(source))
            connects.append("accepted")
        except ConnectionRefusedError:
            connects.append("refused")
        finally:
            probe.close()
        real_replace(source, target)

    monkeypatch.setattr(server_module.os, "replace", replace_and_probe)
    server = ControlServer(None, path, "chargepoint")  # type: ignore[arg-type]  # binding needs no station
    assert await server.start()
    try:
        assert connects == ["accepted"]
    finally:
        await server.close()
