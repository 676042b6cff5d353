"""``python -m chargepoint.supervisor``: the same as ``chargepoint supervise``."""

import sys

from chargepoint.supervisor.command import main

raise SystemExit(main(sys.argv[1:]))
