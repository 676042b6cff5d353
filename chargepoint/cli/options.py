"""The command-line options several commands share, so each reads and checks the same way.

One public module because the control commands (start, stop, limit, status,
checks, the simulation's plug and card) all address a connector with the
same ``--connector``/``-c`` option, numbered from 1 as on the station's label.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click


def connector_option(default: int | None = 1) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--connector``/``-c`` (1 to 99); ``default=None`` means "every connector" to the command."""
    return click.option("--connector", "-c", type=click.IntRange(1, 99), default=default,
                        show_default=default is not None, help="Connector number.")
