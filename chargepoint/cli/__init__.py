"""The ``chargepoint`` command: the technician's tool and the daemon's entry point."""

from chargepoint.cli.main import main

__all__ = ["main"]
