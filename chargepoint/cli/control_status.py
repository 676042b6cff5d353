"""The control commands that only read: status, sessions, queue and logs.

Split from :mod:`chargepoint.cli.control_commands` because these change
nothing in the station and are what a technician runs first; most of their
code is the text view of the daemon's answer (``status --watch`` keeps
redrawing it, with rich's ``Live`` imported only then). The commands are
registered on ``chargepoint`` by :func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click

from chargepoint.cli.client import Client, RemoteError, Unreachable
from chargepoint.cli.control_output import _add_row, _clock, _console, _duration, _kwh, _table
from chargepoint.cli.control_target import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    Target,
    _connector_option,
    daemon_command,
)


# -------------------------------------------------------------------- status
def _status_view(status: dict[str, Any]) -> str:
    conn = status["connection"]
    if conn["connected"]:
        spoken = f" (OCPP {conn['ocpp_version']})" if conn.get("ocpp_version") else ""
        link = f"connected{spoken}, BootNotification {conn['boot']}"
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
