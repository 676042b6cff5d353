"""Which security profile the station connects with, and what happens when a new one fails.

The CSMS may raise the profile (1 Basic auth, 2 Basic auth over TLS, 3 TLS
with the station's client certificate), never lower it; a profile is taken
only when the station has what it needs (a password for 1 and 2, a wss://
URL for 2 and 3, its own certificate and key for 3). The station then
reconnects with the new profile. If that connection cannot be made within
``network_profile_attempts`` tries, the station goes back to the profile that
last connected (the one rule that lowers it, and only to a profile this CSMS
accepted before) and records the fallback as a security event, so the CSMS
learns that its change did not take. Once a connection is made with the new
profile it is the one to fall back to from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from chargepoint.core.security.security_log import SecurityEvent, SecurityLog
from chargepoint.core.settings import Settings

log = logging.getLogger(__name__)

#: Profiles this station can connect with.
SUPPORTED = (0, 1, 2, 3)


class ProfileSwitch:
    """Guards ``security_profile``, and falls back when a raised profile does not connect."""

    def __init__(self, settings: Settings, csms_url: str, security_log: SecurityLog,
                 has_client_certificate: Callable[[], bool]) -> None:
        self.settings = settings
        self.csms_url = csms_url
        self.security_log = security_log
        self.has_client_certificate = has_client_certificate
        #: The profile that last connected (the one to go back to); the current one at start.
        self.confirmed = settings.current.security_profile
        self.failures = 0
        self._falling_back = False
        settings.guards["security_profile"] = self.refusal
        settings.listeners.append(self._changed)

    def refusal(self, value: object) -> str | None:
        """Why the profile cannot become ``value`` (None: it can)."""
        target = int(value)  # type: ignore[call-overload]
        if self._falling_back:
            return None
        current = self.settings.current.security_profile
        if target < current:
            return "downgrading the security profile is not allowed"
        if target not in SUPPORTED:
            return f"security profile {target} is not supported"
        if target in (1, 2) and not self.settings.current.authorization_key:
            return "profile 1 and 2 need an authorization_key first"
        if target >= 2 and not self.csms_url.startswith("wss://"):
            return f"profile {target} needs a wss:// CSMS URL"
        if target == 3 and not self.has_client_certificate():
            return "profile 3 needs the station's own certificate first (a signed certificate request)"
        return None

    def _changed(self, name: str, value: object) -> None:
        if name in ("security_profile", "authorization_key") and not self._falling_back:
            shown = value if name == "security_profile" else "(changed)"
            self.security_log.record(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                                     f"{name} = {shown}")
        if name == "security_profile":
            self.failures = 0

    def in_use(self) -> int:
        """The profile of the link as it is (or last was) connected: the lower of the setting and
        the confirmed one, so a raise not yet connected does not count (the firmware policy)."""
        return min(self.settings.current.security_profile, self.confirmed)

    def connected(self) -> None:
        """The link is connected with the current profile: it is the one to fall back to now."""
        self.confirmed = self.settings.current.security_profile
        self.failures = 0

    def failed(self) -> bool:
        """A connection attempt failed; True when this sent the station back to the previous profile."""
        current = self.settings.current.security_profile
        if current == self.confirmed:
            return False
        self.failures += 1
        attempts = self.settings.current.network_profile_attempts
        if self.failures < attempts:
            return False
        tries = self.failures
        log.warning("security profile %d did not connect in %d attempts: back to profile %d",
                    current, tries, self.confirmed)
        self._falling_back = True
        try:
            self.settings.set("security_profile", str(self.confirmed))
        finally:
            self._falling_back = False
        self.security_log.record(SecurityEvent.RECONFIGURATION_OF_SECURITY_PARAMETERS,
                                 f"security profile {current} failed to connect {tries} times; "
                                 f"back to profile {self.confirmed}")
        self.failures = 0
        return True
