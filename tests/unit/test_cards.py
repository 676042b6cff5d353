"""The owner's cards: expiry on the injected clock, the CSV import's checks, the export's columns."""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from chargepoint.cli.control_cards import parse_expiry, read_csv
from chargepoint.cli.session_csv import COLUMNS, sessions_csv
from chargepoint.config import parse
from chargepoint.config.standalone import authority, standalone_warnings
from chargepoint.core.cards import CardAuthorization, CardError, LocalCards, checked
from chargepoint.core.events import AuthStatus, IdToken
from chargepoint.core.settings import Settings
from hal.clock import ManualClock


def standalone(**ocpp: object) -> object:
    data: dict[str, object] = {"station": {"identity": "CP-HOME"}}
    if ocpp:
        data["ocpp"] = ocpp
    return parse(data, "home.toml")


async def test_a_card_is_accepted_until_its_expiry_on_the_station_clock(caplog):
    clock = ManualClock()
    cards = LocalCards(clock)
    now = clock.time()
    await cards.put([checked("GUEST01", "Guest", now + 3600, now),
                     checked("CAR0001", "Company car", None, now)])
    auth = CardAuthorization(Settings(standalone()), clock, cards)  # type: ignore[arg-type]
    assert (await auth.authorize(IdToken("GUEST01"), None)).status is AuthStatus.ACCEPTED
    clock.advance(3599)
    assert (await auth.authorize(IdToken("GUEST01"), None)).status is AuthStatus.ACCEPTED
    clock.advance(1)
    caplog.set_level("INFO", logger="chargepoint")
    result = await auth.authorize(IdToken("GUEST01"), None)
    assert result.status is AuthStatus.EXPIRED and result.expiry == now + 3600
    assert "card GUEST01 (Guest) refused: expired 2023-11-14T23:13:20Z" in caplog.text  # wall_start + 3600
    assert (await auth.authorize(IdToken("CAR0001"), None)).status is AuthStatus.ACCEPTED
    assert (await auth.authorize(IdToken("NOBODY"), None)).status is AuthStatus.INVALID
    assert "card NOBODY refused: not on the local card list" in caplog.text
    await cards.remove("CAR0001")
    assert (await auth.authorize(IdToken("CAR0001"), None)).status is AuthStatus.INVALID


@pytest.mark.parametrize(("tag", "name", "reason"), [
    ("", "Guest", "the tag must be 1 to 20"), ("A" * 21, "Guest", "the tag must be 1 to 20"),
    ("AB CD", "Guest", "without spaces"), ("ABCD", " ", "the name must be"),
])
def test_a_bad_card_is_refused_with_the_reason(tag, name, reason):
    with pytest.raises(CardError, match=reason):
        checked(tag, name, None, 0.0)


def test_expiry_a_date_is_valid_through_that_day():
    assert parse_expiry("2027-03-31") == datetime(2027, 4, 1).timestamp()
    assert parse_expiry("2027-03-31T18:00") == datetime(2027, 3, 31, 18, 0).timestamp()
    utc = datetime.fromisoformat("2027-03-31T18:00+00:00").timestamp()
    assert parse_expiry("2027-03-31T18:00+00:00") == parse_expiry("2027-03-31T18:00Z") == utc
    assert parse_expiry("  ") is None
    with pytest.raises(ValueError, match="not a date"):
        parse_expiry("31.03.2027")


def test_csv_import_reads_a_header_and_names_the_bad_line():
    text = "\ufeffName,Tag,Expiry\nCompany car,04A1B2C3,\n\nGuest,0499AA,2027-01-31\n"
    assert read_csv(text.lstrip("\ufeff"), "c.csv") == [
        {"id_tag": "04A1B2C3", "name": "Company car", "expiry": None},
        {"id_tag": "0499AA", "name": "Guest", "expiry": datetime(2027, 2, 1).timestamp()}]
    assert read_csv("tag,name\nX1,One\n", "c.csv") == [{"id_tag": "X1", "name": "One", "expiry": None}]
    with pytest.raises(ValueError, match="c.csv line 3: expiry 'soon'"):
        read_csv("name,tag,expiry\nA,T1,\nB,T2,soon\n", "c.csv")
    with pytest.raises(ValueError, match="c.csv line 2: name and tag are required"):
        read_csv("name,tag\n,T1\n", "c.csv")
    with pytest.raises(ValueError, match="line 1: the header"):
        read_csv("T1,Someone\n", "c.csv")
    with pytest.raises(ValueError, match="no cards"):
        read_csv("name,tag\n", "c.csv")


