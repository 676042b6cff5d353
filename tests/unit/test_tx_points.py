"""Start and stop points in the station core, in simulated time (the rig of ``test_station.py``).

What the wire tests cannot pin down to the simulated second: a transaction begun by an
authorization alone that no EV comes to ends at the connection timeout; a transaction the EV
began gets its driver from the operator's remote start too; energy flows only once someone is
authorized; a reserved connector begins nothing for the EV alone; and a protocol that knows only
1.6's points keeps them whatever the settings say.
"""

from __future__ import annotations

from chargepoint.core.events import (
    Activity,
    AuthStatus,
    IdToken,
    StopReason,
    TokenType,
    TransactionAuthorized,
    TxPoint,
)
from chargepoint.core.reservations import Reservation, ReserveResult
from chargepoint.core.storage.outbox import OpenTransaction
from tests.unit.test_station import CARD, TICK, Bench, bench

__all__ = ["bench"]  # the fixture


async def test_an_authorized_start_no_ev_comes_to_ends_at_the_connection_timeout(bench: Bench) -> None:
    rig = await bench.rig(tx_start_points="authorized", tx_stop_points="authorized",
                          connection_timeout_s="30")
    assert await rig.tap() == AuthStatus.ACCEPTED
    await rig.settle()
    [started] = rig.started
    assert (started.point, started.plugged, started.token) == (TxPoint.AUTHORIZED, False, CARD)
    await rig.run(30 - TICK)
    assert rig.stopped == [], "ended before the timeout"
    await rig.run_until(lambda: rig.stopped, 2.0, "the end at the timeout")
    assert rig.stopped[0].reason is StopReason.TIMEOUT
    assert rig.station.view(1).session is None


async def test_an_ev_started_transaction_has_no_energy_until_a_remote_start_names_its_driver(
        bench: Bench) -> None:
    rig = await bench.rig(tx_start_points="ev_connected", tx_stop_points="ev_connected")
    rig.world.plug_in()
    await rig.run_until(lambda: rig.started, 2.0, "the start at plug-in")
    [started] = rig.started
    assert (started.point, started.token) == (TxPoint.EV_CONNECTED, None)
    await rig.run(3.0)
    assert not rig.evse.status.charging_allowed and not rig.world.contactor.closed
    assert "an EV whose driver is not known yet" in str(rig.station.start_refusal(1, CARD))
    driver = IdToken("APP-7", TokenType.CENTRAL)
    result = rig.station.remote_start(driver, 1, remote_start_id=7)
    assert result.accepted and result.transaction_id == started.local_id
    await rig.run_until(lambda: rig.status.activity is Activity.CHARGING, 3.0, "charging")
    [named] = [e for e in rig.outbox.events if isinstance(e, TransactionAuthorized)]
    assert (named.local_id, named.token, named.authorized, named.remote_start_id, named.remote) == (
        started.local_id, driver, True, 7, True)
    assert rig.station.active_transactions()[0][1].remote_start_id == 7


async def test_a_reserved_connector_begins_nothing_for_the_ev_alone(bench: Bench) -> None:
    rig = await bench.rig(tx_start_points="ev_connected", tx_stop_points="ev_connected")
    held = Reservation(1, 1, CARD, rig.clock.time() + 600)
    assert await rig.finish(rig.station.reservations.reserve(held)) is ReserveResult.ACCEPTED
    rig.world.plug_in()
    await rig.run(2.0)
    assert rig.started == []
    assert await rig.tap() == AuthStatus.ACCEPTED  # the holder: the EV is in, the transaction begins
    await rig.run_until(lambda: rig.started, 2.0, "the start")
    assert rig.started[0].token == CARD and rig.started[0].reservation_id == 1


async def test_a_protocol_with_fixed_points_keeps_them_whatever_the_settings_say(bench: Bench) -> None:
    rig = await bench.rig(tx_start_points="ev_connected", tx_stop_points="ev_connected",
                          stop_tx_on_ev_disconnect="false")
    rig.station.tx_points.fixed = True  # an OCPP 1.6 connection: a transaction begins with an identifier
    rig.world.plug_in()
    await rig.run(2.0)
    assert rig.started == []
    await rig.charge()
    [started] = rig.started
    assert started.point is TxPoint.POWER_PATH_CLOSED and started.token == CARD
    rig.world.unplug()  # 1.6: StopTransactionOnEVSideDisconnect false keeps it open
    await rig.run(2.0)
    assert rig.stopped == [] and rig.station.active_transactions()
    assert await rig.tap() is None
    await rig.run_until(lambda: rig.stopped, 10.0, "the stop by the card")
    assert rig.stopped[0].reason is StopReason.LOCAL


async def test_a_card_begins_nothing_on_a_connector_whose_transaction_is_being_taken_up(
        bench: Bench) -> None:
    """After a restart the cut-off transaction's connector waits for the recovery's decision: a
    card then would begin a second transaction beside the one that may carry on."""
    rig = await bench.rig(tx_start_points="ev_connected", tx_stop_points="ev_connected")
    cut = OpenTransaction("OLD", 1, None, 100.0, 0.0, 100.0, 0.0)
    rig.station.hold_for_recovery([cut], frozenset())
    rig.world.plug_in()
    await rig.run(1.0)
    assert await rig.tap() is None
    assert rig.started == [] and rig.station.view(1).session is None
    assert "taking up its transaction" in str(rig.station.start_refusal(1, CARD))
