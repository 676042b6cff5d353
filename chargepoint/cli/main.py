"""The ``chargepoint`` command: the daemon, the demo, the bench CSMS, checks.

One command for the whole product, with a subcommand per job, so a technician
finds everything with ``chargepoint --help``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import click

from chargepoint import __version__
from chargepoint.app import command as run_command
from chargepoint.app.command import setup_logging
from chargepoint.config import ConfigError, load


class _JsonUsageGroup(click.Group):
    """Wrong usage (exit 2) under ``--json`` is a JSON error too, so a script reads every answer the same way.

    ``{"ok": false, "error": {"code": "usage", "message": ...}}`` on stdout, as
    the daemon's refusals are; without ``--json`` click prints its usual text.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode or "--json" not in argv:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            result = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            click.echo(json.dumps({"ok": False, "error": {"code": "usage", "message": exc.format_message()}}))
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            message = exc.format_message()
            click.echo(json.dumps({"ok": False, "error": {"code": "failed", "message": message}}))
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo(json.dumps({"ok": False, "error": {"code": "aborted", "message": "aborted"}}))
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=_JsonUsageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chargepoint")
def main() -> None:
    """Controller for AC EV charging stations on a Raspberry Pi, speaking OCPP 2.0.1 and 1.6J."""


@main.command("run", help=run_command.SUMMARY)
@click.option("--config", "config_path", required=True, metavar="FILE", help=run_command.CONFIG_HELP)
@click.option("--log-level", type=click.Choice(run_command.LOG_LEVELS), default="info", show_default=True)
def run(config_path: str, log_level: str) -> None:
    # `chargepoint run` goes to chargepoint.app.command, which reads these options with argparse, before
    # anything of the CLI is loaded (chargepoint.launcher); this entry lists the command in `chargepoint
    # --help`, completes its options, and serves callers of the group itself.
    sys.exit(run_command.main(["--config", config_path, "--log-level", log_level]))


