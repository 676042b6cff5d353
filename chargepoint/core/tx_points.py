"""When a transaction begins and ends: the station's start and stop points.

A transaction is the billing unit the operator sees, and operators bill different
moments: the time an EV is plugged in, the time from the authorization, or only
the charging. So the moments are settings (``tx_start_points``, ``tx_stop_points``):
each point is a fact about a connector that holds for a while; a transaction
begins when the first of its start points holds, and ends as soon as one of its
stop points no longer does.

The facts this hardware sees:

* ``ev_connected``: the pilot reads an EV (B, C or D).
* ``authorized``: an identifier is authorized on the connector and its holder has
  not ended the authorization.
* ``power_path_closed``: both; the station closes the contactor then (so an
  operator's protocol that knows only this start, OCPP 1.6, keeps its meaning).
* ``energy_transfer``: the contactor is closed under an authorization: the EV is
  in state C and takes energy.

A bay detector and signed meter readings are not fitted: those points are
refused where they are set (``config.model.TX_POINTS``), never accepted and ignored.

How an ending fact is seen: the EV unplugged ends ``ev_connected`` and
``energy_transfer``; it ends ``authorized`` and ``power_path_closed`` when
``stop_tx_on_ev_disconnect`` says an unplug ends the authorization (else the
transaction waits for the EV to come back). The identifier presented again (or
the operator's or the central system's stop) ends ``authorized``,
``power_path_closed`` and ``energy_transfer``; with only ``ev_connected`` as the
stop point the energy stops and the transaction goes on until the EV leaves.
The flow of energy ending (the EV or the station pausing) ends ``energy_transfer``.

This module says which point holds and what ends a transaction; the station
(``station.py``, ``connector_events.py``, ``transactions.py``) acts on it.
"""

from __future__ import annotations

from chargepoint.core.connector import ConnectorState
from chargepoint.core.events import TxPoint
from chargepoint.core.settings import Settings

#: The order a start is attributed in when several points hold at once: an authorization
#: names who charges, the EV alone does not.
_START_ORDER = (TxPoint.AUTHORIZED, TxPoint.POWER_PATH_CLOSED, TxPoint.EV_CONNECTED, TxPoint.ENERGY_TRANSFER)
#: The points the station begins and ends transactions at for a protocol that knows no others.
DEFAULT_START = frozenset({TxPoint.POWER_PATH_CLOSED})
DEFAULT_STOP = frozenset({TxPoint.EV_CONNECTED, TxPoint.AUTHORIZED})


def _points(items: list[str]) -> frozenset[TxPoint]:
    return frozenset(TxPoint.parse(item) for item in items)


class TxPoints:
    """The start and stop points in force, read from the settings when used."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        #: The operator's protocol knows only the default points (OCPP 1.6: a transaction has an
        #: identifier from its start): the settings are not used, and an unplug ends a transaction
        #: as ``stop_tx_on_ev_disconnect`` says. So from the configuration at first, then the
        #: protocol adapter of each connection says it.
        self.fixed = not settings.config.ocpp.tx_points_apply

    @property
    def start(self) -> frozenset[TxPoint]:
        if self.fixed:
            return DEFAULT_START
        return _points(self.settings.current.tx_start_points) or DEFAULT_START

    @property
    def stop(self) -> frozenset[TxPoint]:
        if self.fixed:
            return DEFAULT_STOP
        return _points(self.settings.current.tx_stop_points) or DEFAULT_STOP

    # ------------------------------------------------------------- start
    def due(self, c: ConnectorState) -> TxPoint | None:
        """The start point that holds on ``c`` (which a transaction begins at now), or None."""
        start = self.start
        return next((p for p in _START_ORDER if p in start and holds(p, c)), None)

    def energy_before_start(self, c: ConnectorState) -> bool:
        """Energy may flow before the transaction begins: it begins with the flow (the only start
        point left is energy transfer, and the driver is authorized with the EV plugged in)."""
        return (TxPoint.ENERGY_TRANSFER in self.start and c.transaction is None
                and c.session is not None and c.session.authorized and c.plugged)

    def starts_with_ev(self) -> bool:
        """A plug-in alone begins a transaction (before any identifier)."""
        return TxPoint.EV_CONNECTED in self.start

    def starts_without_ev(self) -> bool:
        """An authorization alone begins a transaction (before any EV)."""
        return TxPoint.AUTHORIZED in self.start

    # -------------------------------------------------------------- stop
    def ends_at_stop_presented(self) -> bool:
        """The holder's stop (a second tap, the operator's stop) ends the transaction; else only
        the energy stops and the transaction goes on until the EV leaves."""
        return bool(self.stop & {TxPoint.AUTHORIZED, TxPoint.POWER_PATH_CLOSED, TxPoint.ENERGY_TRANSFER})

    def ends_at_unplug(self) -> bool:
        """The EV unplugged ends an authorized transaction (see the module doc)."""
        by_setting = self.settings.current.stop_tx_on_ev_disconnect
        if self.fixed:
            return by_setting
        return bool(self.stop & {TxPoint.EV_CONNECTED, TxPoint.ENERGY_TRANSFER}) or by_setting

    def ends_with_energy(self) -> bool:
        """The flow of energy ending ends the transaction."""
        return TxPoint.ENERGY_TRANSFER in self.stop


def holds(point: TxPoint, c: ConnectorState) -> bool:
    """Whether ``point`` holds on ``c`` now."""
    authorized = c.session is not None and c.session.authorized
    if point is TxPoint.EV_CONNECTED:
        return c.plugged
    if point is TxPoint.AUTHORIZED:
        return authorized
    if point is TxPoint.POWER_PATH_CLOSED:
        return authorized and c.plugged
    return authorized and c.plugged and c.evse_status is not None and c.evse_status.contactor_closed
