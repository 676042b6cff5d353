"""Version negotiation with 2.1 offered first: the CSMS picks, the right adapter speaks.

The bench CSMS on loopback serving only 2.1, only 2.0.1, only 1.6, or all three
in its own order of preference; the station offers its default
["2.1", "2.0.1", "1.6"].
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from chargepoint.app.daemon import Daemon
from chargepoint.cli.control_status import _status_view
from chargepoint.config import parse
from chargepoint.protocol.bench_csms import v16 as v16_csms
from chargepoint.protocol.bench_csms import v201 as v201_csms
from chargepoint.protocol.bench_csms.v21 import StationPeer21
from chargepoint.protocol.v16.adapter import V16Adapter
from chargepoint.protocol.v21 import SUBPROTOCOL as V21
from chargepoint.protocol.v21.adapter import V21Adapter
from chargepoint.protocol.v201.adapter import V201Adapter
from tests.integration.conftest import until

V16, V201 = v16_csms.SUBPROTOCOL, v201_csms.SUBPROTOCOL
PEERS = {V16: v16_csms.StationPeer, V201: v201_csms.StationPeer201, V21: StationPeer21}


@pytest.mark.parametrize(("served", "spoken", "adapter"), [
    ((V21,), "2.1", V21Adapter),
    ((V201,), "2.0.1", V201Adapter),
    ((V16,), "1.6", V16Adapter),
    ((V21, V201, V16), "2.1", V21Adapter),
    ((V201, V21, V16), "2.0.1", V201Adapter),  # the CSMS's preference decides
])
async def test_the_default_offer_meets_each_csms(tmp_path: Path, served: tuple[str, ...], spoken: str,
                                                 adapter: type) -> None:
    csms = v16_csms.CentralSystem(peers={p: PEERS[p] for p in served})
    port = await csms.start()
    daemon = Daemon(parse({
        "station": {"identity": "CP-NEGO21", "state_dir": str(tmp_path / "state")},
        "ocpp": {"csms_url": f"ws://127.0.0.1:{port}", "reconnect_min_s": 0.1, "reconnect_max_s": 0.3},
        "simulation": {"speed": 10.0},
        "control": {"enabled": False},
    }, "<test_v21_negotiation>"))
    assert daemon.config.ocpp.versions == ("2.1", "2.0.1", "1.6")
    task = asyncio.ensure_future(daemon.run())
    try:
        await until(lambda: daemon.adapter is not None and daemon.adapter.accepted.is_set(),
                    what="boot accepted")
        assert type(daemon.adapter) is adapter
        status = daemon.service.status()
        assert status["connection"]["ocpp_version"] == spoken
        assert f"connected (OCPP {spoken}), BootNotification accepted" in _status_view(status)
        peer = await csms.wait_for_station("CP-NEGO21")
        assert type(peer) is PEERS[{"1.6": V16, "2.0.1": V201, "2.1": V21}[spoken]]
    finally:
        daemon.stop()
        await asyncio.wait_for(task, 20)
        await csms.close()
