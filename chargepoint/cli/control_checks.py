"""The control commands that test the hardware: relay test, pilot test, selftest.

Split from :mod:`chargepoint.cli.control_commands` because these are the
commissioning checks, with an exit code of their own: 0 if the check passed
or was skipped, 1 if it failed. The daemon runs the check and answers with
the result; these commands show it (and selftest can write the report to a
file). They are registered on ``chargepoint`` by
:func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from chargepoint.cli import render
from chargepoint.cli.control_target import EXIT_FAILED, Target, daemon_command
from chargepoint.cli.options import connector_option

# -------------------------------------------------------------------- tests
STATUS_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow", "warn": "bold yellow"}


def _result_line(result: dict[str, Any]) -> str:
    return f"{result['result'].upper()}: {result['detail']}"


def _test_exit(result: dict[str, Any]) -> None:
    if result["result"] == "fail":
        sys.exit(EXIT_FAILED)


@click.group()
def relay() -> None:
    """The contactor (relay)."""


@relay.command("test")
@connector_option()
@daemon_command
def relay_test(target: Target, connector: int) -> None:
    """Close and open the contactor with no EV connected; check the auxiliary contact."""
    result = target.call("relay_test", connector=connector)

    def text(r: dict[str, Any]) -> str:
        aux = {True: "closed", False: "open", None: "not wired"}
        lines = [f"  {s['command']:<5} -> auxiliary contact {aux[s['feedback']]} after {s['after_s']:.2f} s"
                 for s in r["steps"]]
        return "\n".join([f"Relay test, connector {r['connector']}:", *lines, _result_line(r)])

    target.show(result, text)
    _test_exit(result)


@click.group()
def pilot() -> None:
    """The control pilot."""


@pilot.command("test")
@connector_option()
@daemon_command
def pilot_test(target: Target, connector: int) -> None:
    """Step the PWM with no EV connected and read back the CP levels."""
    result = target.call("pilot_test", connector=connector)

    def text(r: dict[str, Any]) -> Any:
        table = render.table("duty", "high", "low", "expected", "")
        for s in r["steps"]:
            render.add_row(table, f"{s['duty']:g} %", f"{s['high_v']:+.2f} V", f"{s['low_v']:+.2f} V",
                           s["expect"], "ok" if s["ok"] else "WRONG")
        return render.group(f"Pilot test, connector {r['connector']}:", table, _result_line(r))

    target.show(result, text)
    _test_exit(result)


# ----------------------------------------------------------------- selftest
@click.command()
@click.option("--report", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also write the plain text report to FILE (to hand over).")
@daemon_command
def selftest(target: Target, report: str | None) -> None:
    """Commissioning self-test: meter, pilot, diode path, PP, relay, RCD, CSMS, clock, disk, database.

    Exit code 0 if every check passed, was skipped or only warned (a value left from the example
    files), 1 if one failed.
    """
    from chargepoint.control.selftest import report_text

    result = target.call("selftest", timeout_s=120.0)
    if report:
        try:
            Path(report).write_text(report_text(result), encoding="utf-8")
        except OSError as exc:
            target.fail("report", f"cannot write {report}: {exc.strerror or exc}: give a path in a "
                                  "directory you may write to", EXIT_FAILED)

    def text(r: dict[str, Any]) -> Any:
        table = render.table("", "check", "result")
        for ch in r["checks"]:
            name = f"{ch['name']}[{ch['connector']}]" if ch["connector"] else ch["name"]
            render.add_row(table, name, ch["detail"],
                           styled=f"[{STATUS_STYLE[ch['status']]}]{ch['status'].upper()}[/]")
        counts = r["counts"]
        warned = f", {counts['warn']} warning(s)" if counts.get("warn") else ""
        summary = (f"Self-test of {r['identity']}: {r['result'].upper()} ({counts['pass']} passed, "
                   f"{counts['fail']} failed, {counts['skip']} skipped{warned})")
        return render.group(table, summary + (f"; report written to {report}" if report else ""))

    target.show(result, text)
    _test_exit(result)
