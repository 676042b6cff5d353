"""Hardware from configuration: the simulation or a Raspberry Pi board, assembled the same way."""

from __future__ import annotations

from chargepoint.backends.hardware import Hardware
from chargepoint.config import Config


def build_hardware(config: Config) -> Hardware:
    """The hardware ``config.hal_backend`` names: the simulation, or a Raspberry Pi board."""
    if config.hal_backend == "raspberrypi":
        from chargepoint.backends.raspberrypi.build import build_pi_hardware

        return build_pi_hardware(config)
    from chargepoint.backends.sim import build_sim_hardware

    return build_sim_hardware(config)


__all__ = ["Hardware", "build_hardware"]
