"""A real mosquitto broker for the MQTT tests and the benchmark: its own process, on a free loopback
port, with a temporary configuration (never the system's service).

``Mosquitto(root).start()`` writes ``mosquitto.conf`` (and a password file made
with ``mosquitto_passwd`` when users are given) under ``root``, starts the
broker and waits until it accepts connections; ``kill()`` and ``start()``
again restart it on the same port, without persistence, so whatever a client
finds retained after a restart was published again. The broker logs
subscriptions to ``mosquitto.log``.
"""

from __future__ import annotations

import getpass
import shutil
import socket
import subprocess
import time
from pathlib import Path

#: Debian installs the broker in /usr/sbin, which a user's PATH may lack.
MOSQUITTO = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin")
PASSWD = shutil.which("mosquitto_passwd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    def __init__(self, root: Path, users: dict[str, str] | None = None, port: int | None = None) -> None:
        if MOSQUITTO is None or PASSWD is None:
            raise RuntimeError("mosquitto is not installed (make test installs it: "
                               "apt-get install mosquitto)")
        self.root = root
        self.port = port or free_port()
        self.users = users
        self.log = root / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)
        lines = [f"listener {self.port} 127.0.0.1", f"user {getpass.getuser()}", "persistence false",
                 f"log_dest file {self.log}", "log_type error", "log_type warning", "log_type notice",
                 "log_type subscribe", "connection_messages true"]
        if users:
            passwords = root / "passwords"
            for n, (user, password) in enumerate(users.items()):
                subprocess.run([PASSWD, "-b", *(["-c"] if n == 0 else []), str(passwords), user, password],
                               check=True, capture_output=True, timeout=30)
            passwords.chmod(0o600)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.conf = root / "mosquitto.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self, timeout: float = 10.0) -> Mosquitto:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                error = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                raise RuntimeError(f"mosquitto exited ({self.proc.returncode}): {error}{self.log_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"mosquitto did not listen on {self.port}") from None
                time.sleep(0.02)

    def kill(self) -> None:
        """Kill it as a crash or a power cut would: no goodbye to its clients."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self.proc = None
