"""A home station without a CSMS: local cards, the history across a restart, CSV, a CSMS later.

In-process daemons on the sim hal sharing one state directory (a restarted
station), driven through the real CLI over the real control socket; the later
CSMS is the loopback one. Without a CSMS nothing is queued; with one configured
later the history is intact, the CSMS decides who may charge (the local cards are
kept, not used, and the CLI refuses to edit them), and it receives no message
about the sessions of the standalone time.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from ocpp.v16.enums import AuthorizationStatus

from chargepoint.app.daemon import Daemon
from chargepoint.cli import main
from chargepoint.cli.session_csv import COLUMNS
from tests.integration.conftest import running, station_config, until
from tests.integration.loopback_csms import LoopbackCsms

CAR = "CAR00001"
GUEST = "GUEST001"


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short directory for the control socket (a Unix socket path holds at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="cp-sa-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def config(state: Path, sock: Path, csms_url: str = "") -> dict[str, Any]:
    data = station_config(csms_url, str(state), control={"socket": str(sock)})
    if not csms_url:
        del data["ocpp"]["csms_url"]  # absent: standalone
    return data


async def cli(sock: Path, *args: str, code: int | None = 0) -> Any:
    """``chargepoint ARGS --json`` over the socket (in a thread: the daemon runs on this loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, main, [*args, "--socket", str(sock), "--json"])
    assert code is None or result.exit_code == code, (args, result.exit_code, result.stdout, result.stderr)
    return json.loads(result.stdout)


async def charge(daemon: Daemon, card: str, wh: float = 30.0) -> None:
    """Plug in, tap ``card``, wait until the session has delivered ``wh``."""
    world, c = daemon.hardware.worlds[1], daemon.station.connectors[1]
    # A transaction that has logged its stop stays the connector's until its lock is released:
    # a card tapped before then is about that session, and its energy is not the new one's.
    await until(lambda: c.session is None, 10, "the last session's end")
    world.plug_in()
    world.card_reader.tap(card)
    await until(lambda: c.transaction is not None and c.last_reading is not None
                and c.last_reading.energy_import_wh - c.transaction.meter_start_wh >= wh, 20, "energy")


