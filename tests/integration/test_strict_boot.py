"""Registration against the strict ocpp-rpc CSMS, in 1.6J and 2.0.1.

An Accepted BootNotification answer registers the station, whoever asked for
the BootNotification; each BootNotification gives its true reason (2.0.1:
Triggered for the one the CSMS asked for); a new connection after a network
loss is not a restart: in 2.0.1 the station reports its statuses and boots no
more, in 1.6 it boots again unless ``boot_on_reconnect`` is off.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from chargepoint.app.daemon import Daemon
from chargepoint.config import parse
from tests.integration.strict_peer import StrictPeer, strict_peer

#: Simulated seconds (the simulation runs 10x real time).
HEARTBEAT_S = 300
PENDING_ONCE = {"STRICT_CSMS_BOOT_PENDING": "1"}


@asynccontextmanager
async def running(peer: StrictPeer, tmp_path: Path, **ocpp: Any) -> AsyncIterator[Daemon]:
    daemon = Daemon(parse({
        "station": {"identity": "CP-BOOT", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{peer.port}", "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.5, **ocpp},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_strict_boot>"))
    task = asyncio.ensure_future(daemon.run())
    try:
        yield daemon
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
    assert peer.strict_failures() == [], peer.report()


async def answer(peer: StrictPeer, action: str, params: dict[str, Any]) -> dict[str, Any]:
    reply = await peer.call(action, params)
    assert reply["event"] == "result", f"{action}: {reply}{peer.report()}"
    return reply["result"]


async def drop_connection(peer: StrictPeer, daemon: Daemon) -> None:
    """The network goes away under an open connection, and the station connects again."""
    clients, connections = len(peer.of("client")), daemon.link.connections
    peer.drop()
    await peer.wait(lambda: len(peer.of("client")) > clients, "the station to connect again")
    assert daemon.link.connections == connections + 1


async def test_201_triggered_boot_while_pending_says_triggered_and_registers(tmp_path: Path) -> None:
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp2.0.1", env=PENDING_ONCE) as peer, \
            running(peer, tmp_path) as daemon:
        await peer.wait_call("BootNotification", reason="PowerUp")
        await peer.wait(lambda: daemon.adapter is not None and daemon.adapter.registration == "Pending",
                        "the Pending answer")
        assert (await answer(peer, "TriggerMessage", {"requestedMessage": "BootNotification"})
                )["status"] == "Accepted"
        await peer.wait_call("BootNotification", reason="Triggered")
        await peer.wait_call("StatusNotification", connectorStatus="Available")
        assert [c["params"]["reason"] for c in peer.calls("BootNotification")] == ["PowerUp", "Triggered"]


async def test_16_accepted_answer_to_a_triggered_boot_registers_the_station(tmp_path: Path) -> None:
    """The station's own BootNotification got Pending with a long interval; the one the CSMS
    triggered is Accepted: the station is registered at once, not after its own retry."""
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp1.6", env=PENDING_ONCE) as peer, \
            running(peer, tmp_path):
        await peer.wait_call("BootNotification")
        assert (await answer(peer, "TriggerMessage", {"requestedMessage": "BootNotification"})
                )["status"] == "Accepted"
        await peer.wait_call("StatusNotification", connectorId=1, status="Available")
        assert len(peer.calls("BootNotification")) == 2


async def test_201_reconnect_is_not_a_reboot(tmp_path: Path) -> None:
    """After a network loss the station reports its statuses without booting again, and answers
    the CSMS's requests as a registered station."""
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp2.0.1") as peer, running(peer, tmp_path) as daemon:
        await peer.wait_call("StatusNotification", connectorStatus="Available")
        await drop_connection(peer, daemon)
        await peer.wait_call("StatusNotification", count=2, connectorStatus="Available")
        result = await answer(peer, "GetVariables", {"getVariableData": [
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
        assert result["getVariableResult"][0]["attributeStatus"] == "Accepted"
        assert [c["params"]["reason"] for c in peer.calls("BootNotification")] == ["PowerUp"]


async def test_16_reconnect_boots_again_unless_told_not_to(tmp_path: Path) -> None:
    async with strict_peer(tmp_path, HEARTBEAT_S, "ocpp1.6") as peer:
        async with running(peer, tmp_path) as daemon:  # the default: a BootNotification per connection
            await peer.wait_call("StatusNotification", connectorId=1)
            await drop_connection(peer, daemon)
            await peer.wait_call("BootNotification", count=2)
            await peer.wait_call("StatusNotification", count=2, connectorId=1)  # before it stops
        async with running(peer, tmp_path, boot_on_reconnect=False) as daemon:
            await peer.wait_call("BootNotification", count=3)  # a restart: always
            await peer.wait_call("StatusNotification", count=3, connectorId=1)
            peer.events.clear()
            await drop_connection(peer, daemon)
            await peer.wait_call("StatusNotification", connectorId=1)
            assert peer.calls("BootNotification") == []

