"""Reservations in the station core, end to end in simulated time over the physical simulation.

The rig is ``test_station``'s (a LoopClock the test advances, the safety loops stepped by hand,
thread work waited for), with one or two connectors and an authorizer that knows groups. A
reservation is made through ``Station.reservations`` as an adapter makes it; cards are tapped
at the reader and EVs plugged in as a driver would.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chargepoint.config import Config, parse
from chargepoint.core.events import AuthResult, AuthStatus, IdToken, TokenType
from chargepoint.core.reservations import Reservation, ReservationEnd, ReserveResult
from chargepoint.core.settings import Settings
from chargepoint.core.station import Station
from chargepoint.core.storage.store import Store
from hal.sim.world import SimWorld
from tests.unit.assembly import assemble_connector
from tests.unit.test_station import (
    METER_START_WH,
    TICK,
    Bench,
    CountingExecutor,
    LoopClock,
    RecordingOutbox,
    Rig,
    ThreadWork,
)

CARD = IdToken("CARD", TokenType.ISO14443)
OTHER = IdToken("OTHER", TokenType.ISO14443)
MEMBER = IdToken("MEMBER", TokenType.ISO14443)
#: The identifiers' groups as the CSMS knows them.
GROUPS = {"CARD": "FLEET", "MEMBER": "FLEET", "OTHER": "VISITORS"}


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    work = ThreadWork()
    asyncio.get_running_loop().set_default_executor(CountingExecutor(work))
    bench = Bench(tmp_path, work)
    yield bench
    await bench.close()


class ReservationRig(Rig):
    """``test_station.Rig`` with ``count`` simulated connectors and an authorizer that says groups."""

    def __init__(self, config: Config, clock: LoopClock, work: ThreadWork,
                 types: tuple[str | None, ...] = ()) -> None:
        self.clock = clock
        self.work = work
        self.worlds = [SimWorld(clock, meter_start_wh=METER_START_WH, cable_ohms=220.0)
                       for _ in config.connectors]
        self.world = self.worlds[0]
        self.outbox = RecordingOutbox()
        hardware = [assemble_connector(config, cc, clock, pilot=w.pilot, contactor=w.contactor,
                                       faults=w.faults, meter=w.meter, lock=w.lock)
                    for cc, w in zip(config.connectors, self.worlds, strict=True)]
        kinds = [*types, *[None] * (len(hardware) - len(types))]
        hardware = [dataclasses.replace(hw, connector_type=kind)
                    for hw, kind in zip(hardware, kinds, strict=True)]
        self.evses = [hw.evse for hw in hardware]
        for evse in self.evses:
            evse.start = lambda: None  # type: ignore[method-assign]  # stepped by the rig
        self.evse = self.evses[0]
        self.settings = Settings(config)
        self.station = Station(hardware, clock, self.outbox, self.settings)
        self.statuses = []
        self.station.status_listeners.append(self.statuses.append)
        self.auth_calls = []
        self.auth_answer = AuthStatus.ACCEPTED
        self.station.authorizer = self.authorize
        self.ended: list[tuple[int, ReservationEnd]] = []
        self.station.reservations.ended_listeners.append(lambda r, why: self.ended.append((r.id, why)))

    async def authorize(self, token: IdToken) -> AuthResult:
        self.auth_calls.append(token.value)
        return AuthResult(self.auth_answer, group_id=GROUPS.get(token.value))

    async def tick(self) -> None:
        for evse in self.evses:
            evse.step()
        await self.settle()
        self.clock.advance(TICK)
        await self.settle()

    async def jump(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass at once (nothing moves at the connectors)."""
        self.clock.advance(seconds)
        await self.settle()

    def reserved(self, evse_id: int = 1) -> bool:
        return self.station.status_of(evse_id).reserved


def _config(tmp_path: Path, connectors: int, any_connector: bool) -> Config:
    return parse({
        "station": {"identity": "CP-RES", "state_dir": str(tmp_path / "state"),
                    "reserve_any_connector": any_connector},
        "ocpp": {"csms_url": "ws://csms.invalid/ocpp"},
        "connectors": [{"id": n} for n in range(1, connectors + 1)],
    }, "<test>")


