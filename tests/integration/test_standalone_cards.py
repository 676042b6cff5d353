"""The owner's cards keep their data: a listed tag is not renamed by accident, a past expiry is
refused, a date means the end of that day and is said back as given, sessions show the card's
name, and a start without a card on a station that is not free vend is refused.

An in-process daemon on the sim hal, driven through the real CLI over the real control socket.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargepoint.cli import main
from tests.integration.conftest import running, until
from tests.integration.test_standalone import cli, config

ANNA = "04A1B2C3D4"


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="cp-sc-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_cards_are_not_renamed_by_accident_and_expire_at_the_end_of_the_day(tmp_path, socket_dir):
    state, sock = tmp_path / "state", socket_dir / "control.sock"
    async with running(config(state, sock)) as daemon:
        await until(sock.exists, 10, "the control socket")
        added = await cli(sock, "cards", "add", "Anna's car", ANNA)
        assert added["card"]["name"] == "Anna's car" and added["renamed"] is False
        dup = await cli(sock, "cards", "add", "Dup", ANNA, code=1)
        message = dup["error"]["message"]
        assert dup["error"]["code"] == "refused" and "already on the list as \"Anna's car\"" in message
        assert "rename" in message
        assert daemon.cards.get(ANNA).name == "Anna's car", "nothing changed"
        past = await cli(sock, "cards", "add", "Old", "0499AA", "--expires", "2020-01-01", code=1)
        assert "in the past" in past["error"]["message"] and daemon.cards.get("0499AA") is None
        day = (datetime.now() + timedelta(days=40)).strftime("%Y-%m-%d")
        result = await cli(sock, "cards", "add", "Anna's new car", ANNA, "--expires", day, "--rename")
        assert result["renamed"] is True and result["was"]["name"] == "Anna's car"
        end = datetime.strptime(day, "%Y-%m-%d") + timedelta(days=1)  # the end of that day, local time
        assert result["card"]["expiry"] == end.timestamp()
        text = await cli_text(sock, "cards", "add", "Guest", "0499BB", "--expires", day)
        assert text.strip() == f"Card 0499BB (Guest) may charge, valid through the end of {day} (local time)."
        listed = await cli_text(sock, "cards", "list")
        assert f"end of {day}" in listed and "00:00" not in listed

        refused = await cli(sock, "start", code=1)
        assert refused["error"]["message"].startswith("no card given and this station is not free vend")
        assert daemon.station.connectors[1].session is None, "no FREEVEND session"
        await cli(sock, "start", "--id-tag", ANNA)
        status = await cli(sock, "status")
        session = status["connectors"][0]["session"]
        assert (session["id_tag"], session["card_name"]) == (ANNA, "Anna's new car")


async def cli_text(sock: Path, *args: str) -> str:
    """The CLI's words (not --json)."""
    result = await asyncio.to_thread(CliRunner().invoke, main, [*args, "--socket", str(sock)])
    assert result.exit_code == 0, (args, result.stdout, result.stderr)
    return result.stdout
