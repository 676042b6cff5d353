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

from chargepoint.cli.control_target import Target, _connector_option, daemon_command


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
