"""The control commands that only read: status, sessions and logs.

Split from :mod:`chargepoint.cli.control_commands` because these change
nothing in the station and are what a technician runs first; most of their
code is the text view of the daemon's answer (``status --watch`` keeps
redrawing it, with rich's ``Live`` imported only then). The commands are
registered on ``chargepoint`` by :func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import click

from chargepoint.cli import render
from chargepoint.cli.client import Client, RemoteError, Unreachable
from chargepoint.cli.control_limit import claims_text
from chargepoint.cli.control_link import link_text
from chargepoint.cli.control_mode import energy_lines
from chargepoint.cli.control_security import show_security_log
from chargepoint.cli.control_target import (
    EXIT_FAILED,
    EXIT_UNREACHABLE,
    Target,
    daemon_command,
)
from chargepoint.cli.options import connector_option


# -------------------------------------------------------------------- status
def _maintenance_lines(maintenance: dict[str, Any]) -> list[str]:
    """A firmware update or diagnostics upload: running, or how the last one ended."""
    lines = []
    firmware, diagnostics = maintenance.get("firmware"), maintenance.get("diagnostics")
    if firmware:
        what = firmware["status"].replace("_", " ")
        if firmware["version"]:
            what += f" {firmware['version']}"
        if firmware["in_progress"] and firmware["location"]:
            what += f" from {firmware['location']}"
        lines.append(f"  firmware   {what}" + (f": {firmware['detail']}" if firmware["detail"] else ""))
    if diagnostics:
        what = f"{diagnostics['status'].replace('_', ' ')} {diagnostics['file_name'] or ''}".rstrip()
        detail = f": {diagnostics['detail']}" if diagnostics["detail"] else ""
        lines.append(f"  diagnostics {what}{detail}")
    return lines


def supervisor_line(supervisor: dict[str, Any] | None) -> str | None:
    """The safety supervisor in one line: up and how fast it steps, or gone (and what that means)."""
    if supervisor is None:
        return None
    if not supervisor["connected"]:
        gone = supervisor.get("gone_for_s")
        return ("  safety     SUPERVISOR NOT ANSWERING" + (f" for {render.duration(gone)}" if gone else "")
                + f" on {supervisor['channel']}: the connectors are faulted")
    p99, worst = supervisor.get("step_p99_ms"), supervisor.get("step_max_ms")
    step = "no step yet" if p99 is None or worst is None else f"step p99 <= {p99:g} ms, max {worst:g} ms"
    notes = [("FIFO" if supervisor.get("sched") == "fifo" else "not real-time"),
             ("memory locked" if supervisor.get("memory_locked") else "memory not locked"),
             ("heartbeat" if supervisor.get("heartbeat") else "no hardware heartbeat")]
    if not supervisor.get("loops_alive", True):
        notes.insert(0, "A SAFETY LOOP STOPPED STEPPING")
    up = render.duration(supervisor["up_s"] or 0)
    line = f"  safety     supervisor pid {supervisor['pid']}, up {up}, {step}; {', '.join(notes)}"
    if supervisor.get("orphan_left_s") is not None:
        line += f"; charging without a daemon, {supervisor['orphan_left_s']:.0f} s of grace left"
    return line


def _power(meter: dict[str, Any]) -> str:
    """The meter's power, never a negative number: flowing out of the EV it is export."""
    watts = meter["power_w"] or 0
    if meter.get("power_measurand") != "Power.Active.Export":
        return f"{watts:.0f} W"
    exported = meter.get("energy_export_wh")
    total = f" ({render.kwh(exported)} kWh exported)" if exported is not None else ""
    return f"{abs(watts):.0f} W export{total}"


