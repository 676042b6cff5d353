"""The names the dashboard answers to: a Host allow-list against DNS rebinding.

A foreign web page can make a browser resolve the page's own name to this
station (DNS rebinding) and then read the answers as if they were its own:
the station state and ``/metrics`` without a password, password guesses
from 127.0.0.1 with one. Such a request always carries the foreign name in
its ``Host`` header, so every route refuses a Host that is not one of this
station's names: ``localhost``, the listen address, the machine's host name
(and its ``.local`` mDNS form), the names in ``[web] allowed_hosts``, and any
IP address literal (a browser sends one only when the address itself was
typed, and no foreign page has that origin).
"""

from __future__ import annotations

import ipaddress
import socket

from chargepoint.config.web import WebConfig


def allowed_names(config: WebConfig, hostname: str | None = None) -> frozenset[str]:
    """The host names (lower case, without port) this server answers to."""
    machine = (hostname if hostname is not None else socket.gethostname()).lower().rstrip(".")
    names = {"localhost", config.listen.lower(), *config.allowed_hosts}
    if machine:
        names |= {machine, machine.split(".")[0] + ".local"}
    return frozenset(names)


def host_name(header: str) -> str:
    """The name in a Host header, lower case, without port or trailing dot ("" if there is none)."""
    host = header.strip().lower()
    if host.startswith("["):  # [v6 address]:port
        return host[1:host.find("]")] if "]" in host else ""
    if host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def is_allowed(header: str | None, names: frozenset[str]) -> bool:
    """Whether a request with this Host header may be served."""
    if not header:
        return False
    name = host_name(header)
    if name in names:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True
