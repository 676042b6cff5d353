"""``chargepoint cards``: the owner's cards of a station without a CSMS.

Without ``ocpp.csms_url`` (a home or small-site station) these cards decide who
may charge: ``add``, ``remove``, ``list`` and ``import`` (a CSV file) change
them on the running daemon, which keeps them in its state database. With a
CSMS the CSMS decides, with its own OCPP local authorization list; ``list``
says so and the changing commands are refused with that reason.

Expiry: a date (``2027-03-31``: valid through that day) or a date and time
(``2027-03-31T18:00``), in the local time zone unless an offset is given.
Registered on ``chargepoint`` by :func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from chargepoint.cli import render
from chargepoint.cli.control_target import Target, daemon_command

#: The CSV columns ``cards import`` reads (a header row names them; expiry may be left out).
CSV_COLUMNS = ("name", "tag", "expiry")


def parse_expiry(text: str) -> float | None:
    """Epoch seconds from a date (end of that day) or a date and time; None for empty text.

    ValueError with a plain reason if it is neither.
    """
    text = text.strip()
    if not text:
        return None
    try:
        if len(text) == 10:  # a date: valid through that day, local time
            day = datetime.strptime(text, "%Y-%m-%d")
            return (day + timedelta(days=1)).timestamp()
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ValueError(f"expiry {text!r} is not a date (2027-03-31) or a date and time "
                         "(2027-03-31T18:00)") from None


def read_csv(text: str, source: str) -> list[dict[str, Any]]:
    """The cards of a CSV file (header ``name,tag[,expiry]``), or ValueError naming the line."""
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(cell.strip() for cell in rows[0]):
        rows.pop(0)
    if not rows:
        raise ValueError(f"{source}: empty; expected a header row name,tag,expiry")
    header = [cell.strip().lower().lstrip("\ufeff") for cell in rows[0]]
    header = ["tag" if h in ("id_tag", "idtag", "card") else h for h in header]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown or "name" not in header or "tag" not in header:
        raise ValueError(f"{source} line 1: the header must name the columns name, tag and optionally "
                         f"expiry, not {','.join(rows[0])!r}")
    cards = []
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            raise ValueError(f"{source} line {number}: {len(row)} fields, the header has {len(header)}")
        values = dict(zip(header, [*row, *[""] * (len(header) - len(row))], strict=True))
        try:
            expiry = parse_expiry(values.get("expiry", ""))
        except ValueError as exc:
            raise ValueError(f"{source} line {number}: {exc}") from None
        if not values["tag"].strip() or not values["name"].strip():
            raise ValueError(f"{source} line {number}: name and tag are required")
        cards.append({"id_tag": values["tag"].strip(), "name": values["name"].strip(), "expiry": expiry})
    if not cards:
        raise ValueError(f"{source}: no cards after the header")
    return cards


def _when(epoch: float | None) -> str:
    """An expiry as a person gave it: ``end of 2027-01-31`` for the midnight a date means (local time)."""
    if epoch is None:
        return "never"
    local = datetime.fromtimestamp(epoch)
    if (local.hour, local.minute, local.second, local.microsecond) == (0, 0, 0, 0):
        return f"end of {(local - timedelta(days=1)).strftime('%Y-%m-%d')}"
    return local.strftime("%Y-%m-%d %H:%M")


def _list_view(r: dict[str, Any]) -> Any:
    if r["standalone"]:
        head = (f"{len(r['cards'])} card(s) on the local card list; they decide who may charge"
                + (" (free vend is on: plugging in also starts a session)." if r["free_vend"] else "."))
    else:
        ocpp = r["ocpp_list"]
        head = (f"A CSMS is configured ({r['csms_url']}): it decides who may charge, with its own OCPP "
                f"local authorization list (version {ocpp['version']}, {ocpp['entries']} card(s)). "
                f"The {len(r['cards'])} local card(s) below are kept but not used.")
    if not r["cards"]:
        return head
    table = render.table("name", "tag", "expires", "")
    for c in r["cards"]:
        render.add_row(table, c["name"], c["id_tag"], _when(c["expiry"]), "EXPIRED" if c["expired"] else "")
    return render.group(head, table)


@click.group()
def cards() -> None:
    """The local cards that may charge when there is no CSMS (a home station)."""


@cards.command("list")
@daemon_command
def cards_list(target: Target) -> None:
    """The local cards (name, tag, expiry) and who decides: the cards, or a CSMS."""
    target.show(target.call("cards"), _list_view)


@cards.command("add")
@click.argument("name")
@click.argument("tag")
@click.option("--expires", metavar="DATE", help="Valid through this date (2027-03-31: to the end of that "
                                                "day) or until this time (2027-03-31T18:00), local time.")
@click.option("--rename", is_flag=True, help="The tag is listed already: give it this name and expiry.")
@daemon_command
def cards_add(target: Target, name: str, tag: str, expires: str | None, rename: bool) -> None:
    """Let the card TAG charge, under NAME.

    A tag already listed is refused unless --rename (then it gets the new name
    and expiry); an expiry in the past is refused.

    \b
    chargepoint cards add "Company car" 04A1B2C3D4
    chargepoint cards add Guest 0499AA --expires 2027-01-31
    chargepoint cards add "Anna's car" 04A1B2C3D4 --rename
    """
    try:
        expiry = parse_expiry(expires or "")
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--expires") from None
    result = target.call("cards_add", id_tag=tag, name=name, expiry=expiry, rename=rename or None)

    def text(r: dict[str, Any]) -> str:
        card, was = r["card"], r.get("was")
        until = "never expires" if card["expiry"] is None else \
            f"valid through the end of {expires} (local time)" if expires and len(expires.strip()) == 10 \
            else f"valid until {expires.strip() if expires else _when(card['expiry'])}"
        renamed = f" (was {was['name']!r})" if was else ""
        return f"Card {card['id_tag']} ({card['name']}){renamed} may charge, {until}."
    target.show(result, text)


@cards.command("remove")
@click.argument("tag")
@daemon_command
def cards_remove(target: Target, tag: str) -> None:
    """Take the card TAG off the local card list (its past sessions keep its name)."""
    result = target.call("cards_remove", id_tag=tag)
    target.show(result, lambda r: f"Card {r['card']['id_tag']} ({r['card']['name']}) removed.")


@cards.command("import")
@click.argument("csv_file", type=click.Path(dir_okay=False, exists=True, path_type=Path), metavar="FILE")
@daemon_command
def cards_import(target: Target, csv_file: Path) -> None:
    """Add or update the cards of a CSV FILE: a header row name,tag[,expiry], then one card a line.

    All or nothing: a bad line is named and nothing is imported.

    \b
    name,tag,expiry
    Company car,04A1B2C3D4,
    Guest,0499AA,2027-01-31
    """
    try:
        rows = read_csv(csv_file.read_text(encoding="utf-8-sig"), str(csv_file))
    except (OSError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        target.fail("bad_file", str(exc), 1)
    result = target.call("cards_import", cards=rows)
    target.show(result, lambda r: f"{r['imported']} card(s) imported ({r['added']} new, {r['updated']} "
                                  f"updated); {r['total']} on the local card list.")
