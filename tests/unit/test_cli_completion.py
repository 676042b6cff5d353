"""Shell completion as README describes it (click's mechanism, through the product's own group)."""

from __future__ import annotations

from click.testing import CliRunner

from chargepoint.cli import main


def test_bash_completion_script_and_words():
    script = CliRunner().invoke(main, [], prog_name="chargepoint",
                                env={"_CHARGEPOINT_COMPLETE": "bash_source"})
    assert script.exit_code == 0 and "_chargepoint_completion" in script.stdout
    words = CliRunner().invoke(main, [], prog_name="chargepoint", env={
        "_CHARGEPOINT_COMPLETE": "bash_complete", "COMP_WORDS": "chargepoint config re", "COMP_CWORD": "2"})
    assert words.exit_code == 0 and "plain,reset" in words.stdout.split()


def test_readme_says_how():
    from pathlib import Path

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert 'eval "$(_CHARGEPOINT_COMPLETE=bash_source chargepoint)"' in readme
