"""``chargepoint web ...``: the dashboard's password.

The password is set on the station itself (as root or the service user), not
through the dashboard: whoever can run this command can already read the
state directory.
"""

from __future__ import annotations

import json
import sys

import click

from chargepoint.config import ConfigError, load


@click.group("web")
def web_group() -> None:
    """The web dashboard ([web] in the configuration)."""


@web_group.command("passwd")
@click.option("--config", "config_path", required=True, type=click.Path(dir_okay=False),
              help="Station configuration file: the password goes into its station.state_dir.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (for scripts).")
@click.option("--json", "json_output", is_flag=True, help="Print JSON (for scripts).")
def passwd(config_path: str, password_stdin: bool, json_output: bool) -> None:
    """Set the dashboard's password (stored as a salted scrypt hash, mode 0600).

    Needed before [web] listen is anything but loopback; with a password set,
    the dashboard asks for it before it shows the station or does anything.
    A running daemon takes it at once (no restart); a changed password ends
    every dashboard session.
    """
    from chargepoint.web.passwords import MIN_LENGTH, hash_password, write_hash

    try:
        config = load(config_path)
    except ConfigError as exc:
        raise click.ClickException(f"configuration rejected: {exc}") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        # The questions go to stderr under --json: stdout carries the one JSON answer.
        password = click.prompt("New dashboard password", hide_input=True, confirmation_prompt=True,
                                err=json_output)
    if len(password) < MIN_LENGTH:
        raise click.ClickException(f"a password needs at least {MIN_LENGTH} characters")
    try:
        path = write_hash(config.station.state_dir, hash_password(password))
    except OSError as exc:
        raise click.ClickException(f"cannot write the password into {config.station.state_dir}: "
                                   f"{exc.strerror or exc}: run it as the station's service user, or with "
                                   "sudo (the directory is the configuration's station.state_dir)") from None
    if json_output:
        click.echo(json.dumps({"ok": True, "file": str(path), "mode": "0600"}))
        return
    click.echo(f"dashboard password set ({path}, mode 0600)")


def register(main: click.Group) -> None:
    main.add_command(web_group)
