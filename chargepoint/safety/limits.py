"""Charging current limits as named claims, resolved in one place.

Several parties restrict the current offered to the EV: the cable's PP rating,
the station's rating, the operator's setting, OCPP smart charging, a load
manager, thermal derating. Each sets and clears only its own named entry; the
offered current is the minimum, and the status can say which claim binds.
Keeping them apart prevents one writer from silently overwriting another's
limit, a failure mode seen in other charger stacks.

The claims live beside the safety loop because the loop resolves them at every
step, on its own thread, without waiting for the event loop: a lowered limit
reaches the PWM within one tick. The core and the other sources only set their
own claims.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Resolved:
    """The result of resolving all claims."""

    amps: float
    binding: str  # name of the claim that sets the minimum ("" if none)


class LimitClaims:
    """Thread-safe set of named current limits (amperes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._claims: dict[str, float] = {}
        #: The last resolution, until a claim changes: the safety loop asks every tick,
        #: claims change a few times a session.
        self._resolved: Resolved | None = None

    def set(self, source: str, amps: float | None) -> None:
        """Set (or with ``None`` clear) the claim of ``source``."""
        if amps is not None and amps < 0:
            raise ValueError(f"limit from {source!r} must not be negative: {amps}")
        with self._lock:
            if amps is None:
                self._claims.pop(source, None)
            else:
                self._claims[source] = float(amps)
            self._resolved = None

    def get(self, source: str) -> float | None:
        with self._lock:
            return self._claims.get(source)

    def snapshot(self) -> dict[str, float]:
        with self._lock:
            return dict(self._claims)

    def resolve(self) -> Resolved:
        """The minimum over all claims; infinity with no binding claim if none."""
        resolved = self._resolved  # one atomic read; set() clears it under the lock
        if resolved is not None:
            return resolved
        with self._lock:
            if not self._claims:
                resolved = Resolved(float("inf"), "")
            else:
                source = min(self._claims, key=lambda name: (self._claims[name], name))
                resolved = Resolved(self._claims[source], source)
            self._resolved = resolved
            return resolved