@main.command("safe-off")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Station configuration file (TOML): only hal.backend and [board] are read.")
@click.option("--json", "json_output", is_flag=True, help="Print JSON (for scripts).")
def safe_off(config_path: str, json_output: bool) -> None:
    """Contactor coil off, pilot to -12 V, heartbeat stopped, RCM test released: directly, with no daemon.

    The systemd unit runs it after every stop of the daemon (ExecStopPost=); a
    technician may run it at any time. It reads only hal.backend and [board], so
    keys it does not know elsewhere in the file (a newer firmware's) never keep
    the outputs from being made safe. Exits 1 if an output could not be set.
    """
    from chargepoint.config.safety_view import load_board_view

    try:
        backend, board = load_board_view(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration rejected: {exc}") from None
    if board is None or backend != "raspberrypi":
        if json_output:
            click.echo(json.dumps({"ok": True, "file": config_path, "hal": backend, "outputs": []}))
        else:
            click.echo(f"{config_path}: hal {backend}: no board outputs to make safe")
        return
    if json_output:
        from chargepoint.backends.raspberrypi.safe_off import make_safe

        outputs = [{"output": what, "safe": done, "detail": detail}
                   for what, done, detail in make_safe(board)]
        ok = all(o["safe"] for o in outputs)
        click.echo(json.dumps({"ok": ok, "file": config_path, "hal": backend, "outputs": outputs}))
        if not ok:
            sys.exit(1)
        return
    if not _safe_off(board, quiet=False):
        sys.exit(1)


def _safe_off(board: Any, *, quiet: bool) -> bool:
    from chargepoint.backends.raspberrypi.safe_off import make_safe

    log = logging.getLogger("chargepoint.safe_off")
    ok = True
    for what, done, detail in make_safe(board):
        ok = ok and done
        if not quiet:
            click.echo(f"{what}: {'safe' if done else 'FAILED'}: {detail}", err=not done)
        elif not done:
            log.error("safe-off: %s: %s", what, detail)
    return ok


@main.command("check-config")
@click.argument("config_path", type=click.Path(dir_okay=False))
@click.option("--json", "json_output", is_flag=True, help="Print JSON (for scripts).")
def check_config(config_path: str, json_output: bool) -> None:
    """Validate a configuration file without starting anything.

    Every problem is listed (file, key, reason), with the likely key for a
    misspelt one; whatever `chargepoint run` would refuse is refused here too
    (a dashboard beyond loopback without a password included). Values left
    from the example files are warnings.
    """
    from chargepoint.cli.start_checks import start_problems
    from chargepoint.config.loader import check
    from chargepoint.config.placeholders import placeholders
    from chargepoint.config.standalone import authority, standalone_warnings

    # The file's own checks and those the daemon makes when it starts: whatever `run` refuses.
    config, errors = check(config_path, at_start=start_problems)
    if errors:
        if json_output:
            listed = [{"file": e.file, "key": e.key, "reason": e.reason} for e in errors]
            click.echo(json.dumps({"ok": False, "error": listed[0], "errors": listed}))
        else:
            for error in errors:
                click.echo(f"Error: {error}", err=True)
            click.echo(f"{config_path}: {len(errors)} problem(s)", err=True)
        sys.exit(1)
    assert config is not None
    warnings = [p.text() for p in placeholders(config)]
    warnings += standalone_warnings(config)
    if json_output:
        click.echo(json.dumps({"ok": True, "file": config_path, "identity": config.station.identity,
                               "connectors": len(config.connectors), "hal": config.hal_backend,
                               "csms_url": config.ocpp.csms_url, "standalone": config.ocpp.standalone,
                               "warnings": warnings}))
        return
    for warning in warnings:
        click.echo(f"Warning: {config_path}: {warning}", err=True)
    click.echo(f"{config_path}: OK ({config.station.identity}, {len(config.connectors)} "
               f"connector(s), hal {config.hal_backend}, {authority(config)})"
               + (f", {len(warnings)} warning(s)" if warnings else ""))


@main.command()
@click.option("--speed", default=20.0, show_default=True, type=click.FloatRange(1, 200),
              help="How many times faster than real time the simulated EV and meter run.")
@click.option("--standalone", is_flag=True,
              help="A home station without a CSMS: local cards, the session history and its CSV.")
@click.option("--scenario", type=click.Choice(["session", "solar", "fuse"]), default="session",
              show_default=True,
              help="session: one charging session with the CSMS's frames; solar: a cloudy day in pv mode; "
                   "fuse: a kettle and an oven against the main fuse (each about a minute).")
@click.option("--ocpp", "ocpp_version", default="2.0.1", show_default=True,
              type=click.Choice(["2.1", "2.0.1", "1.6"]),
              help="The OCPP version the simulated station offers (the bench CSMS speaks all three); "
                   "2.1 also reports the session's cost.")
def demo(speed: float, standalone: bool, scenario: str, ocpp_version: str) -> None:
    """Simulated station + local CSMS: one whole charging session, with a timeline.

    The session runs the station's two processes: the safety supervisor (the simulated EV,
    circuit and contactor are its hardware) and the daemon on its channel. --standalone runs a
    home station without a CSMS; --scenario solar|fuse a simulated house (these three in one
    process, the safety loop beside the daemon).
    """
    from chargepoint.cli.demo import run_demo

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if standalone and scenario != "session":
        raise click.UsageError("--standalone runs its own session; it does not combine with --scenario")
    if standalone:
        from chargepoint.cli.demo_standalone import run_standalone_demo

        if asyncio.run(run_standalone_demo(speed=speed)) <= 0:
            raise click.ClickException("the session delivered no energy")
        return
    if scenario != "session":
        from chargepoint.cli.demo_energy import run_energy_demo

        figures = asyncio.run(run_energy_demo(scenario, speed=speed))
        if figures["energy_wh"] <= 0:
            raise click.ClickException("the EV charged nothing")
        return
    energy = asyncio.run(run_demo(speed=speed, ocpp=ocpp_version))
    if energy <= 0:
        raise click.ClickException("the session delivered no energy")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=9000, show_default=True, type=int)