async def _rig(bench: Bench, tmp_path: Path, *, connectors: int = 1, any_connector: bool = False,
               clock: LoopClock | None = None, store: Store | None = None,
               types: tuple[str | None, ...] = ()) -> ReservationRig:
    rig = ReservationRig(_config(tmp_path, connectors, any_connector), clock or LoopClock(), bench.work,
                         types)
    if store is not None:
        await rig.station.reservations.attach(store)  # as the daemon does, before the start
    bench.rigs.append(rig)
    await rig.station.start()
    await rig.run(0.1)
    return rig


def _reservation(rig: Rig, rid: int = 7, evse_id: int | None = 1, token: IdToken = CARD,
                 in_s: float = 600.0, group_id: str | None = None) -> Reservation:
    return Reservation(rid, evse_id, token, rig.clock.time() + in_s, group_id)


async def _reserve(rig: Rig, *args: object, **kwargs: object) -> ReserveResult:
    return await rig.finish(rig.station.reservations.reserve(_reservation(rig, *args, **kwargs)))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
async def test_only_the_reserved_card_starts_and_its_transaction_ends_the_reservation(
        bench: Bench, tmp_path: Path) -> None:
    rig = await _rig(bench, tmp_path)
    assert await _reserve(rig) == ReserveResult.ACCEPTED
    assert rig.reserved() and rig.facts()[-1].reserved, "reported as a fact of the connector"
    view = rig.station.view(1).reservation
    assert view is not None and (view.id, view.token) == (7, CARD)

    assert await rig.tap(OTHER) is None, "another card is refused on the reserved connector"
    assert rig.station.view(1).session is None and rig.reserved()
    assert not rig.station.remote_start(IdToken("OTHER", TokenType.CENTRAL), 1).accepted
    assert rig.station.remote_start(IdToken("OTHER", TokenType.CENTRAL), None).refusal == \
        "no connector is free: connector 1 is reserved"

    assert await rig.tap(CARD) == AuthStatus.ACCEPTED
    assert rig.station.view(1).session is not None
    assert rig.station.reservations.on(1) is not None, "held until the transaction begins"
    rig.world.plug_in()
    await rig.run_until(lambda: rig.started, 2.0, "the transaction")
    assert rig.started[0].reservation_id == 7, "the start names the reservation it used"
    assert rig.station.reservations.all() == []
    assert not rig.reserved()
    assert rig.ended == [(7, ReservationEnd.USED)]


async def test_a_card_of_the_reserved_group_is_accepted(bench: Bench, tmp_path: Path) -> None:
    rig = await _rig(bench, tmp_path)
    assert await _reserve(rig, group_id="FLEET") == ReserveResult.ACCEPTED
    assert await rig.tap(OTHER) is None, "a card of another group is refused"
    assert await rig.tap(MEMBER) == AuthStatus.ACCEPTED, "the group is learned from the authorization"
    rig.world.plug_in()
    await rig.run_until(lambda: rig.started, 2.0, "the transaction")
    assert (rig.started[0].token, rig.started[0].reservation_id) == (MEMBER, 7)


async def test_a_remote_start_for_the_reserved_identifier_is_accepted(bench: Bench, tmp_path: Path) -> None:
    rig = await _rig(bench, tmp_path)
    assert await _reserve(rig) == ReserveResult.ACCEPTED
    result = rig.station.remote_start(IdToken("CARD", TokenType.CENTRAL), None)
    assert result.accepted and result.evse_id == 1


async def test_a_remote_start_for_a_member_of_the_reserved_group_known_locally(
        bench: Bench, tmp_path: Path) -> None:
    """A remote start carries no group: the one the authorization cache knows for it counts."""
    rig = await _rig(bench, tmp_path)
    assert await _reserve(rig, token=IdToken("LEADER"), group_id="FLEET") == ReserveResult.ACCEPTED
    remote = IdToken("MEMBER", TokenType.CENTRAL)
    assert rig.station.remote_start(remote, 1).refusal == "connector 1 is reserved", "group not known yet"
    await rig.finish(rig.station.authorization.remember("MEMBER", AuthResult(AuthStatus.ACCEPTED, "FLEET")))
    assert rig.station.remote_start(remote, 1).accepted
    rig.world.plug_in()
    await rig.run_until(lambda: rig.started, 2.0, "the transaction")
    assert rig.started[0].reservation_id == 7 and rig.station.reservations.all() == []


