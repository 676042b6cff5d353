"""A station daemon as a subprocess (sim hal) with its control socket, for the CLI tests.

One daemon serves every test that imports the ``rig`` fixture (session scope):
starting the process is the slow part. It runs the way systemd runs it: with a
NOTIFY_SOCKET (a datagram socket here that records what the daemon says),
WATCHDOG_USEC, and stderr marked as the journal (JOURNAL_STREAM), against the
bench CSMS (``chargepoint csms``) as a second subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from chargepoint.cli import main
from chargepoint.control.server import PROTOCOL_VERSION

#: The simulation runs this many times faster than real time.
SPEED = 10.0
#: systemd's WatchdogSec for the rig's daemon: pings every half of it.
WATCHDOG_USEC = 1_000_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``condition`` (real time, bounded) until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


def station_toml(root: Path, csms_port: int, socket_path: str, extra: str = "") -> str:
    return f"""
[station]
identity = "CP-CLI-1"
state_dir = "{root / 'state'}"

[ocpp]
csms_url = "ws://127.0.0.1:{csms_port}"
versions = ["1.6"]
reconnect_min_s = 0.2
reconnect_max_s = 1.0
meter_value_sample_interval_s = 10

[simulation]
speed = {SPEED}

[meter]
poll_interval_s = 0.5

[control]
socket = "{socket_path}"
{extra}
"""


@dataclass
class Rig:
    root: Path
    socket: str
    config: Path
    log: Path
    notify: socket.socket
    daemon: subprocess.Popen[bytes]
    csms: subprocess.Popen[bytes]
    notifications: list[str] = field(default_factory=list)

    def cli(self, *args: str, input: str | None = None) -> Result:
        """``chargepoint ARGS --socket SOCKET`` in this process (the real CLI over the real socket)."""
        return CliRunner().invoke(main, [*args, "--socket", self.socket], input=input)

    def json(self, *args: str, code: int = 0) -> Any:
        result = self.cli(*args, "--json")
        assert result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
        return json.loads(result.stdout)

    def request(self, command: str, **args: Any) -> dict[str, Any]:
        """One raw protocol request on a fresh connection: the whole response."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(30)
            s.connect(self.socket)
            s.sendall(json.dumps({"v": PROTOCOL_VERSION, "id": 1, "cmd": command, "args": args}).encode()
                      + b"\n")
            return json.loads(s.makefile("rb").readline())

    def status(self) -> dict[str, Any]:
        response = self.request("status")
        assert response["ok"], response
        return response["result"]

    def connector(self, cid: int = 1) -> dict[str, Any]:
        return next(c for c in self.status()["connectors"] if c["id"] == cid)

    def wait(self, condition: Callable[[], Any], what: str, timeout: float = 15.0) -> Any:
        return wait_until(condition, timeout, what)

    def received(self) -> list[str]:
        """Every sd_notify message so far (read continuously, as systemd does: a Unix
        datagram queue holds only a few)."""
        return list(self.notifications)

    def _read_notifications(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.notifications.append(self.notify.recv(4096).decode())
            except TimeoutError:
                continue

    def idle(self) -> None:
        """Back to a quiet station: no session, no EV, operative, no fault."""
        c = self.connector()
        if c["session"] is not None:
            self.cli("stop", "--connector", "1")
        self.cli("sim", "unplug")
        self.cli("availability", "0", "operative")
        self.wait(lambda: self.connector()["ocpp_status"] == "Available", "connector 1 Available")


@pytest.fixture(scope="session")
def rig() -> Iterator[Rig]:
    # A short directory of its own: a Unix socket path holds at most 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="cp-rig-", dir="/tmp"))
    root.chmod(0o755)  # another user must reach the socket to be refused by its mode
    socket_path = str(root / "control.sock")
    port = free_port()
    config = root / "station.toml"
    config.write_text(station_toml(root, port, socket_path))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(root / "notify.sock"))
    notify.settimeout(0.1)
    log = root / "daemon.log"
    csms = subprocess.Popen([sys.executable, "-m", "chargepoint.cli", "csms", "--port", str(port), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(log, "wb") as stderr:
        st = os.fstat(stderr.fileno())
        env = {**os.environ, "NOTIFY_SOCKET": str(root / "notify.sock"), "WATCHDOG_USEC": str(WATCHDOG_USEC),
               "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        env.pop("CHARGEPOINT_SOCKET", None)
        daemon = subprocess.Popen([sys.executable, "-m", "chargepoint.cli", "run", "--config", str(config)],
                                  stderr=stderr, env=env)
    rig = Rig(root, socket_path, config, log, notify, daemon, csms)
    stop_reading = threading.Event()
    reader = threading.Thread(target=rig._read_notifications, args=(stop_reading,), daemon=True)
    reader.start()
    try:
        rig.wait(lambda: daemon.poll() is not None or os.path.exists(socket_path), "the control socket", 30)
        assert daemon.poll() is None, log.read_text()
        rig.wait(lambda: rig.status()["connection"]["boot"] == "accepted", "BootNotification accepted", 30)
        # The meter is the supervisor's simulated one, read over Modbus TCP: its first reading.
        rig.wait(lambda: rig.status()["connectors"][0]["meter"]["voltages_v"] is not None, "a meter reading",
                 30)
        yield rig
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        csms.kill()
        csms.wait()
        time.sleep(0.2)  # the last datagrams
        stop_reading.set()
        reader.join(2.0)
        said = rig.received()
        notify.close()
        text = log.read_text(errors="replace")
        shutil.rmtree(root, ignore_errors=True)
    # How the daemon ends under systemd: STOPPING=1, then exit 0 after SIGTERM.
    assert daemon.returncode == 0, text[-3000:]
    assert any(m.startswith("STOPPING=1") for m in said), said
