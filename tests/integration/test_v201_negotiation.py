"""Version negotiation: the station offers its versions, the CSMS picks, the right adapter speaks.

Real WebSocket servers on loopback: the bench CSMS serving the subprotocols a
test gives it (in its own order of preference), and a server that selects none.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from chargepoint.app.daemon import Daemon
from chargepoint.cli.control_status import _status_view
from chargepoint.config import parse
from chargepoint.core.security.security_log import SecurityEvent
from chargepoint.protocol.bench_csms import v16 as v16_csms
from chargepoint.protocol.bench_csms import v201 as v201_csms
from chargepoint.protocol.v16.adapter import V16Adapter
from chargepoint.protocol.v201.adapter import V201Adapter
from tests.integration.conftest import until
from tests.integration.loopback_csms import LoopbackCsms
from tests.integration.loopback_csms201 import LoopbackCsms201

V16, V201 = v16_csms.SUBPROTOCOL, v201_csms.SUBPROTOCOL
PEERS = {V16: v16_csms.StationPeer, V201: v201_csms.StationPeer201}


def daemon_for(port: int, tmp_path: Path, **ocpp: Any) -> Daemon:
    return Daemon(parse({
        "station": {"identity": "CP-NEGO", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{port}", "reconnect_min_s": 0.1, "reconnect_max_s": 0.3,
                 **ocpp},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_v201_negotiation>"))


@pytest.mark.parametrize(("served", "offered", "spoken", "adapter"), [
    ((V16,), None, "1.6", V16Adapter),
    ((V201,), None, "2.0.1", V201Adapter),
    ((V201, V16), None, "2.0.1", V201Adapter),
    ((V16, V201), None, "1.6", V16Adapter),  # the CSMS's preference decides
    ((V201, V16), ["1.6"], "1.6", V16Adapter),  # one config line keeps a station on 1.6
    ((V201, V16), ["1.6", "2.0.1"], "2.0.1", V201Adapter),
])
async def test_the_csms_choice_is_spoken(tmp_path: Path, served: tuple[str, ...], offered: list[str] | None,
                                         spoken: str, adapter: type) -> None:
    csms = v16_csms.CentralSystem(peers={p: PEERS[p] for p in served})
    port = await csms.start()
    daemon = daemon_for(port, tmp_path, **({"versions": offered} if offered else {}))
    task = asyncio.ensure_future(daemon.run())
    try:
        await until(lambda: daemon.adapter is not None and daemon.adapter.accepted.is_set(),
                    what="boot accepted")
        assert isinstance(daemon.adapter, adapter)
        status = daemon.service.status()
        assert status["connection"]["ocpp_version"] == spoken
        assert f"connected (OCPP {spoken}), BootNotification accepted" in _status_view(status)
        peer = await csms.wait_for_station("CP-NEGO")
        assert isinstance(peer, PEERS[v16_csms.SUBPROTOCOL if spoken == "1.6" else V201])
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await csms.close()


async def test_a_csms_that_selects_no_version_is_refused_and_retried(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A server that answers the upgrade without a subprotocol: refused with one line, then backoff."""
    opened: list[str | None] = []

    async def handler(ws: ServerConnection) -> None:
        opened.append(ws.subprotocol)
        await ws.wait_closed()

    async with serve(handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]  # type: ignore[index]
        daemon = daemon_for(port, tmp_path)
        caplog.set_level(logging.INFO, logger="chargepoint.connection")
        task = asyncio.ensure_future(daemon.run())
        try:
            await until(lambda: len(opened) >= 2, what="a second attempt after the refusal")
            assert daemon.adapter is None, "no adapter was built for a CSMS that chose no version"
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 20)
    refusals = [r.getMessage() for r in caplog.records if "refused the CSMS" in r.getMessage()]
    assert refusals, "no refusal line"
    assert "none of the offered OCPP versions (ocpp2.1, ocpp2.0.1, ocpp1.6)" in refusals[0]
    assert all(r.exc_info is None for r in caplog.records), "a refusal is one line, not a traceback"
    assert opened[0] is None


