import json

import pytest
from typer.testing import CliRunner

from fragscan.cli import app

runner = CliRunner()


def test_scan_writes_a_report(tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["scan", "--max-samples", "40", "--thresholds", "3", "--eps", "0.1", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["settings"]["max_samples"] == 40
    assert len(report["groups"]) == 5


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--filters", "stepup"], "unknown filter 'stepup'; did you mean step-up"),
        (["--attack", "PDG"], "unknown attack 'PDG'; did you mean PGD"),
        (["--thresholds", "1"], "--thresholds must be at least 3"),
        (["--eps", "-1"], "--eps must be 'auto' or a number in [0, 1]"),
        (["--eps", "big"], "--eps must be a number or 'auto'"),
        (["--max-samples", "0"], "--max-samples must be at least 1"),
        (["--attack-mode", "sometimes"], "--attack-mode"),
        (["--weights", "missing.safetensors"], "weights file 'missing.safetensors' not found"),
        (["--precision", "fp8"], "--precision"),
        (["--precision-tolerance", "2"], "--precision-tolerance must lie in [0, 1]"),
        (["--precision", "fp16", "--device", "cpu"], "use --precision bf16 there"),
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
