"""The ``chargepoint`` command: the daemon, the demo, the bench CSMS, checks.

One command for the whole product, with a subcommand per job, so a technician
finds everything with ``chargepoint --help``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys

import click

from chargepoint import __version__
from chargepoint.config import ConfigError, load

LOG_LEVELS = ("debug", "info", "warning", "error")


def _setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if level != "debug":
        # The ocpp library logs every frame at INFO; that is debug detail here.
        logging.getLogger("ocpp").setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chargepoint")
def main() -> None:
    """Controller for AC EV charging stations on a Raspberry Pi, speaking OCPP 1.6J."""


@main.command()
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Station configuration file (TOML), e.g. /etc/chargepoint/chargepoint.toml.")
@click.option("--log-level", type=click.Choice(LOG_LEVELS), default="info", show_default=True)
def run(config_path: str, log_level: str) -> None:
    """Run the station daemon (what the systemd service starts)."""
    _setup_logging(log_level)
    try:
        config = load(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration rejected: {exc}") from None
    from chargepoint.daemon import Daemon
    from chargepoint.store import StoreError

    async def serve() -> str | None:
        daemon = Daemon(config)
        daemon.install_signal_handlers()
        await daemon.run()
        return daemon.restart_requested

    try:
        restart = asyncio.run(serve())
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    if restart:
        # OCPP Reset: start afresh in the same process slot (systemd sees no exit).
        logging.getLogger(__name__).info("restarting (%s reset)", restart)
        sys.stderr.flush()
        os.execv(sys.executable, [sys.executable, "-m", "chargepoint.cli", *sys.argv[1:]])


@main.command("check-config")
@click.argument("config_path", type=click.Path(dir_okay=False))
def check_config(config_path: str) -> None:
    """Validate a configuration file without starting anything."""
    try:
        config = load(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{config_path}: OK ({config.station.identity}, {len(config.connectors)} "
               f"connector(s), hal {config.hal_backend}, CSMS {config.ocpp.csms_url})")


@main.command()
@click.option("--speed", default=20.0, show_default=True, type=click.FloatRange(1, 200),
              help="How many times faster than real time the simulated EV and meter run.")
def demo(speed: float) -> None:
    """Simulated station + local CSMS: one whole charging session, with a timeline."""
    from chargepoint.demo import run_demo

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    energy = asyncio.run(run_demo(speed=speed))
    if energy <= 0:
        raise click.ClickException("the session delivered no energy")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=9000, show_default=True, type=int)
@click.option("--accept-tag", "tags", multiple=True,
              help="Accept only these idTags (repeat); without it every card is accepted.")
@click.option("--heartbeat", default=300, show_default=True, type=int,
              help="Heartbeat interval given to stations at boot (s).")
def csms(host: str, port: int, tags: tuple[str, ...], heartbeat: int) -> None:
    """A bench OCPP 1.6J central system that prints every frame.

    Point a station's ocpp.csms_url at ws://HOST:PORT to commission it without
    the operator's backend.
    """
    from chargepoint.demo import Timeline
    from chargepoint.protocol.csms import CentralSystem

    _setup_logging("warning")
    timeline = Timeline()
    system = CentralSystem(accept_tags=set(tags) or None, heartbeat_interval_s=heartbeat,
                           on_frame=timeline.frame)

    async def serve() -> None:
        bound = await system.start(host, port)
        timeline.say(f"listening on ws://{host}:{bound}/<identity> (Ctrl-C to stop)")
        await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
