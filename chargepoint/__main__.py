"""``python -m chargepoint``: the ``chargepoint`` command, through its launcher.

``python -m chargepoint run`` loads what the console script's ``chargepoint run``
does and no more (``python -m chargepoint.cli`` imports the whole CLI first); the
daemon restarts itself this way after an OCPP Reset.
"""

from chargepoint.launcher import main

raise SystemExit(main())
