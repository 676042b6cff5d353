"""``chargepoint mode``: the solar charging mode of the running daemon (fast, pv, minpv).

Split from the other action commands because it is the one local choice about
where the energy comes from; the mode is the ``solar`` claim's policy, kept
across restarts by the daemon. Registered on ``chargepoint`` by
:func:`chargepoint.cli.control_commands.register`.
"""

from __future__ import annotations

from typing import Any

import click

from chargepoint.cli.control_target import Target, daemon_command


def energy_lines(energy: dict[str, Any] | None) -> list[str]:
    """The status's lines on solar charging and the main fuse (none without a grid meter)."""
    if not energy:
        return []
    grid = energy["grid_meter"]
    amps = "/".join(f"{a:+.1f}" for a in energy["grid_a"]) + " A" if energy["grid_a"] else "no reading"
    head = energy["headroom_a"]
    power = energy.get("power") or {}
    flow = ""
    if power.get("grid_w") is not None:
        grid_w = power["grid_w"]
        flow = (f"; grid {abs(grid_w) / 1000:.1f} kW {'import' if grid_w >= 0 else 'export'}, "
                f"station {power['station_w'] / 1000:.1f} kW")
    lines = [f"  solar      mode {energy['mode']}; surplus {max(0, energy['surplus_w'])} W "
             f"({max(0.0, energy['surplus_a']):g} A per phase){flow}",
             f"  main fuse  {energy['main_fuse_a']:g} A (margin {energy['margin_a']:g} A); grid {amps}; "
             + (f"headroom {'/'.join(f'{a:.1f}' for a in head)} A" if head else "headroom unknown")]
    if grid["state"] != "ok":
        lines.append(f"  GRID METER {grid['state']}: {grid['last_error'] or 'no reading yet'}; "
                     f"{grid['failures']} failed read(s) in a row, fallback {grid['fallback_a']:g} A "
                     f"entered {grid['fallbacks']} time(s)")
    for c in energy["connectors"]:
        paused = "; paused by load management" if c["load_paused"] else ""
        switches = f" ({c['solar_switches']} switch(es))" if c["solar_switches"] else ""
        phases = f"; {c['phases_words']}" if c.get("phases_words") else ""
        lines.append(f"  connector {c['id']}: {c['solar']}{switches}{phases}{paused}")
        if c.get("plan"):
            lines.append(f"  connector {c['id']}: departure plan {c['plan']['words']}")
    return lines


@click.command()
@click.argument("mode", required=False, type=click.Choice(["fast", "pv", "minpv", "off"]))
@daemon_command
def mode(target: Target, mode: str | None) -> None:
    """Show or set the solar charging mode; it is kept across restarts.

    \b
    fast   everything the other limits allow (the main fuse still applies)
    pv     solar surplus only: starts when the export covers 6 A, pauses when it
           has been short for a while; never switched more than once a minute
    minpv  6 A always, plus the surplus
    off    no charging (a plugged-in EV waits; a departure plan waits too)

    Every mode but fast needs the grid meter ([load] in the configuration).

    \b
    chargepoint mode
    chargepoint mode pv
    """
    result = target.call("mode", **({"mode": mode} if mode else {}))

    def text(r: dict[str, Any]) -> str:
        if not r["grid_meter"]:
            return "Solar mode: fast (no grid meter configured: [load] in the configuration)."
        return "\n".join([f"Solar mode: {r['mode']}.", *energy_lines(r["energy"])])

    target.show(result, text)