def _status_view(status: dict[str, Any]) -> str:
    conn = status["connection"]
    link = "standalone (no CSMS)" if conn.get("standalone") else link_text(conn)
    queue = status["queue"]
    queued = f"{queue['length']} message(s) queued"
    if queue["length"]:
        queued += f", the oldest {queue['oldest_age_s']:.0f} s old"
        if conn.get("standalone"):
            queued += " (kept for a CSMS; none configured)"
    worst = status.get("worst_connector") or {}
    header = status["station_status"]
    if worst.get("severity"):  # a connector faulted, inoperative or in use: the header says the worst
        header = worst["ocpp_status"] + (f" (connector {worst['id']})" if len(status["connectors"]) != 1
                                         or status["connectors"][0]["id"] != worst["id"] else "")
    lines = [f"Station {status['identity']}: {header} (chargepoint {status['version']}, "
             f"hal {status['hal']}, up {render.duration(status['uptime_s'])})",
             f"  CSMS       {conn['csms_url']}: {link}" if conn["csms_url"] else f"  CSMS       {link}",
             f"  queue      {queued}"]
    if status["watchdog"].get("failed"):
        lines.append(f"  WATCHDOG   {status['watchdog']['failed']}")
    safety = supervisor_line(status.get("supervisor"))
    if safety:
        lines.append(safety)
    lines += _maintenance_lines(status.get("maintenance") or {})
    anywhere = [r for r in status.get("reservations", []) if r["connector"] is None]
    lines += [f"  reserved   {_reservation(r)}" for r in anywhere]
    lines += display_lines(status.get("display"))
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
        changes = limit.get("smart_charging_changes_at")
        lines.append(f"  limits     {claims_text(limit)}"
                     + (f"; smart charging changes at {render.clock(changes)}" if changes else ""))
        m = c.get("measured") or {}
        if m.get("cp_high_v") is not None:
            pp = ("open" if m["pp_open"] else "none (no cable or no PP circuit)" if m["pp_ohms"] is None
                  else f"{m['pp_ohms']:.0f} ohm")
            lines.append(f"  measured   CP {m['cp_high_v']:+.2f} V / {m['cp_low_v']:+.2f} V (high / low), "
                         f"PP {pp}")
        session = c["session"]
        if session is None:
            lines.append("  session    -")
        else:
            tx = session["transaction"]
            what = "waiting for the EV" if tx is None else (
                f"transaction {render.transaction(tx['remote_id'], tx['local_id'])}, "
                f"{render.kwh(tx['energy_wh'])} kWh"
                + (" (stopping)" if tx["stopping"] else ""))
            lines.append(f"  session    {session['id_tag']}: {what}")
        if c.get("reservation"):
            lines.append(f"  reserved   {_reservation(c['reservation'])}")
        meter = c["meter"]
        if not meter["available"]:
            lines.append(f"  meter      FAILED ({meter['failures']} reads in a row)")
        elif meter["energy_wh"] is None:
            lines.append("  meter      no reading yet")
        else:
            volts = "/".join(f"{v:.0f}" for v in meter["voltages_v"] or [] if v is not None)
            lines.append(f"  meter      {render.kwh(meter['energy_wh'])} kWh, {_power(meter)}"
                         + (f", {volts} V" if volts else "")
                         + (f", {meter['frequency_hz']:.2f} Hz" if meter["frequency_hz"] else ""))
        lines.append(f"  faults     {', '.join(c['faults']) or '-'}")
    lines += energy_lines(status.get("energy"))
    if status["last_errors"]:
        lines.append("Last warnings and errors:")
        for e in status["last_errors"][-3:]:
            times = f" ({e['count']} times, the last shown)" if e.get("count", 1) > 1 else ""
            lines.append(f"  {time.strftime('%H:%M:%S', time.localtime(e['time']))} {e['level']:<7} "
                         f"{e['source']}: {e['text']}{times}")
    return "\n".join(lines)


def display_lines(display: dict[str, Any] | None) -> list[str]:
    """The operator's display messages, each with priority and validity; the shown ones marked."""
    if not display or not display["messages"]:
        return []
    lines = [f"  display    {len(display['showing'])} of {len(display['messages'])} message(s) shown "
             f"(station {display['state']})"]
    for m in display["messages"]:
        notes = [m["priority"].replace("_", " ")]
        if m["state"]:
            notes.append(f"{m['state']} only")
        if m["start"]:
            notes.append(f"from {_when(m['start'])}")
        if m["end"]:
            notes.append(f"until {_when(m['end'])}")
        if m["transaction"]:
            notes.append(f"transaction {m['transaction']}")
        text = m["text"] if len(m["text"]) <= 60 else m["text"][:57] + "..."
        lines.append(f"  {'shown' if m['shown'] else 'message':<10} #{m['id']} {json.dumps(text)} "
                     f"({', '.join(notes)})")
    return lines


def _when(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _reservation(r: dict[str, Any]) -> str:
    """``#7 for CAFE0001 (group FLEET) until 2026-11-28 10:15:00`` (the connector says where)."""
    where = " on any connector" if r["connector"] is None else ""
    group = f" (group {r['group']})" if r["group"] else ""
    until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r["expiry"]))
    return f"#{r['id']} for {r['id_tag']}{group}{where} until {until}"


@click.command()
@connector_option(default=None)
@click.option("--watch", is_flag=True, help="Refresh until Ctrl-C.")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.2, 3600),
              help="Seconds between refreshes with --watch.")
@click.option("--count", type=click.IntRange(1), help="With --watch: stop after this many refreshes.")
@daemon_command
def status(target: Target, connector: int | None, watch: bool, interval: float, count: int | None) -> None:
    """Connectors, IEC state, OCPP status, session, reservation, limit, measured CP/PP, meter, CSMS link,
    display messages, last errors.

    With --watch --json: one JSON document per line (NDJSON), one per refresh.
    """
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

            with Live(view(), console=render.console(), auto_refresh=False) as live:
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
def _card(session: dict[str, Any]) -> str:
    """``04A1B2C3 (Company car)`` when the card had a name on the local card list."""
    name = session.get("card_name")
    return f"{session['id_tag']} ({name})" if name else str(session["id_tag"])


