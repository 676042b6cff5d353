"""How a control command reaches the daemon: the socket, the call, the exit codes.

Split from :mod:`chargepoint.cli.control_commands` because every command that
talks to the running daemon shares it: :func:`daemon_command` adds ``--socket``,
``--config`` and ``--json`` and hands the command a :class:`Target`, which
finds the socket, sends one request, turns the client's errors into the exit
codes and prints the answer (a table for people, JSON for scripts).

Exit codes: 0 done, 1 (:data:`EXIT_FAILED`) the daemon refused, a check failed
or the configuration file is invalid, 2 wrong usage (click's own),
3 (:data:`EXIT_UNREACHABLE`) the daemon cannot be reached.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

import click

from chargepoint.cli import render
from chargepoint.cli.client import Client, RemoteError, Unreachable, configured_group, resolve_socket
from chargepoint.config import ConfigError

EXIT_FAILED = 1
EXIT_UNREACHABLE = 3


@dataclass
class Target:
    """Where the daemon is and how to print."""

    socket_option: str | None
    config_path: str | None
    json_output: bool

    def path(self) -> str:
        try:
            return resolve_socket(self.socket_option, self.config_path)
        except ConfigError as exc:
            self.fail("config", f"configuration rejected: {exc}", EXIT_FAILED)

    def fail(self, code: str, message: str, exit_code: int) -> NoReturn:
        if self.json_output:
            click.echo(json.dumps({"ok": False, "error": {"code": code, "message": message}}))
        else:
            click.echo(f"Error: {message}", err=True)
        sys.exit(exit_code)

    def call(self, command: str, timeout_s: float = 30.0, **args: Any) -> Any:
        path = self.path()
        try:
            with Client(path, timeout_s, configured_group(self.config_path)) as client:
                return client.request(command, **args)
        except Unreachable as exc:
            self.fail(exc.reason, exc.message, EXIT_UNREACHABLE)
        except RemoteError as exc:
            self.fail(exc.code, exc.message, EXIT_FAILED)

    def show(self, result: Any, text: Callable[[Any], Any]) -> None:
        if self.json_output:
            click.echo(json.dumps(result))
        else:
            render.show(text(result))


def daemon_command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add --socket, --config and --json; pass a Target as the first argument."""

    @click.option("--json", "json_output", is_flag=True, help="Print JSON (for scripts).")
    @click.option("--socket", "socket_option", metavar="PATH", envvar="CHARGEPOINT_SOCKET",
                  help="The daemon's control socket [default: /run/chargepoint/control.sock].")
    @click.option("--config", "config_path", type=click.Path(dir_okay=False), metavar="FILE",
                  help="Take the socket from this station configuration ([control] socket).")
    @functools.wraps(fn)
    def wrapper(json_output: bool, socket_option: str | None, config_path: str | None,
                **kwargs: Any) -> Any:
        return fn(Target(socket_option, config_path, json_output), **kwargs)

    return wrapper