def test_session_csv_has_the_documented_columns_oldest_first():
    finished = [  # as the daemon answers: newest first
        {"started_at": 2000.0, "stopped_at": 2600.0, "id_tag": "FREEVEND", "card_name": None,
         "meter_start_wh": 1500.0, "meter_stop_wh": 1500.0, "reason": "ev_disconnected", "connector": 2,
         "remote_id": "117"},
        {"started_at": 1000.0, "stopped_at": 1900.0, "id_tag": "CAR0001", "card_name": "Company car, Anna",
         "meter_start_wh": 12.0, "meter_stop_wh": 7512.5, "reason": "local", "connector": 1,
         "remote_id": None},
    ]
    rows = list(csv.reader(io.StringIO(sessions_csv(finished))))
    assert tuple(rows[0]) == COLUMNS
    first = dict(zip(COLUMNS, rows[1], strict=True))
    assert first == {"start": datetime.fromtimestamp(1000.0).astimezone().isoformat(timespec="seconds"),
                     "end": datetime.fromtimestamp(1900.0).astimezone().isoformat(timespec="seconds"),
                     "duration_s": "900", "card_tag": "CAR0001", "card_name": "Company car, Anna",
                     "energy_kwh": "7.500", "meter_start_wh": "12.0", "meter_stop_wh": "7512.5",
                     "stop_reason": "local", "connector": "1", "csms_transaction_id": ""}
    second = dict(zip(COLUMNS, rows[2], strict=True))
    assert (second["card_name"], second["energy_kwh"], second["csms_transaction_id"]) == ("", "0.000", "117")


def test_check_config_accepts_standalone_and_warns_of_link_settings_that_do_nothing():
    home = standalone()
    assert home.ocpp.standalone and home.ocpp.csms_url == ""  # type: ignore[attr-defined]
    assert standalone_warnings(home) == []  # type: ignore[arg-type]
    assert authority(home) == "no CSMS (standalone: local cards from chargepoint cards)"  # type: ignore[arg-type]
    empty = standalone(csms_url="", ca_bundle="")
    assert empty.ocpp.standalone  # type: ignore[attr-defined]
    assert standalone_warnings(empty) == [  # type: ignore[arg-type]
        "ocpp.ca_bundle has no effect without ocpp.csms_url (standalone: no CSMS)"]
    linked = standalone(csms_url="ws://csms.example/ocpp")
    assert not linked.ocpp.standalone and standalone_warnings(linked) == []  # type: ignore[attr-defined,arg-type]


def test_check_config_on_a_file_without_a_csms(tmp_path):
    from click.testing import CliRunner

    from chargepoint.cli import main

    home = tmp_path / "home.toml"
    home.write_text('[station]\nidentity = "WALLBOX"\nfree_vend = true\n[ocpp]\nsecurity_profile = 0\n')
    result = CliRunner().invoke(main, ["check-config", str(home)])
    assert result.exit_code == 0, result.output
    assert "OK (WALLBOX, 1 connector(s), hal sim, no CSMS (standalone: free vend and local cards)), " \
           "1 warning(s)" in result.stdout
    assert "ocpp.security_profile has no effect without ocpp.csms_url" in result.stderr
    home.write_text('[station]\nidentity = "WALLBOX"\n')
    result = CliRunner().invoke(main, ["check-config", str(home), "--json"])
    assert result.exit_code == 0
    assert '"standalone": true' in result.stdout and '"warnings": []' in result.stdout
