"""What the link to the CSMS is given, and what it keeps of an outage.

The settings of one link (where, who, which versions, the timeouts), the
Basic credentials' header, the backoff between attempts and the outage record
the status shows. The link itself is ``link.py``.
"""

from __future__ import annotations

import base64
import random
from dataclasses import dataclass


class NoCommonVersion(ConnectionError):
    """The CSMS selected none of the subprotocols (OCPP versions) the station offered."""


@dataclass(frozen=True)
class LinkSettings:
    url: str
    identity: str
    #: The subprotocol offered first (the preferred OCPP version).
    subprotocol: str
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 300.0
    ping_timeout_s: float = 20.0
    open_timeout_s: float = 10.0
    close_timeout_s: float = 2.0
    ca_bundle: str = ""
    #: Every subprotocol offered, in order of preference (empty: ``subprotocol`` alone).
    subprotocols: tuple[str, ...] = ()

    @property
    def offered(self) -> tuple[str, ...]:
        return self.subprotocols or (self.subprotocol,)


def basic_auth_header(identity: str, authorization_key: str) -> str:
    """HTTP Basic credentials: the identity and the authorization key's octets."""
    secret = identity.encode() + b":" + bytes.fromhex(authorization_key)
    return "Basic " + base64.b64encode(secret).decode("ascii")


class Backoff:
    """Exponential backoff with full jitter between ``low`` and ``high``."""

    def __init__(self, low: float, high: float, rng: random.Random | None = None) -> None:
        self.low = low
        self.high = high
        self.attempt = 0
        self.rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.high, self.low * (2 ** self.attempt))
        self.attempt += 1
        return self.rng.uniform(self.low, max(self.low, ceiling))

    def reset(self) -> None:
        self.attempt = 0


@dataclass
class Outage:
    """The link's current outage, as the status shows it (all None/0 while connected)."""

    #: Wall-clock time the link went down (or the first attempt failed), or None.
    since: float | None = None
    #: The last error, in words, and how many attempts in a row ended with it.
    last_error: str | None = None
    repeats: int = 0
    #: Failed attempts to connect since the link went down.
    attempts: int = 0
    #: When the next attempt is due (the link's monotonic clock), or None.
    next_attempt: float | None = None