@click.option("--accept-tag", "tags", multiple=True,
              help="Accept only these idTags (repeat); without it every card is accepted.")
@click.option("--heartbeat", default=300, show_default=True, type=int,
              help="Heartbeat interval given to stations at boot (s).")
@click.option("--quiet", is_flag=True, help="Print no frames (for long runs and benchmarks).")
def csms(host: str, port: int, tags: tuple[str, ...], heartbeat: int, quiet: bool) -> None:
    """A bench OCPP central system (2.0.1, 1.6J and 2.1) that prints every frame.

    Point a station's ocpp.csms_url at ws://HOST:PORT to commission it without
    the operator's backend.
    """
    from chargepoint.cli.demo import Timeline
    from chargepoint.protocol.bench_csms.v16 import CentralSystem
    from chargepoint.protocol.bench_csms.v21 import ALL_VERSIONS

    setup_logging("warning")
    timeline = Timeline()
    system = CentralSystem(accept_tags=set(tags) or None, heartbeat_interval_s=heartbeat,
                           on_frame=None if quiet else timeline.frame, record_frames=not quiet,
                           peers=dict(ALL_VERSIONS))

    async def serve() -> None:
        bound = await system.start(host, port)
        timeline.say(f"listening on ws://{host}:{bound}/<identity> (Ctrl-C to stop)")
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


@main.command()
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Take the meter settings from this station configuration ([meter]); "
                   "the options below override them.")
@click.option("--connector", default=1, show_default=True, type=click.IntRange(1, 99),
              help="With --config: the connector whose meter to read (its unit id).")
@click.option("--model", help="Register map of a shipped model (see --list).")
@click.option("--map", "map_file", type=click.Path(exists=True, dir_okay=False),
              help="A register map file of your own (TOML), instead of --model.")
@click.option("--port", help="Serial port of the RS-485 adapter (Modbus RTU), e.g. /dev/ttyUSB0.")
@click.option("--baud", type=click.Choice(["1200", "2400", "4800", "9600", "19200", "38400", "57600",
                                           "115200"]),
              help="RTU baud rate [default: 9600].")
