"""The ``chargepoint`` commands that talk to the running daemon over its control socket.

status, sessions, start, stop, unlock, availability, config get/set, queue,
fault clear, relay test, pilot test, logs, selftest, and sim (the simulated
EV, for the sim station). Each prints a table for people or, with ``--json``,
the daemon's answer as one JSON document for scripts (errors too, as
``{"ok": false, "error": {"code", "message"}}``).

Exit codes: 0 done (a self-test or output test passed or was skipped), 1 the
daemon refused, a check failed or the configuration file is invalid, 2 wrong
usage, 3 the daemon cannot be reached (not running, no permission, no answer).

rich draws the tables; it is imported here only, never by the daemon.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import click

from chargepoint.cli.client import Client, RemoteError, Unreachable, resolve_socket
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
            with Client(path, timeout_s) as client:
                return client.request(command, **args)
        except Unreachable as exc:
            self.fail(exc.reason, exc.message, EXIT_UNREACHABLE)
        except RemoteError as exc:
            self.fail(exc.code, exc.message, EXIT_FAILED)

    def show(self, result: Any, text: Callable[[Any], Any]) -> None:
        if self.json_output:
            click.echo(json.dumps(result))
        else:
            _print(text(result))


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


def _console() -> Any:
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:
        console = Console(highlight=False, width=120)  # piped into a file or a script: no wrapping
    return console


def _print(renderable: Any) -> None:
    if isinstance(renderable, str):
        click.echo(renderable)
    else:
        _console().print(renderable)


def _table(*columns: str) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in columns:
        table.add_column(column)
    return table


def _add_row(table: Any, *cells: object, styled: str | None = None) -> None:
    """A row of plain text: what the daemon says ("[Errno 111]") is not rich markup.
    ``styled`` is a first cell that is markup."""
    from rich.text import Text

    plain = [Text(str(cell)) for cell in cells]
    table.add_row(*([styled] if styled is not None else []), *plain)


def _group(*parts: Any) -> Any:
    """Tables and lines of plain text (not markup) one below the other."""
    from rich.console import Group
    from rich.text import Text

    return Group(*(Text(part) if isinstance(part, str) else part for part in parts))


def _clock(timestamp: float | None) -> str:
    return "-" if timestamp is None else time.strftime("%m-%d %H:%M", time.localtime(timestamp))


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _kwh(wh: float | None) -> str:
    return "-" if wh is None else f"{wh / 1000:.3f}"


def _connector_option(default: int | None = 1) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--connector", "-c", type=click.IntRange(1, 99), default=default,
                        show_default=default is not None, help="Connector number.")


# -------------------------------------------------------------------- status
def _status_view(status: dict[str, Any]) -> str:
    conn = status["connection"]
    if conn["connected"]:
        link = f"connected, BootNotification {conn['boot']}"
    else:
        link = "NOT connected" + (f": {conn['last_error']}" if conn.get("last_error") else "")
    queue = status["queue"]
    queued = f"{queue['length']} message(s) queued"
    if queue["length"]:
        queued += f", the oldest {queue['oldest_age_s']:.0f} s old"
    lines = [f"Station {status['identity']}: {status['station_status']} (chargepoint {status['version']}, "
             f"hal {status['hal']}, up {_duration(status['uptime_s'])})",
             f"  CSMS       {conn['csms_url']}: {link}",
             f"  queue      {queued}"]
    if status["watchdog"].get("failed"):
        lines.append(f"  WATCHDOG   {status['watchdog']['failed']}")
    for c in status["connectors"]:
        ocpp = c["ocpp_status"] + (f" ({c['error']})" if c["error"] else "")
        notes = [note for flag, note in ((not c["operative"], "inoperative"),
                                         (c["scheduled_operative"] is not None, "availability scheduled"),
                                         (c["test_running"], "test running")) if flag]
        lines.append(f"Connector {c['id']}: {ocpp}, IEC state {c['iec_state'] or 'invalid'}"
                     + (f" [{', '.join(notes)}]" if notes else ""))
        contactor = c["contactor"]
        aux = {True: "closed", False: "open", None: "not wired"}[contactor["feedback"]]
        lines.append(f"  contactor  {'closed' if contactor['closed'] else 'open'} (auxiliary contact {aux})")
        limit = c["limit"]
        bound = f"{limit['amps']:g} A from {limit['binding']}" if limit["amps"] is not None else "none"
        pwm = ("off (+12 V)" if c["pwm_duty"] >= 100
               else f"{c['pwm_duty']:.1f} %, offering {c['offered_a']:g} A")
        cable = f", cable {c['cable_max_a']:g} A" if c["cable_max_a"] else ""
        lines.append(f"  pilot      PWM {pwm}; limit {bound}{cable}")
        session = c["session"]
        if session is None:
            lines.append("  session    -")
        else:
            tx = session["transaction"]
            what = "waiting for the EV" if tx is None else (
                f"transaction {tx['remote_id'] or tx['local_id']}, {_kwh(tx['energy_wh'])} kWh"
                + (" (stopping)" if tx["stopping"] else ""))
            lines.append(f"  session    {session['id_tag']}: {what}")
        meter = c["meter"]
        if not meter["available"]:
            lines.append(f"  meter      FAILED ({meter['failures']} reads in a row)")
        elif meter["energy_wh"] is None:
            lines.append("  meter      no reading yet")
        else:
            volts = "/".join(f"{v:.0f}" for v in meter["voltages_v"] or [] if v is not None)
            lines.append(f"  meter      {_kwh(meter['energy_wh'])} kWh, {meter['power_w'] or 0:.0f} W"
                         + (f", {volts} V" if volts else "")
                         + (f", {meter['frequency_hz']:.2f} Hz" if meter["frequency_hz"] else ""))
        lines.append(f"  faults     {', '.join(c['faults']) or '-'}")
    if status["last_errors"]:
        lines.append("Last warnings and errors:")
        for e in status["last_errors"][-3:]:
            lines.append(f"  {time.strftime('%H:%M:%S', time.localtime(e['time']))} {e['level']:<7} "
                         f"{e['source']}: {e['text']}")
    return "\n".join(lines)


@click.command()
@_connector_option(default=None)
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.2, 3600),
              help="Seconds between refreshes with --watch.")
@click.option("--count", type=click.IntRange(1), help="With --watch: stop after this many refreshes.")
@daemon_command
def status(target: Target, connector: int | None, watch: bool, interval: float, count: int | None) -> None:
    """Connectors, IEC state, OCPP status, session, limit, meter, CSMS link, last errors."""
    if not watch:
        target.show(target.call("status", connector=connector), _status_view)
        return
    path = target.path()
    shown = 0
    try:
        with Client(path) as client:
            if target.json_output or not sys.stdout.isatty():
                while count is None or shown < count:
                    result = client.request("status", connector=connector)
                    target.show(result, _status_view)
                    shown += 1
                    if count is None or shown < count:
                        time.sleep(interval)
                return
            from rich.live import Live
            from rich.text import Text

            def view() -> Any:
                return Text(_status_view(client.request("status", connector=connector)))

            with Live(view(), console=_console(), auto_refresh=False) as live:
                shown = 1
                while count is None or shown < count:
                    time.sleep(interval)
                    live.update(view(), refresh=True)
                    shown += 1
    except Unreachable as exc:
        target.fail(exc.reason, exc.message, EXIT_UNREACHABLE)
    except RemoteError as exc:
        target.fail(exc.code, exc.message, EXIT_FAILED)
    except KeyboardInterrupt:
        pass


# ------------------------------------------------------------------ sessions
def _sessions_view(result: dict[str, Any]) -> Any:
    table = _table("connector", "id tag", "started", "duration", "kWh", "reason", "transaction")
    for s in result["running"]:
        _add_row(table, s["connector"], s["id_tag"], _clock(s["started_at"]), _duration(s["duration_s"]),
                      _kwh(s["energy_wh"]), "(running)", str(s["remote_id"] or s["local_id"]))
    for s in result["finished"]:
        _add_row(table, s["connector"], s["id_tag"], _clock(s["started_at"]), _duration(s["duration_s"]),
                      _kwh(s["energy_wh"]), s["reason"] or "-", str(s["remote_id"] or s["local_id"]))
    if not result["running"] and not result["finished"]:
        return "No sessions yet."
    return table


@click.command()
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="How many finished sessions to show (newest first).")
@daemon_command
def sessions(target: Target, limit: int) -> None:
    """Running and recent sessions with their energy."""
    target.show(target.call("sessions", limit=limit), _sessions_view)


# --------------------------------------------------------------- start/stop
@click.command()
@_connector_option(default=None)
@click.option("--id-tag", help="The idTag the session runs under [default: station.free_vend_id_tag].")
@click.option("--authorize", is_flag=True, help="Authorize the idTag first (CSMS, local list, cache).")
@daemon_command
def start(target: Target, connector: int | None, id_tag: str | None, authorize: bool) -> None:
    """Start a local session: the connector charges once an EV is plugged in."""
    result = target.call("start", connector=connector, id_tag=id_tag, authorize=authorize or None)

    def text(r: dict[str, Any]) -> str:
        if r["status"] == "Authorizing":
            return f"Authorizing {r['id_tag']}; the session starts if it is accepted."
        waiting = "; waiting for an EV to be plugged in" if r.get("waiting_for_ev") else ""
        return f"Session for {r['id_tag']} on connector {r['connector']}{waiting}."

    target.show(result, text)


@click.command()
@_connector_option(default=None)
@daemon_command
def stop(target: Target, connector: int | None) -> None:
    """Stop the session on a connector (reason Local)."""
    result = target.call("stop", connector=connector)

    def text(r: dict[str, Any]) -> str:
        if r["stopped"] == "session":
            return f"Connector {r['connector']}: the waiting session was cancelled."
        return f"Connector {r['connector']}: transaction {r['local_id']} stopped, {_kwh(r['energy_wh'])} kWh."

    target.show(result, text)


@click.command()
@_connector_option()
@daemon_command
def unlock(target: Target, connector: int) -> None:
    """Release the plug lock (a running transaction is stopped first)."""
    result = target.call("unlock", connector=connector)
    target.show(result, lambda r: f"Connector {r['connector']}: {r['status']}.")


@click.command()
@click.argument("connector", type=click.IntRange(0, 99), required=False)
@click.argument("state", type=click.Choice(["operative", "inoperative"]), required=False)
@daemon_command
def availability(target: Target, connector: int | None, state: str | None) -> None:
    """Show availability, or make CONNECTOR (0 = all) operative or inoperative."""
    if state is None:
        if connector is not None:
            raise click.UsageError("give the state too: operative or inoperative")
        result = target.call("availability")

        def listing(r: dict[str, Any]) -> str:
            return "\n".join(f"connector {c['id']}: {'operative' if c['operative'] else 'inoperative'}"
                             + (" (changes when the transaction ends)"
                                if c["scheduled_operative"] is not None else "")
                             for c in r["connectors"])

        target.show(result, listing)
        return
    result = target.call("availability", connector=connector, operative=state == "operative")
    target.show(result, lambda r: f"Connector {r['connector'] or 'all'}: {state}: {r['status']}"
                + (" (after the running transaction)" if r["status"] == "Scheduled" else "") + ".")


# ------------------------------------------------------------------- config
@click.group()
def config() -> None:
    """Read and change settings: OCPP keys (changeable) and the configuration file (read-only)."""


def _value_text(item: dict[str, Any]) -> str:
    if item.get("secret"):
        return "(set)" if item.get("set") else "(not set)"
    value = item["value"]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return "" if value is None else str(value)


@config.command("get")
@click.argument("keys", nargs=-1)
@daemon_command
def config_get(target: Target, keys: tuple[str, ...]) -> None:
    """Show KEYS (OCPP configuration keys or settings, file keys like station.max_current_a); all without."""
    result = target.call("config_get", keys=list(keys) or None)

    def text(r: dict[str, Any]) -> Any:
        table = _table("key", "value", "source", "access")
        for item in r["keys"]:
            source = "OCPP" if item["source"] == "ocpp" else "file"
            _add_row(table, item["key"], _value_text(item), source, "read-only" if item["readonly"] else "rw")
        parts: list[Any] = [table]
        if r["unknown"]:
            parts.append(f"Unknown: {', '.join(r['unknown'])}")
        return _group(*parts)

    target.show(result, text)
    if result["unknown"]:
        sys.exit(EXIT_FAILED)


@config.command("set")
@click.argument("key")
@click.argument("value")
@daemon_command
def config_set(target: Target, key: str, value: str) -> None:
    """Change an OCPP key, validated as a ChangeConfiguration from the CSMS would be."""
    result = target.call("config_set", key=key, value=value)
    target.show(result, lambda r: f"{r['key']} = {_value_text(r)}: {r['status']}"
                + (" (takes effect after a restart)" if r["status"] == "RebootRequired" else ""))


# -------------------------------------------------------------------- queue
@click.command()
@daemon_command
def queue(target: Target) -> None:
    """Transaction messages waiting for the CSMS: how many, and the oldest."""
    result = target.call("queue")

    def text(r: dict[str, Any]) -> str:
        link = "connected" if r["connected"] else "not connected"
        if not r["length"]:
            return f"Queue empty (CSMS {link})."
        head = r["head"]
        tx = head["remote_id"] or head["local_id"]
        return (f"{r['length']} message(s) queued, the oldest {r['oldest_age_s']:.0f} s old; next: "
                f"{head['type']} of transaction {tx} on connector {head['connector']} (CSMS {link})"
                + (f"; {r['thinned']} periodic sample(s) thinned" if r["thinned"] else "") + ".")

    target.show(result, text)


# ------------------------------------------------------------------- faults
@click.group()
def fault() -> None:
    """Latched faults: welded or mismatching contactor, RCD trip, emergency stop."""


@fault.command("clear")
@_connector_option()
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@daemon_command
def fault_clear(target: Target, connector: int, yes: bool) -> None:
    """Clear latched faults after inspection (asks first)."""
    if not yes:
        state = target.call("status", connector=connector)["connectors"][0]
        faults = ", ".join(state["faults"]) or "none"
        click.confirm(f"Connector {connector} faults: {faults}. Clear latched faults? Do it only after "
                      "inspecting the contactor and the RCD", abort=True, err=True)
    result = target.call("fault_clear", connector=connector)

    def text(r: dict[str, Any]) -> str:
        if not r["cleared"]:
            return f"Connector {r['connector']}: {r['detail']}."
        left = f"; remaining: {', '.join(r['remaining'])}" if r["remaining"] else ""
        return f"Connector {r['connector']}: cleared {', '.join(r['cleared'])}{left}."

    target.show(result, text)


# -------------------------------------------------------------------- tests
STATUS_STYLE = {"pass": "green", "fail": "bold red", "skip": "yellow"}


def _result_line(result: dict[str, Any]) -> str:
    return f"{result['result'].upper()}: {result['detail']}"


def _test_exit(result: dict[str, Any]) -> None:
    if result["result"] == "fail":
        sys.exit(EXIT_FAILED)


@click.group()
def relay() -> None:
    """The contactor (relay)."""


@relay.command("test")
@_connector_option()
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
@_connector_option()
@daemon_command
def pilot_test(target: Target, connector: int) -> None:
    """Step the PWM with no EV connected and read back the CP levels."""
    result = target.call("pilot_test", connector=connector)

    def text(r: dict[str, Any]) -> Any:
        table = _table("duty", "high", "low", "expected", "")
        for s in r["steps"]:
            _add_row(table, f"{s['duty']:g} %", f"{s['high_v']:+.2f} V", f"{s['low_v']:+.2f} V", s["expect"],
                          "ok" if s["ok"] else "WRONG")
        return _group(f"Pilot test, connector {r['connector']}:", table, _result_line(r))

    target.show(result, text)
    _test_exit(result)


# --------------------------------------------------------------------- logs
def _logs_view(result: dict[str, Any]) -> str:
    lines = []
    for e in result["entries"]:
        stamp = time.strftime("%H:%M:%S", time.localtime(e["time"])) + f".{int(e['time'] % 1 * 1000):03d}"
        if e["kind"] == "frame":
            arrow = "station -> CSMS" if e["direction"] == "out" else "CSMS -> station"
            lines.append(f"{stamp}  {arrow}  {e['text']}")
        else:
            lines.append(f"{stamp}  {e['level']:<7} {e['source']}: {e['text']}")
    return "\n".join(lines) if lines else "Nothing recorded yet."


@click.command()
@click.option("--limit", "-n", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--frames", "kind", flag_value="frames", help="Only OCPP frames.")
@click.option("--events", "kind", flag_value="events", help="Only events (the daemon's log).")
@daemon_command
def logs(target: Target, limit: int, kind: str | None) -> None:
    """Recent OCPP frames and events, oldest first."""
    target.show(target.call("logs", limit=limit, kind=kind or "all"), _logs_view)


# ----------------------------------------------------------------- selftest
@click.command()
@click.option("--report", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also write the plain text report to FILE (to hand over).")
@daemon_command
def selftest(target: Target, report: str | None) -> None:
    """Commissioning self-test: meter, pilot, diode path, PP, relay, RCD, CSMS, clock, disk, database.

    Exit code 0 if every check passed or was skipped, 1 if one failed.
    """
    from chargepoint.control.selftest import report_text

    result = target.call("selftest", timeout_s=120.0)
    if report:
        try:
            Path(report).write_text(report_text(result), encoding="utf-8")
        except OSError as exc:
            target.fail("report", f"cannot write {report}: {exc.strerror or exc}", EXIT_FAILED)

    def text(r: dict[str, Any]) -> Any:
        table = _table("", "check", "result")
        for ch in r["checks"]:
            name = f"{ch['name']}[{ch['connector']}]" if ch["connector"] else ch["name"]
            _add_row(table, name, ch["detail"],
                     styled=f"[{STATUS_STYLE[ch['status']]}]{ch['status'].upper()}[/]")
        counts = r["counts"]
        summary = (f"Self-test of {r['identity']}: {r['result'].upper()} ({counts['pass']} passed, "
                   f"{counts['fail']} failed, {counts['skip']} skipped)")
        return _group(table, summary + (f"; report written to {report}" if report else ""))

    target.show(result, text)
    _test_exit(result)


# ---------------------------------------------------------------------- sim
@click.group()
def sim() -> None:
    """The simulated EV and card reader (hal.backend = "sim" only)."""


def _sim_text(r: dict[str, Any]) -> str:
    return f"Connector {r['connector']}: {r['action']} done; the EV reads state {r['ev_state']}."


@sim.command("plug")
@_connector_option()
@daemon_command
def sim_plug(target: Target, connector: int) -> None:
    """Plug the simulated EV in."""
    target.show(target.call("sim", action="plug", connector=connector), _sim_text)


@sim.command("unplug")
@_connector_option()
@daemon_command
def sim_unplug(target: Target, connector: int) -> None:
    """Unplug the simulated EV."""
    target.show(target.call("sim", action="unplug", connector=connector), _sim_text)


@sim.command("card")
@click.argument("id_tag")
@daemon_command
def sim_card(target: Target, id_tag: str) -> None:
    """Present a card to the simulated reader."""
    target.show(target.call("sim", action="card", id_tag=id_tag), lambda r: f"Card {id_tag} presented.")


@sim.command("trip")
@_connector_option()
@click.option("--input", "input_name", type=click.Choice(["rcd", "emergency_stop"]), default="rcd",
              show_default=True)
@click.option("--hold", is_flag=True, help="Keep the condition present (until sim release).")
@daemon_command
def sim_trip(target: Target, connector: int, input_name: str, hold: bool) -> None:
    """Trip a simulated fault input (it latches, as an RCD does)."""
    target.show(target.call("sim", action="trip", connector=connector, input=input_name, hold=hold or None),
                _sim_text)


@sim.command("release")
@_connector_option()
@click.option("--input", "input_name", type=click.Choice(["rcd", "emergency_stop"]), default="rcd",
              show_default=True)
@daemon_command
def sim_release(target: Target, connector: int, input_name: str) -> None:
    """End a held fault condition (the latch stays until chargepoint fault clear)."""
    target.show(target.call("sim", action="release", connector=connector, input=input_name), _sim_text)


COMMANDS = (status, sessions, start, stop, unlock, availability, config, queue, fault, relay, pilot, logs,
            selftest, sim)


def register(group: click.Group) -> None:
    for cmd in COMMANDS:
        group.add_command(cmd)
