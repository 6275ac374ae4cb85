import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import fragscan
from fragscan.base.errors import InputError
from fragscan.cli import app
from fragscan.models import MODELS
from fragscan.pipeline.checkpoints import checkpoint_files
from fragscan.report import load_report
from fragscan.report.html import render_html

QUICK = dict(max_samples=40, thresholds=3, eps=0.1, filters="pulse", bootstrap=0, classify="tau", batch_size=40)


@pytest.fixture(scope="module")
def epochs(tmp_path_factory):
    """Two checkpoints: the shipped weights, and a copy whose first conv is damaged."""
    directory = tmp_path_factory.mktemp("epochs")
    state = load_file(MODELS.entry("digits-cnn").meta["spec"].default_weights)
    save_file(state, directory / "epoch10.safetensors")
    damaged = {k: v.clone() for k, v in state.items()}
    damaged["features.0.weight"] = damaged["features.0.weight"] + 0.3 * torch.randn(
        damaged["features.0.weight"].shape, generator=torch.Generator().manual_seed(0)
    )
    save_file(damaged, directory / "epoch2.safetensors")
    return directory


def test_checkpoint_files_sort_naturally(epochs, tmp_path):
    assert [p.name for p in checkpoint_files(epochs)] == ["epoch2.safetensors", "epoch10.safetensors"]
    with pytest.raises(InputError, match="holds no"):
        checkpoint_files(tmp_path)


def test_one_report_holds_every_checkpoints_scores(epochs):
    paths = tuple(checkpoint_files(epochs))
    report = fragscan.scan(fragscan.ScanConfig(checkpoints=paths, **QUICK))
    single = fragscan.scan(fragscan.ScanConfig(weights=paths[0], **QUICK))
    assert [c.label for c in report.checkpoints] == ["epoch2", "epoch10"]
    assert report.settings.checkpoints == paths and report.settings.weights is None
    first, last = report.checkpoints
    assert first.baseline.clean == single.baseline.clean
    assert [g.filters["pulse"].scores for g in first.groups] == [g.filters["pulse"].scores for g in single.groups]
    # The body is the last checkpoint's full scan, in the single-checkpoint shape.
    assert report.model.weights == str(paths[1])
    assert [g.filters["pulse"].scores for g in last.groups] == [g.filters["pulse"].scores for g in report.groups]
    assert first.baseline.clean != last.baseline.clean  # the damaged conv shows
    html = render_html(report)
    assert "Across 2 checkpoints" in html and html.count("<svg") == len(report.groups) + 3


def test_each_checkpoint_records_the_precision_its_sweep_ran_in(epochs, tmp_path):
    # bf16 flips a prediction only near a decision boundary: damage the first conv hard enough that,
    # at 100 samples, one sample of the damaged epoch flips and none of the shipped weights'
    state = load_file(epochs / "epoch10.safetensors")
    save_file(state, tmp_path / "epoch10.safetensors")
    state["features.0.weight"] = state["features.0.weight"] + 2.0 * torch.randn(
        state["features.0.weight"].shape, generator=torch.Generator().manual_seed(0)
    )
    save_file(state, tmp_path / "epoch2.safetensors")
    paths = tuple(checkpoint_files(tmp_path))
    reduced = dict(QUICK, max_samples=100, precision="bf16")
    disagreements = [
        fragscan.scan(
            fragscan.ScanConfig(weights=p, **reduced, precision_tolerance=1.0)
        ).settings.precision_disagreement
        for p in paths
    ]
    assert disagreements[0] > disagreements[1]  # bf16 moves more of the damaged epoch's samples
    tolerance = sum(disagreements) / 2
    report = fragscan.scan(fragscan.ScanConfig(checkpoints=paths, **reduced, precision_tolerance=tolerance))
    assert [c.precision_used for c in report.checkpoints] == ["fp32", "bf16"]
    assert [c.precision_disagreement for c in report.checkpoints] == disagreements
    assert any(w.startswith("epoch2.safetensors: ") and "the sweep ran in fp32" in w for w in report.warnings)
    html = render_html(report)
    assert "ε=0.1, bf16)" in html and "ε=0.1, fp32" not in html


def test_a_single_checkpoint_report_has_no_checkpoints_field(epochs):
    report = fragscan.scan(fragscan.ScanConfig(weights=epochs / "epoch10.safetensors", **QUICK))
    assert report.checkpoints is None


def test_cli_takes_repeated_weights_and_fails_fast_on_a_missing_one(epochs, tmp_path):
    arguments = [
        "scan",
        "--max-samples",
        "40",
        "--thresholds",
        "3",
        "--eps",
        "0.1",
        "--filters",
        "pulse",
        "--bootstrap",
        "0",
        "--classify",
        "tau",
        "--quiet",
    ]
    result = CliRunner().invoke(
        app,
        [
            *arguments,
            "--weights",
            str(epochs / "epoch2.safetensors"),
            "--weights",
            str(epochs / "missing.safetensors"),
            "--out",
            str(tmp_path / "bad"),
        ],
    )
    assert result.exit_code == 2 and "missing.safetensors' not found" in result.output
    result = CliRunner().invoke(app, [*arguments, "--checkpoints", str(epochs), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert len(load_report(tmp_path / "out" / "report.json").checkpoints) == 2


def test_an_interrupted_multi_checkpoint_scan_resumes_each_weights_file(epochs, tmp_path, monkeypatch):
    import importlib

    scan_module = importlib.import_module("fragscan.pipeline.scanning")
    files = checkpoint_files(epochs)
    config = fragscan.ScanConfig(checkpoints=files, **QUICK)
    reference = fragscan.scan(config)
    real, calls = scan_module.sweep_target, []

    def interrupted(*args, **kwargs):
        calls.append(args[2])
        if len(calls) > 7:  # all 5 groups of the first file, 2 of the second
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(scan_module, "sweep_target", interrupted)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(config, resume_dir=tmp_path / "ckpt")
    resumed = fragscan.scan(config, resume_dir=tmp_path / "ckpt")
    assert resumed.run.resumed_targets == 7
    assert resumed.model_dump(exclude={"run"}) == reference.model_dump(exclude={"run"})
