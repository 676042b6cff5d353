"""sd_notify(3) without libsystemd: readiness and watchdog pings for both services.

Datagrams to the Unix socket named by ``NOTIFY_SOCKET`` (a path, or ``@name``
in the abstract namespace); the interval comes from ``WATCHDOG_USEC`` (pings
at half of it, as systemd advises), for the process ``WATCHDOG_PID`` names if
set. Without ``NOTIFY_SOCKET`` (not under systemd) nothing is sent. Sending
never blocks: the socket is non-blocking and a full queue drops the datagram.
Here, below both the daemon and the supervisor, so each imports only this.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class Notifier:
    """sd_notify(3) without libsystemd: one datagram per message."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address
        self.sent: list[str] = []
        self._sock: socket.socket | None = None
        if address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.setblocking(False)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> bool:
        """Send ``KEY=value`` lines as one message; False if not sent."""
        if self._sock is None:
            return False
        message = "\n".join(lines)
        try:
            self._sock.sendto(message.encode(), self.address)
        except OSError as exc:  # a full queue, or systemd gone: never worth blocking for
            log.debug("sd_notify %r not sent: %s", message, exc)
            return False
        self.sent.append(message)
        del self.sent[:-20]
        return True

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def watchdog_interval(env: Mapping[str, str] | None = None) -> float | None:
    """Seconds between pings systemd asks for (half of WatchdogSec), or None."""
    env = os.environ if env is None else env
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (a parent that started us)
    return int(usec) / 2 / 1_000_000
