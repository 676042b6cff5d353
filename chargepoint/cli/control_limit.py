"""``chargepoint limit``: the operator's own current limit, set on the running daemon.

Split from the other action commands because it is the one local party among
the limit claims (cable, station rating, smart charging, operator): what it
sets is the ``operator`` claim, kept across restarts, and what it prints is
every claim and the one that binds. Registered on ``chargepoint`` by
:func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

from typing import Any

import click

from chargepoint.cli.control_target import Target, daemon_command
from chargepoint.cli.options import connector_option


def claims_text(limit: dict[str, Any]) -> str:
    """Every claim of a connector, the binding one marked, and why it binds in words:
    ``solar 8.9 A (binds), station 32 A; solar: 8.9 A from 6.1 kW surplus``."""
    claims = limit.get("claims") or {}
    if not claims:
        return "none"
    text = ", ".join(f"{name} {amps:g} A" + (" (binds)" if name == limit.get("binding") else "")
                     for name, amps in sorted(claims.items(), key=lambda item: (item[1], item[0])))
    words = limit.get("words")
    return f"{text}; {words}" if words and limit.get("binding") in ("solar", "load_manager") else text


@click.command()
@connector_option(default=None)
@click.argument("amps")
@daemon_command
def limit(target: Target, connector: int | None, amps: str) -> None:
    """Cap the current (AMPS, per phase) of one connector, or all; `clear` lifts the cap.

    The cap is kept across restarts and binds with the cable, the station's
    rating and the CSMS's charging profiles: the lowest wins. Below 6 A the
    connector pauses charging (the pilot offers nothing).

    \b
    chargepoint limit 16
    chargepoint limit -c 2 10
    chargepoint limit clear
    """
    if amps.lower() == "clear":
        value: float | None = None
    else:
        try:
            value = float(amps)
        except ValueError:
            raise click.BadParameter(f"{amps!r} is neither a number of amperes nor 'clear'",
                                     param_hint="AMPS") from None
    result = target.call("limit", connector=connector, amps=value)

    def text(r: dict[str, Any]) -> str:
        lines = []
        for c in r["connectors"]:
            said = "cleared" if c["operator_a"] is None else f"{c['operator_a']:g} A"
            lines.append(f"Connector {c['id']}: operator limit {said}; limits: {claims_text(c['limit'])}.")
        return "\n".join(lines)

    target.show(result, text)
