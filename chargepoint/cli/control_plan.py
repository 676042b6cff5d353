"""``chargepoint plan``: a connector's departure plan, "N kWh by HH:MM", on the running daemon.

The plan charges from the sun first and from the grid as needed to make it
(chargepoint/core/energy/plan.py says how); it needs the grid meter of ``[load]``.
Registered on ``chargepoint`` by :func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import click

from chargepoint.cli.control_target import Target, daemon_command


def parse_departure(text: str, now: datetime) -> float:
    """Epoch seconds of a departure: ``HH:MM`` (the next such time, local) or a date and time.

    ValueError with a plain reason if it is neither, or if it has passed.
    """
    text = text.strip()
    try:
        if len(text) <= 5:
            clock = datetime.strptime(text, "%H:%M")
            when = now.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
            if when <= now:
                when += timedelta(days=1)
            return when.timestamp()
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"departure {text!r} is not a time (07:30) or a date and time "
                         "(2027-03-31T07:30)") from None
    if when.timestamp() <= now.timestamp():
        raise ValueError(f"departure {text!r} has passed")
    return when.timestamp()


def plan_text(r: dict[str, Any]) -> str:
    if not r["grid_meter"]:
        return "No departure plan: it needs the grid meter ([load] in the configuration)."
    plan = r["plan"]
    if plan is None:
        return f"Connector {r['connector']}: no departure plan (solar mode {r['mode']})."
    return f"Connector {r['connector']}: departure plan {plan['words']}."


@click.command()
@click.argument("kwh", required=False, type=click.FloatRange(0.1, 200))
@click.option("--by", "by", metavar="HH:MM", help="When the energy must be in: 07:30 (the next 07:30) or "
                                                  "2027-03-31T07:30, local time.")
@click.option("--connector", type=int, default=1, show_default=True, help="The connector of the plan.")
@click.option("--clear", is_flag=True, help="Remove the plan (the solar mode applies again).")
@daemon_command
def plan(target: Target, kwh: float | None, by: str | None, connector: int, clear: bool) -> None:
    """Show or set a departure plan: KWH by a time, from the sun first, the grid as needed.

    Until the latest start (the departure less the time the rest takes at full
    power, with 15 minutes to spare) the connector charges from solar surplus
    only; from then on at full power, sun and grid, until the energy is in.
    The plan is kept across restarts and ends when the energy is in, at the
    departure, or when the car leaves. It needs the grid meter ([load]).

    \b
    chargepoint plan
    chargepoint plan 12 --by 07:30
    chargepoint plan --clear
    """
    if clear and (kwh is not None or by):
        raise click.UsageError("--clear takes no energy and no --by")
    if (kwh is None) != (by is None):
        raise click.UsageError("a plan needs both: the energy (KWH) and --by HH:MM")
    args: dict[str, Any] = {"connector": connector}
    if clear:
        args["clear"] = True
    elif kwh is not None and by is not None:
        try:
            args.update(energy_kwh=kwh, deadline=parse_departure(by, datetime.now()))
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--by") from None
    target.show(target.call("plan", **args), plan_text)
