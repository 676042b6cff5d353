"""What the 2.0.1 tests share: the station configured for 2.0.1 against the scripted 2.0.1 CSMS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chargepoint.app.daemon import Daemon
from tests.integration.conftest import running, station_config, until
from tests.integration.loopback_csms201 import LoopbackCsms201

CARD = "CAFE2001"


def station201(csms: LoopbackCsms201, tmp_path: Path, **sections: dict[str, Any]) -> Any:
    """``async with station201(csms, tmp_path, **sections) as daemon``: a daemon speaking 2.0.1."""
    sections.setdefault("ocpp", {})
    sections["ocpp"] = {"versions": ["2.0.1"], **sections["ocpp"]}
    sections.setdefault("control", {"enabled": False})
    return running(station_config(csms.url, str(tmp_path / "state"), **sections))


async def booted(csms: LoopbackCsms201, daemon: Daemon) -> Any:
    """Wait for the boot and the first status; the simulated world of EVSE 1."""
    await until(lambda: daemon.adapter is not None and daemon.adapter.accepted.is_set(), what="boot")
    await csms.wait_for("StatusNotification", evse_id=1)
    return daemon.hardware.worlds[1]


async def charging(csms: LoopbackCsms201, daemon: Daemon, card: str = CARD) -> tuple[Any, str]:
    """Boot, plug in, tap ``card``, wait for the contactor; the world and the transaction id."""
    world = await booted(csms, daemon)
    world.plug_in()
    world.card_reader.tap(card)
    started = (await csms.wait_for("TransactionEvent", event_type="Started"))[-1]
    await until(lambda: world.contactor.closed, what="the contactor to close")
    return world, started.payload["transaction_info"]["transaction_id"]


def seq_numbers(csms: LoopbackCsms201, tx_id: str) -> list[int]:
    return [event["seq_no"] for event in csms.transaction(tx_id)]
