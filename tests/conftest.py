"""Fixtures every test directory uses."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from tests.unit.pi_fakes import mock_factory


@pytest.fixture(autouse=True, scope="session")
def _terminal_width_of_a_pipe() -> Iterator[None]:
    """The CLI's tables follow COLUMNS; pytest-xdist's workers inherit COLUMNS=80 from their start,
    a plain run has none. Tests see the CLI as a pipe does (120 columns) either way; a test that
    means a width sets COLUMNS itself."""
    saved = {name: os.environ.pop(name) for name in ("COLUMNS", "LINES") if name in os.environ}
    yield
    os.environ.update(saved)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """gpiozero's MockFactory (pins with hooks for the board fakes), also gpiozero's default."""
    factory = mock_factory()
    yield factory
    factory.reset()
    Device.pin_factory = None
