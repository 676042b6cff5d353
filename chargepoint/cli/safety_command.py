"""``chargepoint safety``: the safety supervisor's own word, read straight from its channel.

For a technician on site when the daemon does not answer (stopped, crashed,
restarting): the supervisor still knows each connector's pilot state, the
contactor, the faults and whether a car is charging on its own. The command
connects as a read-only peer (root, or the daemon's own user saying it only
reads), so it never takes control away from a running daemon and can change
nothing.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import click

from chargepoint.config import ConfigError
from chargepoint.config.safety_parse import channel_path
from chargepoint.config.safety_view import load_safety_view
from chargepoint.supervisor.client import SupervisorClient
from chargepoint.supervisor.wire import WireError


def as_text(hello: dict[str, Any]) -> str:
    """The hello in words, for a technician: the supervisor, then each connector."""
    s = hello.get("supervisor", {})
    lines = [f"Safety supervisor pid {s.get('pid')} ({s.get('backend')}), up {s.get('up_s')} s: "
             f"step p99 <= {s.get('step_p99_ms')} ms, longest {s.get('step_max_ms')} ms, "
             f"scheduling {s.get('sched')}, memory {'locked' if s.get('memory_locked') else 'not locked'}, "
             f"{'hardware heartbeat' if s.get('heartbeat') else 'no hardware heartbeat'}",
             "  daemon     " + ("attached" if s.get("controller") else "NOT ATTACHED")
             + (f"; a connector charges on its own, {s['orphan_left_s']:.0f} s of grace left"
                if s.get("orphan_left_s") is not None else "")]
    for c in hello.get("connectors", []):
        st = c["status"]
        pwm = "off (+12 V)" if st["duty"] >= 100 else f"{st['duty']:.1f} %, offering {st['offered_a']:g} A"
        lines.append(f"Connector {c['connector']}: IEC state {st['cp'] or 'invalid'}, contactor "
                     f"{'closed' if st['contactor'] else 'open'}, PWM {pwm}, energy "
                     f"{'granted' if st['allowed'] else 'not granted'}"
                     + ("" if c.get("operative", True) else ", unavailable"))
        claims = ", ".join(f"{k} {v:g} A" for k, v in sorted(c.get("claims", {}).items()))
        lines.append(f"  limits     {claims or 'none'}; binding {st['binding'] or '-'}")
        lines.append(f"  faults     {', '.join(st['faults']) or '-'}")
        if c.get("ev_left_at") is not None:
            when = datetime.datetime.fromtimestamp(c["ev_left_at"]).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(f"  EV left    {when}, with no daemon attached: energy withdrawn; the daemon, back, "
                         "ends its transaction then")
    return "\n".join(lines)


@click.command("safety")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Station configuration file: [safety] channel says where the supervisor listens.")
@click.option("--json", "json_output", is_flag=True, help="Print JSON (for scripts).")
def safety(config_path: str, json_output: bool) -> None:
    """The safety supervisor's state, from the supervisor itself (read-only; works without the daemon)."""
    try:
        config = load_safety_view(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration rejected: {exc}") from None
    client = SupervisorClient(channel_path(config), read_only=True)
    try:
        hello = client.connect(2.0)
    except WireError as exc:
        raise click.ClickException(f"{exc.message} (systemctl status chargepoint-safety)") from None
    finally:
        client.close()
    click.echo(json.dumps(hello, default=str) if json_output else as_text(hello))


def register(main: click.Group) -> None:
    main.add_command(safety)
