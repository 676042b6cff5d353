"""The ``chargepoint`` commands that talk to the running daemon over its control socket.

status, sessions, start, stop, unlock, availability, config get/set/reset, queue, reconnect,
fault clear, relay test, pilot test, logs, selftest, limit, mode, plan, cards, and sim (the simulated
EV, for the sim station). Each prints a table for people or, with ``--json``,
the daemon's answer as one JSON document for scripts (errors too, as
``{"ok": false, "error": {"code", "message"}}``).

Exit codes: 0 done (a self-test or output test passed or was skipped), 1 the
daemon refused, a check failed or the configuration file is invalid, 2 wrong
usage, 3 the daemon cannot be reached (not running, no permission, no answer).

This module is the one place that lists them (:data:`COMMANDS`) and adds
them to the ``chargepoint`` group (:func:`register`, called by
:mod:`chargepoint.cli.main`); the commands live next to it, one job per module,
and are re-exported here:

* :mod:`chargepoint.cli.control_target`: reaching the daemon (:class:`Target`,
  :func:`daemon_command`) and the exit codes;
* :mod:`chargepoint.cli.render`: the tables and formats they print;
* :mod:`chargepoint.cli.options`: the options several commands share (``--connector``);
* :mod:`chargepoint.cli.control_status`: status, sessions, logs (read only);
* :mod:`chargepoint.cli.control_link`: queue (the waiting messages) and reconnect;
* :mod:`chargepoint.cli.control_actions`: start, stop, unlock, availability,
  config get/set, fault clear;
* :mod:`chargepoint.cli.control_checks`: relay test, pilot test, selftest;
* :mod:`chargepoint.cli.control_sim`: sim plug/unplug/card/trip/release;
* :mod:`chargepoint.cli.control_limit`: limit (the operator's current limit);
* :mod:`chargepoint.cli.control_cards`: cards list/add/remove/import (the local
  cards of a station without a CSMS).
* :mod:`chargepoint.cli.control_mode`: mode (the solar charging mode).
* :mod:`chargepoint.cli.control_plan`: plan (a departure plan: N kWh by HH:MM).

rich draws the tables; it is imported inside functions only, never at import
time and never by the daemon.
"""

from __future__ import annotations

import click

from chargepoint.cli.control_actions import (
    availability,
    config,
    config_get,
    config_reset,
    config_set,
    fault,
    fault_clear,
    start,
    stop,
    unlock,
)
from chargepoint.cli.control_cards import cards
from chargepoint.cli.control_checks import STATUS_STYLE, pilot, pilot_test, relay, relay_test, selftest
from chargepoint.cli.control_limit import limit
from chargepoint.cli.control_link import queue, reconnect
from chargepoint.cli.control_mode import mode
from chargepoint.cli.control_plan import plan
from chargepoint.cli.control_security import certs
from chargepoint.cli.control_sim import sim, sim_card, sim_plug, sim_release, sim_trip, sim_unplug
from chargepoint.cli.control_status import logs, sessions, status
from chargepoint.cli.control_target import EXIT_FAILED, EXIT_UNREACHABLE, Target, daemon_command

__all__ = [
    "COMMANDS",
    "EXIT_FAILED",
    "EXIT_UNREACHABLE",
    "STATUS_STYLE",
    "Target",
    "availability",
    "cards",
    "certs",
    "config",
    "config_get",
    "config_reset",
    "config_set",
    "daemon_command",
    "fault",
    "fault_clear",
    "limit",
    "logs",
    "mode",
    "pilot",
    "pilot_test",
    "plan",
    "queue",
    "reconnect",
    "register",
    "relay",
    "relay_test",
    "selftest",
    "sessions",
    "sim",
    "sim_card",
    "sim_plug",
    "sim_release",
    "sim_trip",
    "sim_unplug",
    "start",
    "status",
    "stop",
    "unlock",
]

COMMANDS = (status, sessions, start, stop, unlock, availability, config, queue, fault, relay, pilot, logs,
            selftest, sim, limit, cards, mode, plan, certs, reconnect)


def register(group: click.Group) -> None:
    for cmd in COMMANDS:
        group.add_command(cmd)
