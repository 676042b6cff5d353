"""``chargepoint run``'s command line, read by argparse without click (app/command.py): what a
technician and systemd see.

``-h``/``--help`` prints the help and exits 0, a wrong command line says what is wrong
after the usage line and exits 2, a refusal says ``Error: ...`` and exits 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from chargepoint.app import command, filemodes
from chargepoint.app.command import LOG_LEVELS, main, parser
from chargepoint.cli.main import main as cli


@pytest.mark.parametrize(("argv", "config", "level"), [
    (["--config", "a.toml"], "a.toml", "info"),
    (["--config=a.toml"], "a.toml", "info"),
    (["--log-level", "debug", "--config", "a.toml"], "a.toml", "debug"),
    (["--config", "a.toml", "--log-level=warning"], "a.toml", "warning"),
    (["--config", "a.toml", "--config", "b.toml"], "b.toml", "info"),  # the last counts
])
def test_options_as_given(argv, config, level):
    options = parser().parse_args(argv)
    assert (options.config, options.log_level) == (config, level)


@pytest.mark.parametrize(("argv", "said"), [
    ([], "the following arguments are required: --config"),
    (["--config"], "argument --config: expected one argument"),
    (["--config", "a.toml", "--bogus"], "unrecognized arguments: --bogus"),
    (["a.toml"], "the following arguments are required: --config"),
    (["--config", "a.toml", "--log-level", "loud"], "argument --log-level: invalid choice: 'loud'"),
])
def test_a_wrong_command_line_exits_2_naming_what_is_wrong(argv, said, capsys):
    with pytest.raises(SystemExit) as ended:
        main(argv)
    assert ended.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: chargepoint run [-h] --config FILE [--log-level LEVEL]\n"), err
    assert said in err


def test_help_shows_every_option_and_exits_0(capsys):
    with pytest.raises(SystemExit) as ended:
        main(["--help"])
    assert ended.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: chargepoint run ")
    assert "Run the station daemon (what the systemd service starts)." in out
    for shown in ("--config FILE", "--log-level LEVEL", "(default: info)", "-h, --help", *LOG_LEVELS):
        assert shown in out


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
    shown = parser().format_help()
    assert all(name in shown for name in command.OPTION_NAMES) and command.SUMMARY in shown
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
    assert done.returncode == 0 and done.stdout.startswith("usage: chargepoint run "), done.stderr
