"""The control socket itself: a Unix socket only, its mode and group, and the protocol's errors."""

from __future__ import annotations

import grp
import json
import os
import socket
import stat
from typing import TYPE_CHECKING

from chargepoint.control.server import MAX_REQUEST, PROTOCOL_VERSION

if TYPE_CHECKING:
    from tests.integration.control_rig import Rig

pytest_plugins = ("tests.integration.control_rig",)  # the rig fixture


def connect(rig: Rig) -> tuple[socket.socket, object]:
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(10)
    sock.connect(rig.socket)
    return sock, sock.makefile("rb")


def ask(sock: socket.socket, reader: object, line: bytes) -> dict:
    sock.sendall(line + b"\n")
    return json.loads(reader.readline())  # type: ignore[attr-defined]


def test_the_socket_is_a_unix_socket_with_mode_0660_and_the_group(rig: Rig):
    st = os.stat(rig.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    try:
        expected = grp.getgrnam("chargepoint").gr_gid
    except KeyError:
        expected = os.getegid()  # no such group here: the daemon's own, said in its log
        assert "group chargepoint does not exist" in rig.log.read_text()
    assert st.st_gid == expected


def test_the_daemon_listens_on_no_network_port(rig: Rig):
    inodes = set()
    fd_dir = f"/proc/{rig.daemon.pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    assert inodes, "the daemon has sockets (the control socket at least)"
    listening = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/udp", "/proc/net/udp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[9] in inodes and (fields[3] == "0A" or "udp" in table):  # 0A: LISTEN
                    listening.append((table, fields[1]))
    assert listening == []


def test_errors_are_values_and_the_connection_survives_them(rig: Rig):
    sock, reader = connect(rig)
    with sock:
        bad = ask(sock, reader, b"{not json")
        assert bad["v"] == PROTOCOL_VERSION and bad["id"] is None and bad["ok"] is False
        assert bad["error"]["code"] == "bad_request" and bad["error"]["message"].startswith("not JSON")
        assert ask(sock, reader, b"[1, 2]")["error"]["code"] == "bad_request"
        old = ask(sock, reader, json.dumps({"v": 99, "id": 5, "cmd": "status"}).encode())
        assert old["id"] == 5 and old["error"]["code"] == "unsupported_version"
        assert "speaks 1" in old["error"]["message"]
        missing = ask(sock, reader, json.dumps({"id": 6, "cmd": "status"}).encode())
        assert missing["error"]["code"] == "unsupported_version"
        unknown = ask(sock, reader, json.dumps({"v": 1, "id": "x", "cmd": "launch"}).encode())
        assert unknown["id"] == "x" and unknown["error"]["code"] == "unknown_command"
        assert "status" in unknown["error"]["message"]
        typed = ask(sock, reader, json.dumps({"v": 1, "id": 7, "cmd": "status",
                                              "args": {"connector": "1"}}).encode())
        assert typed["error"] == {"code": "bad_request",
                                  "message": "connector must be a whole number, not '1'"}
        args = ask(sock, reader, json.dumps({"v": 1, "id": 8, "cmd": "status", "args": [1]}).encode())
        assert args["error"]["code"] == "bad_request"
        hello = ask(sock, reader, json.dumps({"v": 1, "id": 9, "cmd": "hello"}).encode())
        assert hello["ok"] is True and hello["id"] == 9
        assert hello["result"]["protocol"] == PROTOCOL_VERSION and hello["result"]["identity"] == "CP-CLI-1"
        commands = set(hello["result"]["commands"])
        assert {"status", "sessions", "selftest", "relay_test", "pilot_test"} <= commands


def test_requests_on_one_connection_are_answered_in_order(rig: Rig):
    sock, reader = connect(rig)
    with sock:
        lines = b"".join(json.dumps({"v": 1, "id": i, "cmd": cmd}).encode() + b"\n"
                         for i, cmd in enumerate(["hello", "queue", "status", "nope"]))
        sock.sendall(lines + b"\n")  # an empty line is ignored
        answers = [json.loads(reader.readline()) for _ in range(4)]  # type: ignore[attr-defined]
    assert [a["id"] for a in answers] == [0, 1, 2, 3]
    assert [a["ok"] for a in answers] == [True, True, True, False]


def test_an_overlong_request_is_refused(rig: Rig):
    sock, reader = connect(rig)
    with sock:
        sock.sendall(b"x" * (MAX_REQUEST + 10) + b"\n")
        answer = json.loads(reader.readline())  # type: ignore[attr-defined]
        assert answer["error"]["code"] == "bad_request" and "longer than" in answer["error"]["message"]
        assert reader.readline() == b""  # type: ignore[attr-defined]
    assert rig.request("hello")["ok"], "the daemon serves the next client"
