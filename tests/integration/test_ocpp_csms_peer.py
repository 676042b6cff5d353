"""The station against a central system written elsewhere: ``ocpp-csms`` (PyPI), OCPP 1.6J.

``ocpp_csms.CentralSystem`` is a small asyncio/aiohttp CSMS with its own state
per charge point (boot, connectors, transactions, meter readings) built on the
``ocpp`` library's schema checks. It runs on loopback as any operator would run
it; the station connects to it as configured in the field. Every message the
CSMS could not take shows as a warning on its ``ocpp_csms`` logger, so each
test ends by asserting there was none.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from ocpp_csms import (
    AvailabilityType,
    CentralSystem,
    ChargePoint,
    ChargePointEvent,
    MeterValuesEvent,
    StatusEvent,
    TransactionStartedEvent,
    TransactionStoppedEvent,
)

from tests.integration.conftest import running, station_config, until

IDENTITY = "CP-TEST-1"
CARD = "CAFE0001"


class Peer:
    """The third-party CSMS, the events it emitted and the warnings it logged."""

    def __init__(self, system: CentralSystem, caplog: pytest.LogCaptureFixture) -> None:
        self.system = system
        self.caplog = caplog
        self.events: list[ChargePointEvent] = []
        system.add_listener(self.events.append)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.system.port}/ocpp"

    @property
    def charge_point(self) -> ChargePoint:
        return self.system.charge_points[IDENTITY]

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def statuses(self, connector_id: int) -> list[str]:
        return [str(e.connector.status) for e in self.of(StatusEvent)
                if e.connector.connector_id == connector_id]

    async def status(self, connector_id: int, status: str, count: int = 1) -> None:
        await until(lambda: self.statuses(connector_id).count(status) >= count, 15,
                    f"connector {connector_id} {status} x{count}")

    async def connected(self) -> None:
        await until(lambda: IDENTITY in self.system.charge_points and self.charge_point.connected, 15,
                    "connection")

    def failures(self) -> list[str]:
        """What the CSMS could not take (messages it refused or could not parse)."""
        return [r.getMessage() for r in self.caplog.records
                if r.name.startswith("ocpp_csms") and r.levelno >= logging.WARNING]


@pytest.fixture
async def peer(caplog: pytest.LogCaptureFixture) -> AsyncIterator[Peer]:
    caplog.set_level(logging.INFO, logger="ocpp_csms")
    async with CentralSystem(host="127.0.0.1", port=0, heartbeat_interval=30) as system:
        yield Peer(system, caplog)


def _station(peer: Peer, tmp_path: Path, **sections: dict[str, Any]) -> Any:
    return running(station_config(peer.url, str(tmp_path / "state"), **sections))


async def test_whole_session_with_a_card(peer: Peer, tmp_path: Path) -> None:
    """Boot, statuses, a card session with readings, its end: the CSMS's own record agrees."""
    async with _station(peer, tmp_path) as daemon:
        await until(lambda: IDENTITY in peer.system.charge_points and peer.charge_point.boot, 15, "boot")
        assert peer.charge_point.boot.vendor == "chargepoint"
        assert str(peer.charge_point.registration_status) == "Accepted"
        await peer.status(1, "Available")
        world = daemon.hardware.worlds[1]
        world.plug_in()
        await peer.status(1, "Preparing")
        world.card_reader.tap(CARD)
        started = (await until(lambda: peer.of(TransactionStartedEvent), 15, "start"))[0].transaction
        assert started.id_tag == CARD and started.connector_id == 1
        await peer.status(1, "Charging")
        await until(lambda: [e for e in peer.of(MeterValuesEvent)
                             if e.transaction_id == started.transaction_id], 15, "readings")
        world.card_reader.tap(CARD)
        stopped = (await until(lambda: peer.of(TransactionStoppedEvent), 15, "stop"))[0].transaction
        assert stopped.transaction_id == started.transaction_id
        assert stopped.energy_wh is not None and stopped.energy_wh > 0
        assert abs(stopped.meter_stop - world.meter.energy_wh) <= 1
        await peer.status(1, "Finishing")
        world.unplug()
        await peer.status(1, "Available", count=2)
        assert not peer.charge_point.transactions
    assert peer.failures() == []


async def test_remote_start_and_stop(peer: Peer, tmp_path: Path) -> None:
    """RemoteStartTransaction for a connector, the EV plugged after, RemoteStopTransaction by its id."""
    async with _station(peer, tmp_path) as daemon:
        await peer.connected()
        await peer.status(1, "Available")
        cp = peer.charge_point
        assert await cp.async_remote_start_transaction("REMOTE1", connector_id=1) == "Accepted"
        assert await cp.async_remote_start_transaction("REMOTE2", connector_id=1) == "Rejected"
        await peer.status(1, "Preparing")
        world = daemon.hardware.worlds[1]
        world.plug_in()
        started = (await until(lambda: peer.of(TransactionStartedEvent), 15, "start"))[0].transaction
        assert started.id_tag == "REMOTE1"
        await until(lambda: world.contactor.closed, 15, "contactor closed")
        assert await cp.async_remote_stop_transaction(started.transaction_id + 1) == "Rejected"
        assert await cp.async_remote_stop_transaction(started.transaction_id) == "Accepted"
        stopped = (await until(lambda: peer.of(TransactionStoppedEvent), 15, "stop"))[0].transaction
        assert stopped.stop_reason == "Remote"
        assert not world.contactor.closed
    assert peer.failures() == []


async def test_configuration_read_and_changed(peer: Peer, tmp_path: Path) -> None:
    """GetConfiguration (all keys, and named ones), ChangeConfiguration taken and refused, availability."""
    async with _station(peer, tmp_path) as daemon:
        await peer.connected()
        await peer.status(1, "Available")
        cp = peer.charge_point
        every = await cp.async_get_configuration()
        assert {"HeartbeatInterval", "MeterValueSampleInterval", "NumberOfConnectors"} <= set(every.values)
        assert every.values["NumberOfConnectors"].readonly
        named = await cp.async_get_configuration(["MeterValueSampleInterval", "NoSuchKey"])
        assert named.unknown_keys == ("NoSuchKey",)
        assert await cp.async_change_configuration("MeterValueSampleInterval", "15") == "Accepted"
        assert daemon.settings.get("sample_interval_s") == 15
        assert (await cp.async_get_configuration(["MeterValueSampleInterval"])).values[
            "MeterValueSampleInterval"].value == "15"
        assert await cp.async_change_configuration("MeterValueSampleInterval", "soon") == "Rejected"
        assert await cp.async_change_configuration("NumberOfConnectors", "4") == "Rejected"
        assert await cp.async_change_configuration("NoSuchKey", "1") == "NotSupported"
        assert await cp.async_change_availability(1, AvailabilityType.INOPERATIVE) == "Accepted"
        await peer.status(1, "Unavailable")
        assert await cp.async_change_availability(1, AvailabilityType.OPERATIVE) == "Accepted"
        await peer.status(1, "Available", count=2)
    assert peer.failures() == []
