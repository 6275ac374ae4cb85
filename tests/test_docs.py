"""The README and --help stay true to the CLI: every command is documented in both places."""

import re
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from fragscan.cli import app

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
COMMANDS = sorted(typer.main.get_command(app).commands)


def test_the_cli_has_the_commands_the_brief_names():
    assert {"scan", "report", "mask", "retrain", "train", "audit", "compare", "models", "datasets", "attacks", "filters"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_readme_row(command):
    assert re.search(rf"^\| `fragscan {command}\b", README, re.MULTILINE), f"README's Commands table lacks `fragscan {command}`"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_and_option_has_help_text(command):
    click_command = typer.main.get_command(app).commands[command]
    assert click_command.help, f"`fragscan {command}` has no help text"
    for parameter in click_command.params:
        if parameter.param_type_name == "option":
            assert parameter.help, f"`fragscan {command} {parameter.opts[0]}` has no help text"
    assert CliRunner().invoke(app, [command, "--help"]).exit_code == 0


def test_the_quickstart_commands_are_make_targets():
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "make scan" in README and "make test" in README
    assert re.search(r"^scan:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
    assert "make test" in (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()
