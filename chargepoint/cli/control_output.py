"""How the control commands print: rich tables and the formats of times and energy.

Split from :mod:`chargepoint.cli.control_commands` because every command's
text view draws with the same few helpers, and because this is where rich is
used. rich is imported inside the functions only, when a table is drawn, never
at import time: the daemon imports ``chargepoint.cli`` and must not load rich
(``tests/integration/test_cli_commands.py`` checks it).
"""

from __future__ import annotations

import time
from typing import Any

import click


def _console() -> Any:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)  # piped into a file or a script: no wrapping
    return console


def _print(renderable: Any) -> None:
    if isinstance(renderable, str):
        click.echo(renderable)
    else:
        _console().print(renderable)


def _table(*columns: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in columns:
        table.add_column(column)
    return table


def _add_row(table: Any, *cells: object, styled: str | None = None) -> None:
    """A row of plain text: what the daemon says ("[Errno 111]") is not rich markup.
    ``styled`` is a first cell that is markup."""
    from rich.text import Text

    plain = [Text(str(cell)) for cell in cells]
    table.add_row(*([styled] if styled is not None else []), *plain)


def _group(*parts: Any) -> Any:
    """Tables and lines of plain text (not markup) one below the other."""
    from rich.console import Group
    from rich.text import Text

    return Group(*(Text(part) if isinstance(part, str) else part for part in parts))


def _clock(timestamp: float | None) -> str:
    return "-" if timestamp is None else time.strftime("%m-%d %H:%M", time.localtime(timestamp))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _kwh(wh: float | None) -> str:
    return "-" if wh is None else f"{wh / 1000:.3f}"


def _transaction(remote_id: object, local_id: object) -> str:
    """One transaction, one name everywhere: the CSMS's id, with the station's own once beside it.

    Before the CSMS has answered (offline) there is only the local id.
    """
    if remote_id is None:
        return f"{local_id} (local; no CSMS id yet)"
    return f"{remote_id} (local {local_id})"
