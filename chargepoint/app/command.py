"""``chargepoint run``: the daemon's command, loaded without the rest of the CLI.

The daemon lives for months in a few tens of MiB: the launcher hands ``run``
straight to this module, so none of the technician's commands (their client,
rendering and options) are imported into it. Nor is click, the CLI's parser
(about 1 MiB resident for the daemon's life, against argparse's 0.3 MiB):
``run`` reads its two options with the standard library's argparse.
``chargepoint.cli.main`` declares the same options in the click group, for
``chargepoint --help`` and shell completion, and hands them over here.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence

from chargepoint.config import ConfigError, load

PROG = "chargepoint run"
LOG_LEVELS = ("debug", "info", "warning", "error")
#: ``chargepoint run``'s exit status after installing a new version (EX_TEMPFAIL: start me again).
EXIT_FIRMWARE = 75
#: The options, each taking a value (``chargepoint.cli.main`` declares the same for the group).
OPTION_NAMES = ("--config", "--log-level")
SUMMARY = "Run the station daemon (what the systemd service starts)."
CONFIG_HELP = "Station configuration file (TOML), e.g. /etc/chargepoint/chargepoint.toml."


class Refused(Exception):
    """The daemon does not start, or stops, for the reason given (exit status 1)."""


def parser() -> argparse.ArgumentParser:
    """``run``'s command line: a wrong one is said with the usage and exit status 2, ``-h`` shows the help."""
    options = argparse.ArgumentParser(prog=PROG, description=SUMMARY)
    options.add_argument("--config", required=True, metavar="FILE", help=CONFIG_HELP)
    options.add_argument("--log-level", choices=LOG_LEVELS, default="info", metavar="LEVEL",
                         help=f"{', '.join(LOG_LEVELS[:-1])} or {LOG_LEVELS[-1]} (default: info)")
    return options


def main(argv: Sequence[str]) -> int:
    """``chargepoint run`` with ``argv`` (the arguments after ``run``): its exit status.

    0 once stopped, 1 refused or failed, ``EXIT_FIRMWARE`` to start the new version; after an
    OCPP Reset the process starts afresh in its place (``os.execv``). A wrong command line or
    ``--help`` ends in argparse's SystemExit (2 or 0).
    """
    options = parser().parse_args(list(argv))
    try:
        return run(options.config, options.log_level)
    except Refused as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


def setup_logging(level: str) -> None:
    """Log lines for people on site: one line each, secrets masked, journald's levels under systemd."""
    from chargepoint.app import logfilter
    from chargepoint.app.watchdog import JournalFormatter, stderr_is_journal
    from chargepoint.core.settings import DEFINITIONS
    from chargepoint.protocol.registry import VERSIONS

    # Whatever version is spoken: its password keys and variables, and the settings behind them.
    secret_names = (*(name for v in VERSIONS.values() for name in v.secret_names),
                    *(d.name for d in DEFINITIONS if d.secret))

    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    journal = stderr_is_journal()
    for handler in logging.getLogger().handlers:
        if journal:
            # Under systemd: journald reads the level from a "<N>" prefix and adds the time.
            handler.setFormatter(JournalFormatter())
        # Secrets masked at every level, lines capped, repeated warnings counted (app/logfilter.py).
        logfilter.install(handler, secret_names)
    if level != "debug":
        # The ocpp library logs every frame at INFO; that is debug detail here.
        logging.getLogger("ocpp").setLevel(logging.WARNING)


def run(config_path: str, log_level: str) -> int:
    """Run the station daemon until it stops: the exit status (see ``main``); Refused if it cannot."""
    from chargepoint.app.filemodes import private_umask

    # Files and directories made from here on are this user's alone, as under the unit's UMask=0077,
    # also when started from a shell (umask 022): the state holds keys, card ids and logs.
    private_umask()
    setup_logging(log_level)
    try:
        config = load(config_path)
    except ConfigError as exc:
        raise Refused(f"configuration rejected: {exc}") from None
    from chargepoint.app.daemon import Daemon
    from chargepoint.app.statelock import StateLock, StateLockError
    from chargepoint.core.storage.store import StoreError

    # The state directory's lock first, before the board is touched: a second daemon
    # started on this configuration must leave the running one's contactor, pilot and
    # files alone, so it stops here, with the pid of the first.
    lock = StateLock(config.station.state_dir)
    try:
        lock.acquire()
    except StateLockError as exc:
        raise Refused(str(exc)) from None

    # The safety supervisor holds the hardware: this process only asks it (chargepoint/supervisor/).
    from chargepoint.backends.remote import build_remote_hardware, connect
    from chargepoint.supervisor.wire import WireError

    try:
        client, hello = connect(config)
        hardware = build_remote_hardware(config, client, hello)
    except WireError as exc:
        lock.release()
        raise Refused(exc.message) from None

    async def serve() -> Daemon:
        daemon = Daemon(config, hardware)
        daemon.install_signal_handlers()
        await daemon.run(state_lock=lock)
        return daemon

    try:
        daemon = asyncio.run(serve())
    except (StoreError, ConfigError) as exc:
        # Refused at start (a damaged database, a [web] listen address without a password): it
        # stays refused until someone fixes it, so a supervisor started on demand ends with it.
        client.send("leaving", for_good=True)
        client.close()
        if isinstance(exc, StoreError):
            raise Refused(str(exc)) from None
        raise Refused(f"configuration rejected: {exc}") from None
    finally:
        lock.release()
    if daemon.failure:
        # Exit non-zero: systemd's Restart=on-failure (or any supervisor) starts it afresh.
        raise Refused(f"stopped: {daemon.failure}")
    restart = daemon.restart_requested
    if restart == "firmware":
        # A new version is installed: the service manager starts it through the current link
        # (systemd: Restart=on-failure, after the firmware guard of ExecStartPre).
        logging.getLogger(__name__).info("exiting with status %d to start the new version", EXIT_FIRMWARE)
        return EXIT_FIRMWARE
    if restart:
        # OCPP Reset: start afresh in the same process slot (systemd sees no exit).
        logging.getLogger(__name__).info("restarting (%s reset)", restart)
        sys.stderr.flush()
        # `python -m chargepoint run`: through the launcher, so the new process loads what this one did.
        os.execv(sys.executable, [sys.executable, "-m", "chargepoint", "run", "--config", config_path,
                                  "--log-level", log_level])
    return 0
