"""The supervisor's hardware backends by name: ``[hal] backend`` -> the function that builds it.

A backend is one line here, ``"module:function"``, imported only when chosen:
the simulation never loads gpiozero, and a board never loads the simulation nor
pymodbus, whatever the other backends need. The names are the ones the
configuration accepts (``chargepoint.config.HAL_BACKENDS``); the daemon's side
has its own registry (``chargepoint.backends.BACKENDS``), and a test keeps the
three lists equal, so a backend is never accepted by one process and unknown to
the other.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chargepoint.config import Config
    from chargepoint.supervisor.hardware import SafetyHardware

#: The safety devices of each backend, as the supervisor runs them: ``function(config) -> SafetyHardware``.
SAFETY_BACKENDS: dict[str, str] = {
    "sim": "chargepoint.supervisor.hardware:build_simulation",
    "raspberrypi": "chargepoint.supervisor.hardware:build_board",
}


def load_builder(registry: Mapping[str, str], name: str) -> Callable[..., Any]:
    """The function ``registry[name]`` names, its module imported now (and not before)."""
    try:
        target = registry[name]
    except KeyError:
        raise ValueError(f"unknown hal backend {name!r}; available: {', '.join(registry)}") from None
    module, _, function = target.partition(":")
    builder: Callable[..., Any] = getattr(importlib.import_module(module), function)
    return builder


def build_safety_hardware(config: Config) -> SafetyHardware:
    """The safety devices of the backend ``[hal] backend`` names."""
    hardware: SafetyHardware = load_builder(SAFETY_BACKENDS, config.hal_backend)(config)
    return hardware
