"""The station's text display: what the operator's messages are shown on.

A display shows a cycle of texts chosen by the station (``chargepoint.core.display_messages``
decides which, and in which order); the display only renders them and, when
there is more than one, cycles through them at its own pace. It says which
content formats it can render, so the station refuses a message it could not
show instead of accepting it and showing nothing.

``show`` may block (an I2C or SPI panel): the station calls it from a worker
thread, one call at a time, the newest cycle last. No real panel is driven
here yet; ``LogDisplay`` is the simulation's and the default's: it logs each
change in one line and keeps what it shows for the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DisplayText:
    """One text to show: its content, its format (``ascii``, ``utf8``, ``html``, ``uri``), language."""

    text: str
    format: str = "utf8"
    language: str | None = None


class TextDisplay(Protocol):
    """A display that shows the station's texts."""

    #: The formats it can render (lower case: ``ascii``, ``utf8``, ``html``, ``uri``).
    formats: frozenset[str]

    def show(self, texts: Sequence[DisplayText]) -> None:
        """Show these texts from now on, in this order, cycling if several; none: the idle screen."""
        ...


class LogDisplay:
    """A display that logs what it would show (the simulation's, and a station without a panel)."""

    formats = frozenset({"ascii", "utf8"})

    def __init__(self) -> None:
        self.shown: tuple[DisplayText, ...] = ()

    def show(self, texts: Sequence[DisplayText]) -> None:
        self.shown = tuple(texts)
        if not texts:
            log.info("display: idle screen")
        else:
            log.info("display: %s", " | ".join(repr(t.text[:60]) for t in texts))
