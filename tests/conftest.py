"""Fixtures every test directory uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from tests.unit.pi_fakes import mock_factory


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    """gpiozero's MockFactory (pins with hooks for the board fakes), also gpiozero's default."""
    factory = mock_factory()
    yield factory
    factory.reset()
    Device.pin_factory = None
