"""The ``chargepoint`` console script: which command-line the process loads.

``chargepoint supervise`` goes straight to the safety supervisor's own parser:
nothing of the CLI (click, rich, the control client) is loaded into that
long-lived real-time process. ``chargepoint run`` goes straight to the daemon's
command (``chargepoint.app.command``, which reads its two options with argparse):
neither click nor any of the technician's commands are loaded into the daemon
either. Every other command goes to the click group. ``python -m chargepoint``
comes here too, as does the daemon restarting itself after an OCPP Reset.
"""

from __future__ import annotations

import sys
from typing import Any


def main() -> Any:
    if sys.argv[1:2] == ["supervise"]:
        from chargepoint.supervisor.command import main as supervise

        return supervise(sys.argv[2:])
    if sys.argv[1:2] == ["run"]:
        from chargepoint.app.command import main as run

        return run(sys.argv[2:])
    from chargepoint.cli.main import main as cli

    return cli()