async def test_a_reservation_for_a_plug_type(bench: Bench, tmp_path: Path) -> None:
    """A reservation may ask for a plug type: only a connector of that type holds it."""
    rig = await _rig(bench, tmp_path, connectors=2, any_connector=True, types=("cable", "socket"))
    typed = dataclasses.replace(_reservation(rig, evse_id=None), connector_type="socket")
    assert await rig.finish(rig.station.reservations.reserve(typed)) == ReserveResult.ACCEPTED
    wrong = dataclasses.replace(_reservation(rig, rid=8, evse_id=1), connector_type="socket")
    assert await rig.finish(rig.station.reservations.reserve(wrong)) == ReserveResult.REJECTED
    unknown = dataclasses.replace(_reservation(rig, rid=9, evse_id=None), connector_type="pantograph")
    assert await rig.finish(rig.station.reservations.reserve(unknown)) == ReserveResult.REJECTED
    rig.worlds[1].plug_in()  # the driver plugs into the socket, then taps
    await rig.run(0.2)
    assert await rig.tap(CARD) == AuthStatus.ACCEPTED
    await rig.run_until(lambda: rig.started, 2.0, "the transaction")
    assert rig.started[0].reservation_id == 7 and rig.started[0].evse_id == 2


async def test_the_reservation_expires_on_time_and_the_connector_is_available(
        bench: Bench, tmp_path: Path) -> None:
    rig = await _rig(bench, tmp_path)
    assert await _reserve(rig, in_s=60) == ReserveResult.ACCEPTED
    await rig.jump(59.5)
    assert rig.reserved() and rig.station.reservations.all()
    await rig.jump(0.5)
    assert not rig.reserved() and rig.station.reservations.all() == []
    assert [s.reserved for s in rig.facts()][-2:] == [True, False], "reported free again"
    assert rig.ended == [(7, ReservationEnd.EXPIRED)]
    assert await rig.tap(OTHER) == AuthStatus.ACCEPTED, "anyone may start again"


async def test_cancel_ends_it_once(bench: Bench, tmp_path: Path) -> None:
    rig = await _rig(bench, tmp_path)
    assert await _reserve(rig) == ReserveResult.ACCEPTED
    assert await rig.finish(rig.station.reservations.cancel(7)) is True
    assert not rig.reserved() and rig.ended == [(7, ReservationEnd.CANCELLED)]
    assert await rig.finish(rig.station.reservations.cancel(7)) is False
    assert await rig.finish(rig.station.reservations.cancel(99)) is False


async def test_a_fault_ends_the_reservation(bench: Bench, tmp_path: Path) -> None:
    rig = await _rig(bench, tmp_path)
    assert await _reserve(rig) == ReserveResult.ACCEPTED
    rig.world.faults.trip("rcd")
    await rig.run(0.1)
    assert rig.station.reservations.all() == [] and not rig.reserved()
    assert rig.status.fault == "rcd" and rig.ended == [(7, ReservationEnd.REMOVED)]


async def test_going_out_of_service_ends_the_reservation(bench: Bench, tmp_path: Path) -> None:
    rig = await _rig(bench, tmp_path)
    assert await _reserve(rig) == ReserveResult.ACCEPTED
    rig.station.change_availability(1, False)
    assert rig.station.reservations.all() == []