@click.option("--parity", type=click.Choice(["N", "E", "O"]), help="RTU parity [default: N].")
@click.option("--stopbits", type=click.Choice(["1", "2"]), help="RTU stop bits [default: 1].")
@click.option("--host", help="Modbus TCP host or gateway (instead of --port).")
@click.option("--tcp-port", type=click.IntRange(1, 65535), help="Modbus TCP port [default: 502].")
@click.option("--unit", type=click.IntRange(1, 247), help="Modbus unit id [default: 1].")
@click.option("--timeout", type=click.FloatRange(0.05, 10), help="Seconds to wait for an answer.")
@click.option("--json", "json_output", is_flag=True, help="Print JSON (one object per reading).")
@click.option("--watch", is_flag=True, help="Read again every --interval seconds until Ctrl-C.")
@click.option("--interval", default=2.0, show_default=True, type=click.FloatRange(0.1, 3600))
@click.option("--list", "list_models", is_flag=True, help="List the shipped meter models and exit.")
def meter(config_path: str | None, connector: int, model: str | None, map_file: str | None,
          port: str | None, baud: str | None, parity: str | None, stopbits: str | None,
          host: str | None, tcp_port: int | None, unit: int | None, timeout: float | None,
          json_output: bool, watch: bool, interval: float, list_models: bool) -> None:
    """Read an energy meter directly, without the daemon (commissioning).

    \b
    chargepoint meter --model sdm630 --port /dev/ttyUSB0 --unit 1
    chargepoint meter --model abb-b23 --host 192.0.2.10 --unit 2 --json
    chargepoint meter --config /etc/chargepoint/chargepoint.toml --watch
    """
    from dataclasses import replace

    from chargepoint.backends.metering import bus_settings, register_map, unit_id
    from chargepoint.cli.meter_check import MeterTarget, check_meter, models_text
    from chargepoint.config import ConnectorConfig, MeterConfig
    from hal.meters.registermap import MapError

    if list_models:
        click.echo(json.dumps(_models_json()) if json_output else models_text())
        return
    meter_config, connector_config = MeterConfig(), ConnectorConfig(connector)
    if config_path:
        try:
            config = load(config_path)
        except ConfigError as exc:
            raise click.ClickException(f"configuration rejected: {exc}") from None
        meter_config = config.meter
        by_id = {c.id: c for c in config.connectors}
        if connector not in by_id:
            raise click.ClickException(f"{config_path} has no connector {connector}: give --connector "
                                       f"{' or '.join(map(str, sorted(by_id)))}")
        connector_config = by_id[connector]
    elif not (model or map_file):
        raise click.UsageError("which meter? give --model (see --list) or --map, or --config")
    if port and host:
        raise click.UsageError("--port (RTU) and --host (TCP) exclude each other")
    if not (port or host or config_path):
        raise click.UsageError("where is the meter? give --port (RTU) or --host (TCP), or --config")
    changes: dict[str, object] = {}
    if model or map_file:
        changes.update(model=model or meter_config.model, map_file=map_file or "")
    if port:
        changes.update(transport="rtu", port=port)
    if host:
        changes.update(transport="tcp", host=host)
    for key, value in (("baudrate", baud and int(baud)), ("parity", parity),
                       ("stopbits", stopbits and int(stopbits)), ("tcp_port", tcp_port),
                       ("timeout_s", timeout)):
        if value:
            changes[key] = value
    meter_config = replace(meter_config, **changes)  # type: ignore[arg-type]
    if unit is not None:
        connector_config = replace(connector_config, meter_unit_id=unit)
    try:
        target = MeterTarget(register_map(meter_config), bus_settings(meter_config),
                             unit_id(meter_config, connector_config), meter_config.retries)
    except (MapError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    try:
        ok = asyncio.run(check_meter(target, json_output=json_output, watch=watch, interval_s=interval))
    except KeyboardInterrupt:
        return
    if not ok:
        sys.exit(1)


def _models_json() -> list[dict[str, Any]]:
    """``meter --list --json``: each shipped register map once, with the names it is also known by."""
    from hal.meters.registermap import load_map, shipped_models

    by_file: dict[str, list[str]] = {}
    for name, file_name in shipped_models().items():
        by_file.setdefault(file_name, []).append(name)
    models = []
    for names in by_file.values():
        register_map = load_map(names[0])
        models.append({"model": register_map.model, "title": register_map.title,
                       "aliases": sorted(n for n in names if n != register_map.model),
                       "quantities": [f.quantity for f in register_map.fields],
                       "requests": len(register_map.plan())})
    return sorted(models, key=lambda m: m["model"])


from chargepoint.cli.control_commands import register  # noqa: E402 - the commands that talk to the daemon

register(main)

from chargepoint.cli.web_commands import register as register_web  # noqa: E402 - `chargepoint web ...`

register_web(main)



@main.command("firmware-guard", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def firmware_guard(args: tuple[str, ...]) -> None:
    """Roll back a new version that did not boot: prestart | check | show (see --help after it).

    systemd runs the same code as a plain script before every start of the service
    (ExecStartPre) and from a timer; README, "Firmware updates and diagnostics".
    """
    from chargepoint.core.firmware import trial

    sys.exit(trial.main(list(args) or ["--help"]))


@main.command("supervise", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def supervise(args: tuple[str, ...]) -> None:
    """Run the safety supervisor, the process that alone drives the charger's hardware (see --help after it).

    systemd starts it before the daemon (chargepoint-safety.service); on a simulated
    station `chargepoint run` starts one itself when none is running.
    """
    from chargepoint.supervisor.command import main as supervise_main

    sys.exit(supervise_main(list(args)))

from chargepoint.cli.safety_command import register as register_safety  # noqa: E402 - `chargepoint safety`

register_safety(main)