def _session_tx(session: dict[str, Any]) -> str:
    """The transaction's name; a standalone one has only the station's id, and never gets another."""
    if session.get("standalone"):
        return f"{session['local_id']} (standalone)"
    return render.transaction(session["remote_id"], session["local_id"])


def _sessions_view(result: dict[str, Any]) -> Any:
    sessions = [*result["running"], *result["finished"]]
    if not sessions:
        return "No sessions yet."
    # The sun's share and the cost where the station knows them (a home station with a grid meter,
    # a tariff): columns only a station that has them shows.
    solar = any(s.get("solar_share") is not None for s in sessions)
    cost = any(s.get("cost") for s in sessions)
    columns = ["connector", "id tag", "started", "duration", "kWh", *(["solar"] if solar else []),
               *(["cost"] if cost else []), "reason", "transaction"]
    table = render.table(*columns)
    for s in sessions:
        extra = [*([_share(s.get("solar_share"))] if solar else []),
                 *([_cost(s.get("cost"))] if cost else [])]
        reason = "(running)" if s in result["running"] else s["reason"] or "-"
        render.add_row(table, s["connector"], _card(s), render.clock(s["started_at"]),
                       render.duration(s["duration_s"]), render.kwh(s["energy_wh"]), *extra, reason,
                       _session_tx(s))
    return table


def _share(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.0f} %"


def _cost(cost: dict[str, Any] | None) -> str:
    """The total with taxes, as a bill shows it."""
    return "-" if not cost else f"{cost['incl_tax']} {cost['currency']}"


@click.command()
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 1000),
              help="How many finished sessions to show (newest first).")
@click.option("--csv", "csv_file", type=click.Path(dir_okay=False, writable=True, allow_dash=True),
              metavar="FILE", help="Write every finished session kept (up to 1000, oldest first) to FILE "
                                   "as CSV ('-': standard output); the columns are in the README.")
@daemon_command
def sessions(target: Target, limit: int, csv_file: str | None) -> None:
    """Running and recent sessions with their energy (and the card that started them; the sun's
    share and the cost where the station knows them)."""
    if csv_file is None:
        target.show(target.call("sessions", limit=limit), _sessions_view)
        return
    from chargepoint.cli.session_csv import sessions_csv

    result = target.call("sessions", limit=1000)
    text = sessions_csv(result["finished"])
    if csv_file == "-":
        click.echo(text, nl=False)
        return
    try:
        with open(csv_file, "w", encoding="utf-8", newline="") as out:
            out.write(text)
    except OSError as exc:
        target.fail("bad_file", f"cannot write {csv_file}: {exc.strerror or exc}: give a path in a "
                                "directory you may write to (or --csv - for standard output)", EXIT_FAILED)
    target.show({"file": csv_file, "sessions": len(result["finished"])},
                lambda r: f"{r['sessions']} session(s) written to {r['file']}.")


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
@click.option("--frames", is_flag=True, help="OCPP frames (with --events: both, as without either).")
@click.option("--events", is_flag=True, help="Events, the daemon's log (with --frames: both).")
@click.option("--follow", "-f", is_flag=True,
              help="Keep printing new entries until Ctrl-C (with --json: one JSON object per line).")
@click.option("--interval", default=0.5, show_default=True, type=click.FloatRange(0.1, 60),
              help="Seconds between looks for new entries with --follow.")
@click.option("--security", is_flag=True, help="The persistent security log instead (newest --limit events).")
@click.option("--clear", is_flag=True, help="With --security: empty the security log (this is logged).")
@daemon_command
def logs(target: Target, limit: int, frames: bool, events: bool, follow: bool, interval: float,
         security: bool, clear: bool) -> None:
    """Recent OCPP frames and events, oldest first."""
    if clear and not security:
        raise click.UsageError("--clear needs --security")
    if security:
        show_security_log(target, limit, clear)
        return
    kind = "frames" if frames and not events else "events" if events and not frames else "all"
    if not follow:
        target.show(target.call("logs", limit=limit, kind=kind), _logs_view)
        return
    try:
        with Client(target.path()) as client:
            since, first = 0, True
            while True:
                answer = client.request("logs", kind=kind, since=since, limit=limit if first else 0)
                entries = answer["entries"]
                for entry in entries:
                    click.echo(json.dumps(entry) if target.json_output else _logs_view({"entries": [entry]}))
                if entries:
                    since = entries[-1]["seq"]
                elif first and not target.json_output:
                    click.echo("Nothing recorded yet; waiting (Ctrl-C to stop).")
                first = False
                sys.stdout.flush()
                time.sleep(interval)
    except Unreachable as exc:
        target.fail(exc.reason, exc.message, EXIT_UNREACHABLE)
    except RemoteError as exc:
        target.fail(exc.code, exc.message, EXIT_FAILED)
    except KeyboardInterrupt:
        pass
