"""Network connection profiles: where the station may connect, in slots, in order of preference.

A CSMS can give the station further ways to reach it (another URL, a higher
security profile) and an order to try them in, so that it can move the station
to a new endpoint without a technician and the station falls back to a known
good one when the new one fails. Slot 0 is the configuration file's connection
(``[ocpp] csms_url`` with the current security profile) and cannot be
overwritten; the CSMS fills slots ``NETWORK_SLOTS``. The profiles and their
order are settings (``network_profiles``, ``network_priority``), so they are
persisted with the other settings and survive a restart.

The link uses ``in_priority()``: the profiles to try, best first, each tried
``attempts`` times before the next; once connected through one it calls
``connected(slot)`` so the station's security profile follows the profile in
use (it only ever goes up). Nothing here lowers the security profile: a profile
below the current one is refused when it is offered.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlparse

from chargepoint.config.csms_url import url_problem
from chargepoint.core.settings import NETWORK_SLOTS, SetResult, Settings

#: The profile of the configuration file's connection.
FILE_SLOT = 0
#: Security profiles this station can connect with (3 with its own certificate: certificates.py).
SUPPORTED_SECURITY_PROFILES = (0, 1, 2, 3)


@dataclass(frozen=True)
class NetworkProfile:
    """One way to reach the CSMS."""

    slot: int
    url: str
    security_profile: int
    #: How long to wait for an answer to a CALL over this connection.
    message_timeout_s: int
    #: What the CSMS sent besides (interface, OCPP version, transport), kept as the
    #: protocol adapter gave it: stored and shown, not interpreted by the core.
    details: dict[str, Any] = field(default_factory=dict)


class NetworkProfiles:
    """The slots, kept in the settings; one instance per view, all reading the same settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        settings.guards["network_priority"] = self._priority_guard

    # -------------------------------------------------------------- reading
    def _stored(self) -> dict[str, dict[str, Any]]:
        return json.loads(self.settings.current.network_profiles)

    def profile(self, slot: int) -> NetworkProfile | None:
        """The profile in ``slot`` (slot 0: the configuration file's), or None if the slot is empty."""
        if slot == FILE_SLOT:
            ocpp = self.settings.config.ocpp
            return NetworkProfile(FILE_SLOT, ocpp.csms_url, self.settings.current.security_profile,
                                  int(ocpp.response_timeout_s))
        data = self._stored().get(str(slot))
        return None if data is None else NetworkProfile(**data)

    def slots(self) -> list[int]:
        """Slots holding a profile, slot 0 included."""
        return [FILE_SLOT, *sorted(int(s) for s in self._stored())]

    def priority(self) -> list[int]:
        return [int(s) for s in self.settings.current.network_priority]

    def in_priority(self) -> list[NetworkProfile]:
        """The profiles to try, best first (``network_priority``); never empty: slot 0 ends it.

        Slot 0 is appended when the priority leaves it out, so a station whose
        CSMS listed only slots that fail still reaches the endpoint it was
        installed with.
        """
        found = [p for p in map(self.profile, self.priority()) if p is not None]
        if all(p.slot != FILE_SLOT for p in found):
            found.append(self.profile(FILE_SLOT))  # type: ignore[arg-type]
        return found

    @property
    def attempts(self) -> int:
        """Connection attempts through one profile before the next is tried."""
        return self.settings.current.network_profile_attempts

    # -------------------------------------------------------------- writing
    def refusal(self, profile: NetworkProfile) -> str | None:
        """Why ``profile`` cannot be stored, in words; None if it can."""
        if profile.slot not in NETWORK_SLOTS:
            return (f"slot {profile.slot} is not one of {', '.join(map(str, NETWORK_SLOTS))} "
                    f"(slot {FILE_SLOT} is the configuration file's connection)")
        if problem := url_problem(profile.url):
            return problem
        url = urlparse(profile.url)
        current = self.settings.current.security_profile
        wanted = profile.security_profile
        if wanted < current:
            return f"security profile {wanted} is below the current {current}: downgrading is not allowed"
        if wanted not in SUPPORTED_SECURITY_PROFILES:
            return f"security profile {wanted} is not supported"
        if wanted in (1, 2) and not self.settings.current.authorization_key:
            return f"security profile {wanted} needs a Basic auth password first"
        if wanted >= 2 and url.scheme != "wss":
            return f"security profile {wanted} needs a wss:// URL"
        if wanted < 2 and url.scheme != "ws":
            return f"security profile {wanted} connects without TLS: a ws:// URL"
        if profile.message_timeout_s < 1:
            return "the message timeout must be at least 1 s"
        return None

    def store(self, profile: NetworkProfile) -> str | None:
        """Keep ``profile`` in its slot (replacing what was there); the refusal if it cannot."""
        reason = self.refusal(profile)
        if reason is not None:
            return reason
        stored = self._stored()
        stored[str(profile.slot)] = asdict(profile)
        if self.settings.set("network_profiles", json.dumps(stored, sort_keys=True)) is SetResult.REJECTED:
            return "the profile could not be stored"
        return None

    def connected(self, slot: int) -> None:
        """The link is connected through ``slot``: the security profile rises to that profile's."""
        profile = self.profile(slot)
        if profile is not None and profile.security_profile > self.settings.current.security_profile:
            self.settings.set("security_profile", str(profile.security_profile))

    def _priority_guard(self, value: object) -> str | None:
        empty = [s for s in str(value).split(",") if int(s) not in self.slots()]
        if empty:
            return f"network_priority lists slot(s) without a profile: {', '.join(empty)}"
        return None
