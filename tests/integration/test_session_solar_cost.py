"""A home session's energy from the sun, its share and its cost, in the status while it runs and in
the history after it: a real daemon on the sim hal with a simulated house in the midday sun, its grid
meter and the [home] price, read through the real CLI over the real control socket."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.conftest import running, until
from tests.integration.test_standalone import cli, config


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cp-ss-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_a_session_in_the_sun_says_how_much_came_from_it_and_what_it_cost(tmp_path, socket_dir):
    state, sock = tmp_path / "state", socket_dir / "control.sock"
    data = config(state, sock)
    data["station"]["free_vend"] = True
    data.update(load={"enabled": True, "meter": {"kind": "sim"}},
                house={"pv_peak_w": 9000, "cloudiness": 0.0, "day_start_h": 12, "base_load_w": 300},
                home={"price_per_kwh": "0.30", "currency": "EUR"})
    async with running(data) as daemon:
        await until(sock.exists, 10, "the control socket")
        world, c = daemon.hardware.worlds[1], daemon.station.connectors[1]
        world.plug_in()
        await until(lambda: c.transaction is not None and c.last_reading is not None
                    and c.last_reading.energy_import_wh - c.transaction.meter_start_wh >= 150, 30, "energy")
        status = await cli(sock, "status")
        tx = status["connectors"][0]["session"]["transaction"]
        assert tx["solar_wh"] > 0 and 0 < tx["solar_share"] < 1, tx
        (now,) = (await cli(sock, "sessions"))["running"]
        assert now["solar_wh"] > 0 and now["cost"]["currency"] == "EUR"
        world.unplug()
        await until(lambda: c.transaction is None, 10, "the end of the session")
        await until(lambda: daemon.energy.ledger.finished, 10, "the ledger's entry")
        (done,) = (await cli(sock, "sessions"))["finished"]
    share = done["solar_share"]
    assert done["solar_wh"] > 0 and 0.1 < share < 1, done
    assert done["solar_wh"] == pytest.approx(share * done["energy_wh"], rel=0.01)
    cost = done["cost"]
    assert cost["currency"] == "EUR" and Decimal(cost["incl_tax"]) > 0
    # The engine's price of what it counted: at most the meter's energy at 0.30 (one reading may lag).
    at_price = Decimal(str(done["energy_wh"])) / 1000 * Decimal("0.30")
    assert Decimal(cost["incl_tax"]) <= at_price + Decimal("0.01")
