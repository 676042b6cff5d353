"""The ``chargepoint sim`` commands: plug the simulated EV, tap a card, trip a fault.

Split from :mod:`chargepoint.cli.control_commands` because they only work on
a station with ``hal.backend = "sim"`` (the demo, tests, a bench without
hardware): they drive the simulation through the daemon, which refuses them
on real hardware. Registered on ``chargepoint`` by
:func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

from typing import Any

import click

from chargepoint.cli.control_target import Target, daemon_command
from chargepoint.cli.options import connector_option


# ---------------------------------------------------------------------- sim
@click.group()
def sim() -> None:
    """The simulated EV and card reader (hal.backend = "sim" only)."""


def _sim_text(r: dict[str, Any]) -> str:
    return f"Connector {r['connector']}: {r['action']} done; the EV reads state {r['ev_state']}."


def _input_text(r: dict[str, Any]) -> str:
    """What a trip or release left behind: the conditions still held and the latched inputs."""
    name, held, latched = r["input"], r["held"], r["latched"]
    if r["action"] == "trip":
        first = f"{name} tripped" + (" and held (until chargepoint sim release)" if name in held else "")
    else:
        first = f"{name} released"
    lines = [f"Connector {r['connector']}: {first}."]
    still = [h for h in held if h != name]
    if still:
        lines.append(f"Still held: {', '.join(still)} (chargepoint sim release --input NAME).")
    stuck = [f for f in latched if f not in held]
    if stuck:
        lines.append(f"Latched: {', '.join(stuck)}: the connector stays faulted until "
                     "chargepoint fault clear.")
    if not latched:
        lines.append("No fault input is held or latched.")
    return "\n".join(lines)


@sim.command("plug")
@connector_option()
@daemon_command
def sim_plug(target: Target, connector: int) -> None:
    """Plug the simulated EV in."""
    target.show(target.call("sim", action="plug", connector=connector), _sim_text)


@sim.command("unplug")
@connector_option()
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
@connector_option()
@click.option("--input", "input_name", type=click.Choice(["rcd", "emergency_stop"]), default="rcd",
              show_default=True)
@click.option("--hold", is_flag=True, help="Keep the condition present (until sim release).")
@daemon_command
def sim_trip(target: Target, connector: int, input_name: str, hold: bool) -> None:
    """Trip a simulated fault input (it latches, as an RCD does)."""
    target.show(target.call("sim", action="trip", connector=connector, input=input_name, hold=hold or None),
                _input_text)


@sim.command("release")
@connector_option()
@click.option("--input", "input_name", type=click.Choice(["rcd", "emergency_stop"]), default="rcd",
              show_default=True)
@daemon_command
def sim_release(target: Target, connector: int, input_name: str) -> None:
    """End a held fault condition (the latch stays until chargepoint fault clear)."""
    target.show(target.call("sim", action="release", connector=connector, input=input_name), _input_text)
