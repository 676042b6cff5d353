"""The daemon's side of a connector's limit claims: its own sent on to the supervisor, the
supervisor's own (station and cable rating, orphan cap) mirrored for the status.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from chargepoint.safety.limits import LimitClaims
from chargepoint.supervisor import wire


class RemoteClaims(LimitClaims):
    """The connector's limit claims: the daemon's own are sent on, the supervisor's mirrored."""

    def __init__(self, send: Callable[[str, float | None], None]) -> None:
        super().__init__()
        self._send = send
        #: What each of the daemon's sources asked, before clamping to the rating.
        self._wanted: dict[str, float] = {}

    def set(self, source: str, amps: float | None) -> None:
        if source in wire.OWN_CLAIMS:
            raise ValueError(f"the {source} claim belongs to the safety supervisor")
        if amps is None:
            self._wanted.pop(source, None)
        else:
            self._wanted[source] = float(amps)
        super().set(source, amps)
        self._send(source, None if amps is None else min(amps, self.ceiling()))

    def ceiling(self) -> float:
        """The rating the supervisor enforces now (station, and cable while one is in)."""
        return min((v for k, v in self.snapshot().items() if k in ("station", "cable")), default=math.inf)

    def mirror(self, claims: dict[str, float], *, everything: bool) -> None:
        """Take the supervisor's claims: its own always, the daemon's too at (re)attach.

        A claim above the rating is sent clamped to it (the supervisor refuses more; the rating
        binds anyway). When the rating changes (another cable), the daemon's claims are sent again
        against the new one: a 32 A limit sent as 20 A for a 20 A cable must not stay 20 A for the
        next car's 32 A cable.
        """
        before = self.ceiling()
        self._take(claims, everything)
        if not everything and self.ceiling() != before:
            wanted = self._wanted
            for name, amps in self.own().items():
                self._send(name, min(wanted.get(name, amps), self.ceiling()))

    def _take(self, claims: dict[str, float], everything: bool) -> None:
        with self._lock:
            for name in list(self._claims):
                if (everything or name in wire.OWN_CLAIMS) and name not in claims:
                    del self._claims[name]
            for name, amps in claims.items():
                if everything or name in wire.OWN_CLAIMS:
                    self._claims[name] = float(amps)
            self._resolved = None

    def own(self) -> dict[str, float]:
        return {k: v for k, v in self.snapshot().items() if k not in wire.OWN_CLAIMS}
