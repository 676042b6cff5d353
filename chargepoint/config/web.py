"""The ``[web]`` section: the dashboard and metrics server, off unless configured.

Kept in its own module beside the other sections' parsing because its rules
are about exposure (which address, which clients may scrape) rather than the
station itself. The one rule that needs the state directory (a password must
be set before listening beyond loopback) is checked when the daemon starts,
by ``chargepoint.web.access``, since the file is not part of the config.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chargepoint.config.reader import Reader, table

#: Who may read ``/metrics`` without a login: "loopback" (clients on 127.0.0.0/8 or ::1),
#: "open" (anyone who reaches the port, for a Prometheus on the LAN), "login" (logged-in
#: browsers only) or "off".
METRICS_ACCESS = ("loopback", "open", "login", "off")
#: What a name in ``allowed_hosts`` must look like: DNS labels (letters, digits, hyphens) joined by dots.
HOST_NAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_]([a-z0-9_-]{0,62}))*$")


@dataclass(frozen=True)
class WebConfig:
    """The web dashboard and Prometheus metrics (``chargepoint.web``)."""

    enabled: bool = False
    #: An IP address; anything but loopback needs ``chargepoint web passwd`` first.
    listen: str = "127.0.0.1"
    port: int = 8080
    #: PEM certificate (chain) and private key: serve HTTPS instead of HTTP.
    tls_cert: str = ""
    tls_key: str = ""
    metrics: str = "loopback"
    #: Host names (besides localhost, the listen address, the machine's name and IP literals) that
    #: browsers may use for the dashboard, e.g. a DNS name or a reverse proxy's public name.
    allowed_hosts: tuple[str, ...] = ()


def is_loopback(address: str) -> bool:
    """Whether ``address`` (an IP literal or "localhost") only reaches this machine."""
    if address == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def parse_web(file: str, data: dict[str, Any]) -> WebConfig:
    r = Reader(file, table(file, data, "web"), "web")
    d = WebConfig()
    cfg = WebConfig(
        enabled=r.boolean("enabled", d.enabled),
        listen=r.string("listen", d.listen),
        port=r.number("port", d.port, low=1, high=65535, integer=True),
        tls_cert=r.string("tls_cert", d.tls_cert),
        tls_key=r.string("tls_key", d.tls_key),
        metrics=r.string("metrics", d.metrics),
        allowed_hosts=tuple(h.lower().rstrip(".") for h in r.string_list("allowed_hosts", d.allowed_hosts)),
    )
    if cfg.listen != "localhost":
        try:
            ipaddress.ip_address(cfg.listen)
        except ValueError:
            r.refuse("listen", f"must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::), not {cfg.listen!r}")
    if cfg.metrics not in METRICS_ACCESS:
        r.refuse("metrics", f"must be one of {', '.join(METRICS_ACCESS)}, not {cfg.metrics!r}")
    for host in cfg.allowed_hosts:
        if not HOST_NAME.match(host):
            r.refuse("allowed_hosts", f"must be host names without scheme or port "
                                      f"(e.g. \"station.example\"), not {host!r}")
    if bool(cfg.tls_cert) != bool(cfg.tls_key):
        r.refuse("tls_key" if cfg.tls_cert else "tls_cert", "tls_cert and tls_key go together")
    for name in ("tls_cert", "tls_key"):
        path = getattr(cfg, name)
        if path and not Path(path).is_file():
            r.refuse(name, f"file not found: {path}: give the path of the PEM file (absolute, or from the "
                           "directory the daemon starts in)")
    r.finish()
    return cfg
