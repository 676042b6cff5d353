"""``python -m chargepoint.cli``: the same as the ``chargepoint`` command."""

from chargepoint.cli.main import main

raise SystemExit(main())
