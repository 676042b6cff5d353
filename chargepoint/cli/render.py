"""How the control commands print: rich tables and the formats of times and energy.

One public module because every command's text view draws with the same few
helpers (callers write ``render.table(...)``, ``render.kwh(...)``), and because
this is where rich is used. rich is imported inside the functions only, when a table is drawn, never
at import time: the daemon imports ``chargepoint.cli`` and must not load rich
(``tests/integration/test_cli_commands.py`` checks it).
"""

from __future__ import annotations

import os
import time
from typing import Any

import click

#: Width of the text when it goes into a file or a pipe and COLUMNS does not say otherwise.
PIPE_WIDTH = 120
#: The narrowest a column other than the first is drawn before the table turns into a list.
NARROWEST_COLUMN = 8


def console() -> Any:
    """The terminal's width (rich reads COLUMNS first, then the terminal); PIPE_WIDTH for a pipe."""
    from rich.console import Console

    terminal = Console(highlight=False)
    if not terminal.is_terminal and not os.environ.get("COLUMNS", "").isdigit():
        terminal = Console(highlight=False, width=PIPE_WIDTH)
    return terminal


def show(renderable: Any) -> None:
    """Print a command's text view: a string as it is, a table fitted to the width."""
    if isinstance(renderable, str):
        click.echo(renderable)
    else:
        terminal = console()
        terminal.print(_fitted(renderable, terminal.width))


def table(*columns: str) -> Any:
    """A table whose first column (a name a technician types) is never cut nor folded; the other
    columns wrap, long words folded, never cut with an ellipsis (``_fitted`` does the rest)."""
    from rich import box
    from rich.table import Table

    drawn = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for index, column in enumerate(columns):
        if index == 0:
            drawn.add_column(column, no_wrap=True, overflow="ignore")
        else:
            drawn.add_column(column, overflow="fold")
    return drawn


def _fitted(renderable: Any, width: int) -> Any:
    """A table too wide for ``width`` even with its other columns wrapped, as a list: each row's
    first cell on a line of its own, then one line per other column. Tables inside a group too."""
    from rich.console import Group
    from rich.table import Table

    if isinstance(renderable, Group):
        return Group(*(_fitted(part, width) for part in renderable.renderables))
    if not isinstance(renderable, Table) or not renderable.columns:
        return renderable
    first, *others = renderable.columns
    names = [_plain(cell) for cell in first.cells]
    needed = max(map(len, [str(first.header), *names])) + sum(
        max(NARROWEST_COLUMN, len(str(c.header))) + renderable.padding[1] * 2 + 1 for c in others)
    if needed <= width:
        return renderable
    return _records(names, others)


def _records(names: list[str], columns: list[Any]) -> Any:
    from rich.console import Group
    from rich.text import Text

    label = max((len(str(c.header)) for c in columns), default=0)
    lines: list[Any] = []
    cells = [list(c.cells) for c in columns]
    for row, name in enumerate(names):
        lines.append(Text(name))
        for column, column_cells in zip(columns, cells, strict=True):
            value = _plain(column_cells[row])
            if value:
                lines.append(Text(f"  {str(column.header):<{label}}  {value}", overflow="fold"))
    return Group(*lines)


def _plain(cell: Any) -> str:
    """A cell's text: a Text's, or a markup string's without its markup."""
    from rich.text import Text

    return cell.plain if isinstance(cell, Text) else Text.from_markup(str(cell)).plain


def add_row(table: Any, *cells: object, styled: str | None = None) -> None:
    """A row of plain text: what the daemon says ("[Errno 111]") is not rich markup.
    ``styled`` is a first cell that is markup."""
    from rich.text import Text

    plain = [Text(str(cell)) for cell in cells]
    table.add_row(*([styled] if styled is not None else []), *plain)


def group(*parts: Any) -> Any:
    """Tables and lines of plain text (not markup) one below the other."""
    from rich.console import Group
    from rich.text import Text

    return Group(*(Text(part) if isinstance(part, str) else part for part in parts))


def clock(timestamp: float | None) -> str:
    return "-" if timestamp is None else time.strftime("%m-%d %H:%M", time.localtime(timestamp))


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def kwh(wh: float | None) -> str:
    return "-" if wh is None else f"{wh / 1000:.3f}"


def transaction(remote_id: object, local_id: object) -> str:
    """One transaction, one name everywhere: the CSMS's id, with the station's own once beside it.

    Before the CSMS has answered (offline) there is only the local id.
    """
    if remote_id is None:
        return f"{local_id} (local; no CSMS id yet)"
    return f"{remote_id} (local {local_id})"
