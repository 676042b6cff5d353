"""Hardware from configuration: each backend one registry line, assembled the same way.

``BACKENDS`` names, for each ``[hal] backend``, the function that builds the
daemon's hardware in one process (``"module:function"``), imported only when
chosen: the simulation never loads gpiozero and a board never loads the
simulation. The supervisor has its own registry for its side of the same
backends (``chargepoint.supervisor.backends.SAFETY_BACKENDS``); both list the
names the configuration accepts (``chargepoint.config.HAL_BACKENDS``).
"""

from __future__ import annotations

from chargepoint.backends.hardware import Hardware
from chargepoint.config import Config
from chargepoint.supervisor.backends import load_builder

#: The daemon's hardware of each backend: ``function(config) -> Hardware``.
BACKENDS: dict[str, str] = {
    "sim": "chargepoint.backends.sim:build_sim_hardware",
    "raspberrypi": "chargepoint.backends.raspberrypi.build:build_pi_hardware",
}


def build_hardware(config: Config) -> Hardware:
    """The hardware of the backend ``config.hal_backend`` names."""
    hardware: Hardware = load_builder(BACKENDS, config.hal_backend)(config)
    return hardware


__all__ = ["BACKENDS", "Hardware", "build_hardware"]
