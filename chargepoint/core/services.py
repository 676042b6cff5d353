"""The services the daemon builds around the station, handed over once, complete.

Charging profiles, certificates and the security log, firmware updates,
diagnostics uploads and the display's messages each need the station, so they
are built after it; the station therefore never holds them. The daemon builds
them all, then this one frozen bundle, and gives it to whoever speaks for the
station: each OCPP adapter (and through it every functional block) and the
local control API. None for a service means this assembly has none (a test's
station without firmware updates, say): a request for it is refused, never
half-served.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chargepoint.core.diagnostics import Diagnostics
    from chargepoint.core.display_messages import DisplayMessages
    from chargepoint.core.energy.smart_charging import SmartCharging
    from chargepoint.core.firmware import FirmwareManager
    from chargepoint.core.security.services import Security


@dataclass(frozen=True)
class Services:
    """What the operator's requests reach besides the station itself."""

    smart_charging: SmartCharging | None = None
    security: Security | None = None
    firmware: FirmwareManager | None = None
    diagnostics: Diagnostics | None = None
    display_messages: DisplayMessages | None = None
