"""The README, the manual in docs/ and --help stay true to the CLI: every command is documented in each."""

import re
from pathlib import Path

import pytest
import typer.main
import yaml
from typer.testing import CliRunner

from fragscan.cli import app
from fragscan.cli._options import help_text
from fragscan.config import RetrainConfig, ScanConfig, TrainConfig
from fragscan.outputs.auditing import AuditPolicy

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CLI_PAGE = (ROOT / "docs" / "cli.md").read_text()
COMMANDS = sorted(typer.main.get_command(app).commands)


def test_the_cli_has_the_commands_the_brief_names():
    assert {
        "scan",
        "report",
        "mask",
        "retrain",
        "train",
        "audit",
        "compare",
        "models",
        "datasets",
        "attacks",
        "filters",
    } <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_readme_row(command):
    assert re.search(rf"^\| `fragscan {command}\b", README, re.MULTILINE), (
        f"README's Commands table lacks `fragscan {command}`"
    )
    assert re.search(rf"^\| `fragscan {command}\b", CLI_PAGE, re.MULTILINE), f"docs/cli.md lacks `fragscan {command}`"


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_and_option_has_help_text(command):
    click_command = typer.main.get_command(app).commands[command]
    assert click_command.help, f"`fragscan {command}` has no help text"
    for parameter in click_command.params:
        if parameter.param_type_name == "option":
            assert parameter.help, f"`fragscan {command} {parameter.opts[0]}` has no help text"
    assert CliRunner().invoke(app, [command, "--help"]).exit_code == 0


# Options that fill a settings field under another name, or mean something else by leaving it out.
RENAMED = {("audit", "baseline"): "baseline_report"}
NOT_THE_FIELD = {
    ("scan", "weights"): "repeatable: one file fills `weights`, several fill `checkpoints`",
    ("scan", "checkpoints"): "a directory, listed into `checkpoints`",
    ("scan", "adaptive"): "a switch; --initial-samples and --look-ratio fill the settings' looks",
    ("retrain", "model"): "required on the command line",
    ("retrain", "dataset"): "required on the command line",
}


@pytest.mark.parametrize(
    ("command", "settings"),
    [("scan", ScanConfig), ("train", TrainConfig), ("retrain", RetrainConfig), ("audit", AuditPolicy)],
)
def test_options_take_their_default_and_help_text_from_the_settings_field(command, settings):
    """Help text and defaults live once, in the settings model the command fills."""
    checked = 0
    for parameter in typer.main.get_command(app).commands[command].params:
        name = RENAMED.get((command, parameter.name), parameter.name)
        if name not in settings.model_fields or (command, parameter.name) in NOT_THE_FIELD:
            continue
        field = settings.model_fields[name]
        assert parameter.help == help_text(settings, name), (command, parameter.name)
        if parameter.required:
            assert field.is_required(), (command, parameter.name)
        else:  # click holds a repeatable option's default as a list, a text option's as text
            default = _flat(field.default)
            assert _flat(parameter.default) in (default, str(default)), (command, parameter.name)
        checked += 1
    assert checked >= 8


def _flat(value):
    return ",".join(value) if isinstance(value, (list, tuple)) else value


def test_the_quickstart_commands_are_make_targets():
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "make scan" in README and "make test" in README
    assert re.search(r"^scan:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)
    assert "make test" in (Path(__file__).resolve().parent.parent / ".ci" / "run").read_text()


def test_the_readme_is_a_front_door():
    assert len(README.splitlines()) <= 200, "the README is the front door: move the detail to a page in docs/"
    for target in re.findall(r"\]\(((?:docs/)[^)#]+)", README):
        assert (ROOT / target).is_file(), f"README links to {target}, which does not exist"


def test_every_page_of_the_manual_is_in_the_nav():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = {page for entry in nav for page in entry.values()}
    pages = {path.relative_to(ROOT / "docs").as_posix() for path in (ROOT / "docs").rglob("*.md")}
    assert pages <= listed, f"pages missing from mkdocs.yml's nav: {sorted(pages - listed)}"
    assert listed <= pages, f"nav entries without a page: {sorted(listed - pages)}"