async def test_home_station_with_cards_across_a_restart_and_a_later_csms(tmp_path, socket_dir, station_log):
    state, sock = tmp_path / "state", socket_dir / "control.sock"
    cards_csv = tmp_path / "cards.csv"
    cards_csv.write_text(f"name,tag,expiry\nCompany car,{CAR},\nOld guest,{GUEST},2020-01-31\n")
    async with running(config(state, sock)) as daemon:
        await until(sock.exists, 10, "the control socket")
        report = await cli(sock, "selftest", code=None)
        (check,) = [c for c in report["checks"] if c["name"].startswith("csms")]
        assert check["status"] == "warn" and "nobody can charge" in check["detail"]
        assert (await cli(sock, "cards", "import", str(cards_csv)))["imported"] == 2
        status = await cli(sock, "status")
        assert status["connection"]["standalone"] is True and status["connection"]["connected"] is False
        world = daemon.hardware.worlds[1]
        world.plug_in()
        world.card_reader.tap("STRANGER")
        await station_log.wait_for("card STRANGER refused: not on the local card list")
        world.card_reader.tap(GUEST)
        await station_log.wait_for(f"card {GUEST} (Old guest) refused: expired")
        assert daemon.station.connectors[1].session is None
        world.unplug()
        await charge(daemon, CAR)
        world.unplug()
        await station_log.wait_for("stopped (ev_disconnected)")
        await charge(daemon, CAR)  # still running when the daemon stops: ended by the restart
        (now,) = (await cli(sock, "sessions"))["running"]
        assert (now["card_name"], now["standalone"], now["remote_id"]) == ("Company car", True, None)
        assert len(daemon.outbox) == 0
    assert "no CSMS configured" in "\n".join(station_log.messages())

    async with running(config(state, sock)) as daemon:  # restarted, still standalone
        await until(sock.exists, 10, "the control socket")
        listed = await cli(sock, "cards", "list")
        assert [c["id_tag"] for c in listed["cards"]] == [CAR, GUEST] and listed["in_use"]
        assert [c["expired"] for c in listed["cards"]] == [False, True]
        finished = (await cli(sock, "sessions"))["finished"]
        assert [s["reason"] for s in finished] == ["reboot", "ev_disconnected"]
        assert {(s["id_tag"], s["card_name"], s["remote_id"], s["standalone"]) for s in finished} == {
            (CAR, "Company car", None, True)}
        text = await asyncio.to_thread(CliRunner().invoke, main, ["status", "--socket", str(sock)])
        assert "CSMS       standalone (no CSMS)" in text.stdout and "0 message(s) queued" in text.stdout
        queue = await asyncio.to_thread(CliRunner().invoke, main, ["queue", "--socket", str(sock)])
        assert "Queue empty (no CSMS: standalone)." in queue.stdout
        refused = await cli(sock, "reconnect", code=1)
        assert "no CSMS is configured" in refused["error"]["message"]
        report = await cli(sock, "selftest", code=None)
        csms_checks = [c for c in report["checks"] if c["name"].startswith("csms")]
        assert [(c["name"], c["status"]) for c in csms_checks] == [("csms", "skip")]
        assert "2 local card(s)" in csms_checks[0]["detail"]
        export = tmp_path / "sessions.csv"
        assert (await cli(sock, "sessions", "--csv", str(export)))["sessions"] == 2
        rows = list(csv.DictReader(io.StringIO(export.read_text())))
        assert tuple(rows[0]) == COLUMNS
        assert [r["stop_reason"] for r in rows] == ["ev_disconnected", "reboot"]  # oldest first
        for row, s in zip(rows, reversed(finished), strict=True):
            assert (row["card_tag"], row["card_name"], row["connector"]) == (CAR, "Company car", "1")
            assert float(row["meter_start_wh"]) == pytest.approx(s["meter_start_wh"], abs=0.05)
            assert float(row["meter_stop_wh"]) == pytest.approx(s["meter_stop_wh"], abs=0.05)
            assert float(row["energy_kwh"]) == pytest.approx(s["energy_wh"] / 1000, abs=0.0006)
            assert float(row["energy_kwh"]) >= 0.03 and row["csms_transaction_id"] == ""
            assert row["start"] < row["end"] and "T" in row["start"]
        assert len(daemon.outbox) == 0

    csms = await LoopbackCsms().start()
    try:
        csms.tag_status[CAR] = AuthorizationStatus.invalid  # the CSMS, not the local cards, decides now
        async with running(config(state, sock, csms.url)) as daemon:
            await csms.wait_for("StatusNotification", connector_id=1)
            await until(sock.exists, 10, "the control socket")
            finished = (await cli(sock, "sessions"))["finished"]
            assert [(s["reason"], s["card_name"]) for s in finished] == [
                ("reboot", "Company car"), ("ev_disconnected", "Company car")]
            refused = await cli(sock, "cards", "add", "Neighbour", "NEIGH001", code=1)
            assert refused["error"]["code"] == "refused"
            assert "a CSMS is configured" in refused["error"]["message"]
            listed = await cli(sock, "cards", "list")
            assert listed["standalone"] is False and not listed["in_use"] and len(listed["cards"]) == 2
            world = daemon.hardware.worlds[1]
            world.plug_in()
            world.card_reader.tap(CAR)
            await csms.wait_for("Authorize", id_tag=CAR)
            await station_log.wait_for(f"card {CAR} not accepted: invalid")
            assert daemon.station.connectors[1].session is None
        transaction_calls = [a for a in csms.actions()
                             if a in ("StartTransaction", "StopTransaction", "MeterValues")]
        assert transaction_calls == [], "nothing of the standalone sessions goes to a later CSMS"
    finally:
        await csms.close()


async def test_the_standalone_demo_charges_with_the_owners_card_only():
    from chargepoint.cli.demo_standalone import CARD, STRANGER, run_standalone_demo

    lines: list[str] = []
    energy = await asyncio.wait_for(run_standalone_demo(speed=100, out=lines.append, minutes=2), 30)
    text = "\n".join(lines)
    assert energy > 0 and f"card {STRANGER} presented: not on the list, refused" in text
    assert f"in the history: {CARD} (Company car)" in text and "0 message(s) queued" in text
    assert ",".join(COLUMNS) in text