async def test_the_answers_when_a_connector_cannot_be_reserved(bench: Bench, tmp_path: Path) -> None:
    rig = await _rig(bench, tmp_path)
    assert await _reserve(rig, evse_id=9) == ReserveResult.REJECTED, "no such connector"
    assert await _reserve(rig, evse_id=None) == ReserveResult.REJECTED, "any connector is not allowed"
    assert await _reserve(rig, in_s=-1) == ReserveResult.REJECTED, "already expired"

    rig.station.change_availability(1, False)
    assert await _reserve(rig) == ReserveResult.UNAVAILABLE
    rig.station.change_availability(1, True)

    assert await _reserve(rig, rid=1, token=OTHER) == ReserveResult.ACCEPTED
    assert await _reserve(rig, rid=2) == ReserveResult.OCCUPIED, "held by another reservation"
    assert await _reserve(rig, rid=1, token=CARD) == ReserveResult.ACCEPTED, "the same id replaces it"
    assert [(r.id, r.token) for r in rig.station.reservations.all()] == [(1, CARD)]
    assert await rig.finish(rig.station.reservations.cancel(1))

    rig.world.plug_in()
    await rig.run(0.2)
    assert await _reserve(rig) == ReserveResult.OCCUPIED, "an EV is plugged in"
    rig.world.unplug()
    await rig.run(0.2)
    rig.world.faults.trip("rcd")
    await rig.run(0.1)
    assert await _reserve(rig) == ReserveResult.FAULTED


async def test_a_reservation_survives_a_restart(bench: Bench, tmp_path: Path) -> None:
    clock = LoopClock()
    store = await bench.store(tmp_path / "state")
    first = await _rig(bench, tmp_path, clock=clock, store=store)
    assert await _reserve(first, rid=3, in_s=120, group_id="FLEET") == ReserveResult.ACCEPTED
    await first.station.close()
    bench.rigs.remove(first)

    await clock.sleep(0)  # the restart takes no simulated time here
    second = await _rig(bench, tmp_path, clock=clock, store=store)
    kept = second.station.reservations.all()
    assert [(r.id, r.evse_id, r.token, r.group_id) for r in kept] == [(3, 1, CARD, "FLEET")]
    assert second.reserved() and second.facts()[-1].reserved
    assert await second.tap(OTHER) is None
    await second.jump(120)
    assert second.station.reservations.all() == [] and not second.reserved(), "its timer runs again"

    third = await _rig(bench, tmp_path, clock=clock, store=store)
    assert third.station.reservations.all() == [], "the expiry was recorded"


async def test_an_expired_reservation_is_dropped_at_the_restart(bench: Bench, tmp_path: Path) -> None:
    clock = LoopClock()
    store = await bench.store(tmp_path / "state")
    first = await _rig(bench, tmp_path, clock=clock, store=store)
    assert await _reserve(first, in_s=30) == ReserveResult.ACCEPTED
    await first.station.close()
    bench.rigs.remove(first)
    clock.advance(60)  # stopped for longer than the reservation lasted
    second = await _rig(bench, tmp_path, clock=clock, store=store)
    assert second.station.reservations.all() == [] and not second.reserved()


async def test_any_connector_keeps_one_free_for_the_reserved_card(bench: Bench, tmp_path: Path) -> None:
    """Connector 0 in 1.6: no connector is held while two are free; once one is taken, the last
    free one is held for the reservation, and the reserved card gets it."""
    rig = await _rig(bench, tmp_path, connectors=2, any_connector=True)
    assert await _reserve(rig, evse_id=None) == ReserveResult.ACCEPTED
    assert not rig.reserved(1) and not rig.reserved(2)
    assert await _reserve(rig, rid=8, evse_id=None, token=OTHER) == ReserveResult.ACCEPTED
    assert rig.reserved(1) and rig.reserved(2), "two reservations for two free connectors"
    assert await rig.finish(rig.station.reservations.cancel(8))

    assert await rig.tap(OTHER) == AuthStatus.ACCEPTED, "one connector may still go to someone else"
    taken = next(e for e in (1, 2) if rig.station.view(e).session is not None)
    last = 3 - taken
    assert rig.reserved(last) and not rig.reserved(taken)
    assert await _reserve(rig, rid=9, evse_id=last, token=OTHER) == ReserveResult.OCCUPIED
    assert await rig.tap(IdToken("THIRD")) is None, "the last free connector is held"

    assert await rig.tap(CARD) == AuthStatus.ACCEPTED
    assert rig.station.view(last).session is not None
    rig.worlds[last - 1].plug_in()
    await rig.run_until(lambda: rig.started, 2.0, "the reserved card's transaction")
    assert (rig.started[0].evse_id, rig.started[0].reservation_id) == (last, 7)
    assert rig.station.reservations.all() == []
