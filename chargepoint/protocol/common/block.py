"""A functional block: the handlers of one job (smart charging, reservations, firmware...) as an
object of its own, given a typed context and composed into the connection's peer.

The adapter builds each of its version's blocks with itself as the context and
routes the CSMS's CALLs to them (``RobustPeer.add_block``): no block is a mixin
of the peer, none reaches another's state, and what a block may use is written
down in its context's type (``BlockContext``, widened per version).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from chargepoint.config import Config
from chargepoint.core.services import Services
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.outbox import Outbox
from hal.clock import Clock


class CertificateWants(Protocol):
    """The connection's security sender, as a block asks it for a new certificate."""

    def want_certificate(self) -> None: ...


class BlockContext(Protocol):
    """What every block is given: the station and the services around it, and the connection's means
    to speak."""

    station: Station
    services: Services
    outbox: Outbox
    settings: Settings
    config: Config
    clock: Clock
    security_session: CertificateWants

    async def call(self, request: Any, *, built_here: bool = False,
                   after_send: Callable[[], object] | None = None) -> Any:
        """One CALL to the CSMS (OCPPError on a CALLERROR, TimeoutError when unanswered)."""
        ...

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run follow-up work as a task of the connection."""
        ...

    def queue(self, request: Any) -> None:
        """Send a report while connected, in order with status and readings."""
        ...

    def send_triggered(self, request: Any, then: Callable[[Any], None] | None = None) -> None:
        """Send a CALL a TriggerMessage asked for, ``then`` given its answer."""
        ...


ContextT = TypeVar("ContextT", bound=BlockContext)


class Block(Generic[ContextT]):
    """One block's handlers (``@on``/``@after`` methods), over its context."""

    def __init__(self, context: ContextT) -> None:
        self.context = context
