"""``chargepoint run``'s command line, read without click (app/command.py): what a technician and systemd see.

The same conventions as the rest of the CLI: ``--name VALUE`` or ``--name=VALUE``,
``-h``/``--help`` prints the help and exits 0, a wrong command line says what is
wrong after the usage line and exits 2, a refusal says ``Error: ...`` and exits 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargepoint.app import command, filemodes
from chargepoint.app.command import EXIT_USAGE, LOG_LEVELS, Options, UsageError, main, parse_options
from chargepoint.cli.main import main as cli


@pytest.mark.parametrize(("argv", "options"), [
    (["--config", "a.toml"], Options("a.toml")),
    (["--config=a.toml"], Options("a.toml")),
    (["--log-level", "debug", "--config", "a.toml"], Options("a.toml", "debug")),
    (["--config", "a.toml", "--log-level=warning"], Options("a.toml", "warning")),
    (["--config", "a.toml", "--config", "b.toml"], Options("b.toml")),  # the last counts
])
def test_options_as_given(argv, options):
    assert parse_options(argv) == options


@pytest.mark.parametrize("argv", [["-h"], ["--help"], ["--config", "a.toml", "--help"]])
def test_help_is_asked_for(argv):
    assert parse_options(argv) is None


@pytest.mark.parametrize(("argv", "said"), [
    ([], "Missing option '--config'."),
    (["--log-level", "info"], "Missing option '--config'."),
    (["--config"], "Option '--config' requires an argument."),
    (["--config", "a.toml", "--bogus"], "No such option: --bogus"),
    (["--config", "a.toml", "--bogus=1"], "No such option: --bogus"),
    (["a.toml"], "Got unexpected extra argument (a.toml)"),
    (["--config", "a.toml", "--log-level", "loud"],
     "Invalid value for '--log-level': 'loud' is not one of 'debug', 'info', 'warning', 'error'."),
])
def test_a_wrong_command_line_is_named(argv, said):
    with pytest.raises(UsageError) as wrong:
        parse_options(argv)
    assert str(wrong.value) == said


def test_help_shows_every_option_and_exits_0(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: chargepoint run [OPTIONS]\n")
    assert "Run the station daemon (what the systemd service starts)." in out
    for shown in ("--config FILE", "[required]", "--log-level LEVEL", "[default: info]", "-h, --help",
                  *LOG_LEVELS):
        assert shown in out


def test_a_wrong_command_line_exits_2_with_the_usage(capsys):
    assert main(["--config", "a.toml", "--log-level", "loud"]) == EXIT_USAGE == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: chargepoint run [OPTIONS]\n"
                          "Try 'chargepoint run --help' for help.\n\nError: ")
    assert "'loud' is not one of" in err


def test_a_refused_configuration_exits_1(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(command, "setup_logging", lambda level: None)
    monkeypatch.setattr(filemodes, "private_umask", lambda: None)  # this process keeps its umask
    assert main(["--config", str(tmp_path)]) == 1  # a directory: the loader says so
    err = capsys.readouterr().err
    assert err.startswith(f"Error: configuration rejected: {tmp_path}: ")
    assert "give the path of the configuration file itself" in err


def test_the_group_declares_the_same_options_for_its_help_and_completion(tmp_path, monkeypatch):
    listed = CliRunner().invoke(cli, ["--help"])
    assert "run " in listed.stdout and "Run the station daemon" in listed.stdout
    group_run = cli.commands["run"]
    assert sorted(o for p in group_run.params for o in p.opts) == sorted(command.OPTION_NAMES)
    assert list(next(p for p in group_run.params if p.name == "log_level").type.choices) == list(LOG_LEVELS)
    assert command.CONFIG_HELP in " ".join(command.HELP.split()) and command.SUMMARY in command.HELP
    completed = CliRunner().invoke(cli, [], prog_name="chargepoint", env={
        "_CHARGEPOINT_COMPLETE": "bash_complete", "COMP_WORDS": "chargepoint run --", "COMP_CWORD": "2"})
    assert {"plain,--config", "plain,--log-level"} <= set(completed.stdout.split())
    # Called through the group, it runs the daemon's own command with the options given.
    seen: list[list[str]] = []
    monkeypatch.setattr(command, "main", lambda argv: seen.append(argv) or 0)
    assert CliRunner().invoke(cli, ["run", "--config", "a.toml"]).exit_code == 0
    assert seen == [["--config", "a.toml", "--log-level", "info"]]


def test_the_commands_help_from_a_shell():
    done = subprocess.run([sys.executable, "-m", "chargepoint", "run", "-h"], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parents[2], check=False)
    assert done.returncode == 0 and done.stdout.startswith("Usage: chargepoint run [OPTIONS]"), done.stderr