async def test_a_csms_that_serves_another_version_only_is_not_spoken_to(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A CSMS that supports none of the offered subprotocols refuses the upgrade; the station retries."""
    caplog.set_level(logging.WARNING, logger="chargepoint.connection")
    attempts: list[str] = []

    async def handler(ws: ServerConnection) -> None:  # never reached: the handshake fails
        attempts.append("opened")

    async with serve(handler, "127.0.0.1", 0, subprotocols=["ocpp1.5"]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]  # type: ignore[index]
        daemon = daemon_for(port, tmp_path)
        task = asyncio.ensure_future(daemon.run())
        try:
            await until(lambda: daemon.link.backoff.attempt >= 2, what="two failed attempts")
            assert daemon.adapter is None and attempts == [] and daemon.link.connections == 0
        finally:
            daemon.stop()
            await asyncio.wait_for(task, 20)
    lines = [r.getMessage() for r in caplog.records if r.name == "chargepoint.connection"]
    offered = "ocpp2.1, ocpp2.0.1, ocpp1.6"
    assert any(f"HTTP 400 (it may speak none of the offered OCPP versions: {offered})" in line
               for line in lines), lines


async def test_messages_queued_under_one_version_are_delivered_in_the_one_spoken_later(
        tmp_path: Path) -> None:
    """A 1.6 CSMS is replaced by a 2.0.1 one while a transaction runs offline: the queued neutral
    events reach the new CSMS as 2.0.1 TransactionEvents, numbered without gaps."""
    old = await LoopbackCsms().start()
    port = old.port
    daemon = daemon_for(port, tmp_path, allow_offline_tx_for_unknown_id=True)
    task = asyncio.ensure_future(daemon.run())
    new = LoopbackCsms201()
    try:
        await old.wait_for("StatusNotification", connector_id=1)
        await old.close()
        await until(lambda: not daemon.link.connected.is_set(), what="offline")
        world = daemon.hardware.worlds[1]
        world.plug_in()
        world.card_reader.tap("SWITCH01")
        await until(lambda: world.contactor.closed, what="charging offline")
        world.unplug()
        await until(lambda: daemon.station.active_transactions() == [], what="the stop")
        await new.start(port)
        await new.wait_for("TransactionEvent", event_type="Ended", timeout=15)
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await new.close()
    events = [r.payload for r in new.of("TransactionEvent")]
    assert events[0]["event_type"] == "Started" and events[0]["id_token"]["id_token"] == "SWITCH01"
    assert [e["seq_no"] for e in events] == list(range(len(events)))
    assert old.of("StartTransaction") == [], "nothing of it was said in 1.6"


async def test_security_events_recorded_under_one_version_are_sent_once_in_the_one_spoken_later(
        tmp_path: Path) -> None:
    """Both versions drain the one security log: what the 1.6 CSMS acknowledged is not sent again,
    what happened while offline reaches the 2.0.1 CSMS after its boot, in 2.0.1 words."""
    old = await LoopbackCsms().start()
    port = old.port
    daemon = daemon_for(port, tmp_path)
    task = asyncio.ensure_future(daemon.run())
    new = LoopbackCsms201()
    try:
        await old.wait_for("SecurityEventNotification", type="StartupOfTheDevice")
        # Received is not yet acknowledged: wait for the station to have the answer and mark it.
        for _ in range(500):
            if not await daemon.security.log.unsent():
                break
            await asyncio.sleep(0.01)
        assert await daemon.security.log.unsent() == []
        await old.close()
        await until(lambda: not daemon.link.connected.is_set(), what="offline")
        daemon.security.log.record(SecurityEvent.INVALID_STATION_CERTIFICATE, "expired while offline")
        await new.start(port)
        event = (await new.wait_for("SecurityEventNotification", timeout=15))[0]
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await new.close()
    assert event.payload["type"] == "InvalidChargingStationCertificate"
    assert event.payload["tech_info"] == "expired while offline"
    assert [r.payload["type"] for r in new.of("SecurityEventNotification")] == [
        "InvalidChargingStationCertificate"], "StartupOfTheDevice was acknowledged under 1.6 already"
    actions = [r.action for r in new.received]
    assert actions.index("BootNotification") < actions.index("SecurityEventNotification")
