"""What a hal backend hands the daemon: per connector the supervisor's proxy of its safety loop, a
meter, limits and a lock (``core.connector.ConnectorHardware``), plus the clock, the card reader and,
on the simulation, the worlds.

The safety loops run in the supervisor (``chargepoint.supervisor.hardware``); only the simulation's
in-process assembly (``backends/sim.py``, for tests and the energy demos) runs them in the daemon's
own process. Nothing in this module imports them, so a daemon attached to a supervisor stays free
of modules it never runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chargepoint.core.connector import ConnectorHardware
from hal.clock import Clock
from hal.interfaces import CardReader

if TYPE_CHECKING:
    from hal.sim.world import SimWorld  # a board's hardware never loads the simulation


@dataclass
class Hardware:
    """What the hal backend provides for the station."""

    clock: Clock
    connectors: list[ConnectorHardware]
    card_reader: CardReader | None
    #: The simulated worlds per EVSE (empty on real hardware).
    worlds: dict[int, SimWorld] = field(default_factory=dict)
    #: Background jobs the hardware needs while the daemon runs (simulation only).
    jobs: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: The channel to the safety supervisor (None: the safety loops run in this process).
    supervisor: Any = None
    #: Connectors whose energy grant the supervisor still held when this daemon attached: their
    #: open transaction continues rather than being stopped for power loss.
    continuing: frozenset[int] = frozenset()
    #: Connectors whose EV left while no daemon was attached (the supervisor then ended the grant),
    #: and when (the station's clock): their open transaction ends as an unplug ends it, then.
    ev_left: Mapping[int, float] = field(default_factory=dict)

    def close(self) -> None:
        """Release what the hardware holds besides the safety loops (the reader)."""
        if self.card_reader is not None:
            self.card_reader.close()
