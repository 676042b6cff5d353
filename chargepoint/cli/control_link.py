"""The control commands about the CSMS link: the queue of waiting messages, and reconnect.

Split from the other control commands because they answer one question a
technician has when the CSMS shows nothing: what is waiting to be delivered
(``queue``: kind, transaction and age of each message) and can the station try
again now (``reconnect``, without waiting out the backoff). ``link_text`` is the
CSMS line of ``status``. Registered on ``chargepoint`` by
:func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

import time
from typing import Any

import click

from chargepoint.cli import render
from chargepoint.cli.control_target import Target, daemon_command


def link_text(conn: dict[str, Any]) -> str:
    """How the link is: connected, or offline since when, the last error once, the next attempt."""
    if conn["connected"]:
        spoken = f" (OCPP {conn['ocpp_version']})" if conn.get("ocpp_version") else ""
        return f"connected{spoken}, BootNotification {conn['boot']}"
    since = conn.get("offline_since")
    text = "NOT connected"
    if since is not None:
        text += (f" since {time.strftime('%H:%M:%S', time.localtime(since))} "
                 f"({render.duration(max(0.0, time.time() - since))})")
    error = conn.get("link_error") or conn.get("last_error")
    if error:
        repeats = conn.get("error_repeats") or 0
        text += f"; last error: {error}" + (f" ({repeats} times in a row)" if repeats > 1 else "")
    wait = conn.get("next_attempt_in_s")
    if wait is not None:
        attempts = conn.get("attempts") or 0
        text += f"; next attempt in {wait:.0f} s" + (f" ({attempts} failed so far)" if attempts else "")
    return text


def _age(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else render.duration(seconds)


@click.command()
@daemon_command
def queue(target: Target) -> None:
    """Transaction messages waiting for the CSMS: kind, transaction and age of each, oldest first."""
    result = target.call("queue")

    def text(r: dict[str, Any]) -> Any:
        link = ("CSMS connected" if r["connected"] else "no CSMS: standalone" if r.get("standalone")
                else "CSMS not connected")
        if not r["length"]:
            return f"Queue empty ({link})."
        table = render.table("#", "kind", "transaction", "connector", "age")
        for m in r["messages"]:
            render.add_row(table, m["seq"], m["kind"], render.transaction(m["remote_id"], m["local_id"]),
                           m["connector"], _age(m["age_s"]))
        summary = (f"{r['length']} message(s) queued, the oldest {_age(r['oldest_age_s'])} old ({link})"
                   + (f"; {r['thinned']} periodic sample(s) thinned" if r["thinned"] else "")
                   + (f"; {r['not_listed']} more not listed" if r["not_listed"] else "") + ".")
        return render.group(table, summary)

    target.show(result, text)


@click.command()
@click.option("--force", is_flag=True,
              help="Drop a healthy link too (the CSMS then sees a new BootNotification).")
@daemon_command
def reconnect(target: Target, force: bool) -> None:
    """Connect to the CSMS again now instead of waiting for the next attempt.

    A healthy link (connected, BootNotification accepted) is left alone unless --force.
    """
    result = target.call("reconnect", force=force or None)

    def text(r: dict[str, Any]) -> str:
        if r["status"] == "healthy":
            return (f"Connected to {r['csms_url']} and accepted: nothing to do "
                    "(--force drops the link and connects again).")
        if r["was_connected"]:
            return f"Was connected to {r['csms_url']}: connecting again now."
        return f"Connecting to {r['csms_url']} now (chargepoint status shows how it went)."

    target.show(result, text)
