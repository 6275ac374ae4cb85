import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fragscan.cli import app

runner = CliRunner()


def test_scan_writes_a_report(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["scan", "--max-samples", "40", "--thresholds", "3", "--eps", "0.1", "--quiet", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["max_samples"] == 40
    assert len(report["groups"]) == 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--filters", "stepup"], "unknown filter 'stepup'; did you mean step-up"),
        (["--attack", "PDG"], "unknown attack 'PDG'; did you mean PGD"),
        (["--thresholds", "1"], "--thresholds must lie in [3, 1000]"),
        (["--eps", "-1"], "--eps must be 'auto' or a number in [0, 1]"),
        (["--eps", "big"], "--eps must be a number or 'auto'"),
        (["--max-samples", "0"], "--max-samples must be at least 1"),
        (["--attack-mode", "sometimes"], "--attack-mode"),
        (["--weights", "missing.safetensors"], "missing.safetensors' not found"),
        (["--precision", "fp8"], "--precision"),
        (["--precision-tolerance", "2"], "--precision-tolerance must lie in [0, 1]"),
        (["--precision", "fp16", "--device", "cpu"], "use --precision bf16 there"),
        (["--select", "layer4.*"], "--select layer4.* matches no analysable tensor of 'digits-cnn'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_with_no_report(tmp_path, arguments, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", "--max-samples", "20", "--thresholds", "3", "--out", str(out), *arguments])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (out / "report.json").exists()


def test_progress_in_a_log_is_one_line_per_group_and_nothing_before_an_error(tmp_path):
    result = runner.invoke(
        app, ["scan", "--max-samples", "20", "--thresholds", "3", "--eps", "0.1", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    progress = [line for line in result.output.splitlines() if "cells done, at " in line]
    assert [line.split(", at ")[1] for line in progress] == [
        "features.0.weight",
        "features.2.weight",
        "features.6.weight",
        "classifier.1.weight",
        "classifier.3.weight",
    ]
    failed = runner.invoke(app, ["scan", "resnet18", "cifar10", "--out", str(tmp_path / "other")])
    assert failed.output.startswith("error: dataset 'cifar10' reads files from disk")


def test_unwritable_out_is_one_line_and_exit_2(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(app, ["scan", "--out", str(blocker / "sub")])
    assert result.exit_code == 2
    assert "cannot write to --out" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("command", ["scan", "models", "datasets", "filters", "attacks"])
def test_every_command_explains_itself(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert len(result.output) > 100


def test_listing_commands_name_the_builtins():
    assert "digits-cnn" in runner.invoke(app, ["models"]).output
    assert "digits" in runner.invoke(app, ["datasets"]).output
    assert "pulse" in runner.invoke(app, ["filters"]).output
    assert "FGSM" in runner.invoke(app, ["attacks"]).output


def test_the_attack_listing_says_what_eps_bounds():
    from fragscan.sweep.attacks import eps_meaning

    assert [eps_meaning(name) for name in ("FGSM", "PGDL2", "DeepFool")] == [
        "each pixel's change",
        "L2 norm of the change",
        "nothing (no eps)",
    ]
    listing = runner.invoke(app, ["attacks", "PGDL2"], terminal_width=200).output
    assert "L2 norm of the change" in listing


ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("arguments", "message", "help_command"),
    [
        (["scan", "--thresholds", "abc"], "Invalid value for '--thresholds': ", "fragscan scan"),
        (["scan", "--max-samples", ""], "Invalid value for '--max-samples': ", "fragscan scan"),
        (["scan", "--tau", "x"], "Invalid value for '--tau': ", "fragscan scan"),
        (["scan", "--no-such-option"], "No such option: --no-such-option", "fragscan scan"),
        (["scna"], "No such command 'scna'", "fragscan"),
        (["--no-such-option"], "No such option: --no-such-option", "fragscan"),
        (["mask"], "Missing argument", "fragscan mask"),
        (
            ["audit", "report.json", "--max-fragile-share", "half"],
            "Invalid value for '--max-fragile-share': ",
            "fragscan audit",
        ),
        (["retrain", "--epochs", "one"], "Invalid value for '--epochs': ", "fragscan retrain"),
        (["models", "--bogus"], "No such option: --bogus", "fragscan models"),
    ],
)
def test_values_click_cannot_parse_are_one_line_and_exit_2(arguments, message, help_command):
    result = runner.invoke(app, arguments)
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(f"error: {message}") and lines[0].endswith(f"(see '{help_command} --help')"), (
        result.output
    )


def _fragscan(*arguments: str) -> subprocess.CompletedProcess:
    """``python -m fragscan``: the path the console script also takes (both call fragscan.cli.main)."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "fragscan", *arguments], cwd=ROOT, env=environment, capture_output=True, text=True
    )


def test_a_usage_error_is_one_red_line_on_stderr_from_the_real_entry_point():
    result = _fragscan("scan", "--thresholds", "abc", "--out", "never-written")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: Invalid value for '--thresholds': ") and lines[0].endswith(
        "(see 'fragscan scan --help')"
    )
    assert not (ROOT / "never-written").exists()


def test_help_and_bare_fragscan_still_show_the_help_from_the_real_entry_point():
    helped = _fragscan("scan", "--help")
    assert helped.returncode == 0 and "--thresholds" in helped.stdout and "error:" not in helped.stdout + helped.stderr
    bare = _fragscan()
    assert bare.returncode == 2  # click's convention: no command is a usage error, answered with the help
    assert "scan" in bare.stdout + bare.stderr and "error:" not in bare.stdout + bare.stderr


def test_bare_fragscan_shows_the_help_in_the_test_runner_too():
    result = runner.invoke(app, [])
    assert result.exit_code == 2 and "Commands" in result.output and "error:" not in result.output
