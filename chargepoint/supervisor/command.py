"""``chargepoint supervise``'s command line, parsed without the CLI's libraries.

The supervisor is started by its unit and lives for months: it imports what it
runs and nothing else (no click, no rich, nothing of the daemon), which keeps it
small and its start quick. ``chargepoint.cli`` hands ``supervise`` over here
before loading anything of its own.
"""

from __future__ import annotations

import argparse
import logging
import sys

from chargepoint.config import ConfigError


def _journal() -> bool:
    """stderr goes to journald (which adds the time and reads a ``<N>`` level prefix)."""
    import os

    return bool(os.environ.get("JOURNAL_STREAM"))


class _JournalLevels(logging.Formatter):
    LEVELS = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

    def format(self, record: logging.LogRecord) -> str:
        return f"<{self.LEVELS.get(record.levelno, 6)}>{record.name}: {record.getMessage()}"


#: Modules the supervisor never uses that a library it does use would load: pymodbus.server's
#: ``__init__`` imports its HTTP simulator, which imports aiohttp whenever it is installed (and the
#: daemon needs it). Under mlockall that is about 14 MiB resident for nothing (bench/README.md).
NEVER_USED = ("aiohttp",)


def leave_out_unused_modules(config_path: str) -> None:
    """Make what the supervisor never uses unimportable, before anything imports it.

    Always ``NEVER_USED``. On a board also ``ssl``: asyncio imports it when it can, which maps
    libssl and libcrypto, every page of them resident under mlockall (about 6.6 MiB); the supervisor
    speaks no TLS. The simulation keeps ssl (its meter's Modbus server imports it).
    """
    for name in NEVER_USED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # `import aiohttp` raises ImportError
    if "ssl" in sys.modules:
        return
    from chargepoint.config.safety_view import load_board_view

    backend, _board = load_board_view(config_path)
    if backend == "raspberrypi":
        sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` raises ImportError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chargepoint supervise",
        description="Run the safety supervisor: the real-time process that alone drives the pilot, the "
                    "contactor and the fault inputs, and answers the daemon on its channel.")
    parser.add_argument("--config", required=True, help="station configuration file (TOML); only [board], "
                        "[safety], [simulation], [[connector]] and the station's rating are read")
    parser.add_argument("--daemon-user", default=None,
                        help="the user whose daemon may control (default: the supervisor's own user)")
    parser.add_argument("--exit-when-idle", action="store_true",
                        help="simulation: exit once no daemon has been attached for a while "
                             "(started on demand)")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    args = parser.parse_args(argv)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JournalLevels() if _journal() else
                         logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    logging.basicConfig(level=getattr(logging, args.log_level.upper()), handlers=[handler])
    try:
        leave_out_unused_modules(args.config)
        from chargepoint.supervisor.main import run_supervisor

        run_supervisor(args.config, daemon_user=args.daemon_user, exit_when_idle=args.exit_when_idle)
    except ConfigError as exc:
        print(f"chargepoint supervise: configuration rejected: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"chargepoint supervise: {exc}", file=sys.stderr)
        return 1
    return 0
