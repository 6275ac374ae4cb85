"""fragscan.scan_to: the scan plus its outputs, the mask built from the network the scan held."""

import importlib

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import fragscan
from fragscan.cli import app
from fragscan.models import MODELS, create_model
from fragscan.outputs import masks
from fragscan.outputs.masks import build_mask, reported_network
from fragscan.pipeline.resume import DIRECTORY_NAME

QUICK = dict(max_samples=40, thresholds=3, eps=0.1, filters=("pulse",), bootstrap=0, classify="tau", batch_size=40)
# Enough bands and samples that a band mask holds both trainable and frozen elements.
BANDS = {**QUICK, "max_samples": 60, "thresholds": 5}
ALL_OUTPUTS = ["report.json", "curves.csv", "report.html", "mask.safetensors"]


def _shipped_weights() -> dict[str, torch.Tensor]:
    return load_file(MODELS.entry("digits-cnn").meta["spec"].default_weights)


def _mask_tensors(path) -> dict[str, torch.Tensor]:
    return load_file(path)


def _mask_file(path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(str(path), framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}, handle.metadata()


def _differ(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(first[name], second[name]) for name in first)


def test_outputs_and_a_mask_identical_to_one_from_the_reread_weights_file(tmp_path, monkeypatch):
    out = tmp_path / "out"
    with monkeypatch.context() as patch:
        patch.setattr(masks, "reported_network", lambda *a, **k: pytest.fail("scan_to read the weights file again"))
        outputs = fragscan.scan_to(fragscan.ScanConfig(**BANDS), out)
    assert [p.name for p in outputs.written] == ALL_OUTPUTS
    assert all(p.parent == out and p.is_file() for p in outputs.written)
    assert outputs.no_mask is None
    assert not (out / DIRECTORY_NAME).exists()  # the checkpoints are gone once the report is written
    assert fragscan.load_report(out / "report.json") == outputs.report
    from_file = build_mask(outputs.report, reported_network(outputs.report), policy="band")
    tensors, metadata = _mask_file(out / "mask.safetensors")
    # safetensors orders header metadata arbitrarily, so bytes can differ: compare what it holds
    assert metadata == from_file.metadata
    assert set(tensors) == set(from_file.tensors) and not _differ(tensors, from_file.tensors)
    assert {int(t.min()) for t in tensors.values()} == {0, 1}  # a mask with something frozen


def test_the_mask_is_built_from_the_weights_the_report_analysed(tmp_path):
    """Two checkpoints: the shipped weights, then a perturbed copy. The report's body is the last
    checkpoint, so its mask must come from the perturbed weights, not the first or the shipped ones."""
    shipped = _shipped_weights()
    noise = torch.Generator().manual_seed(1)
    # Small enough to keep the network accurate, large enough to move elements between pulse bands.
    perturbed = {
        name: t + 0.2 * t.std() * torch.randn(t.shape, generator=noise) if t.dim() > 1 else t
        for name, t in shipped.items()
    }
    save_file(shipped, tmp_path / "epoch1.safetensors")
    save_file(perturbed, tmp_path / "epoch2.safetensors")
    config = fragscan.ScanConfig(
        checkpoints=(tmp_path / "epoch1.safetensors", tmp_path / "epoch2.safetensors"), **BANDS
    )
    outputs = fragscan.scan_to(config, tmp_path / "out")
    assert outputs.report.model.weights == str(tmp_path / "epoch2.safetensors")
    written = _mask_tensors(tmp_path / "out" / "mask.safetensors")
    from_last = build_mask(outputs.report, reported_network(outputs.report), policy="band").tensors
    from_first = build_mask(
        outputs.report, create_model("digits-cnn", weights=tmp_path / "epoch1.safetensors").net
    ).tensors
    assert not _differ(written, from_last)
    assert _differ(from_first, from_last)  # the test can tell the two networks' masks apart
    assert _differ(written, from_first)


@pytest.mark.parametrize(
    ("overrides", "with_model", "no_mask"),
    [
        (dict(scope="global"), False, None),  # global scope with pulse: band classes exist
        (
            dict(scope="global", filters=("step-up",), summary_filter="step-up"),
            False,
            "a global-scope scan without the pulse filter",
        ),
        ({}, True, "the model was scanned without a weights file"),  # a model object, no file named
    ],
)
def test_a_mask_is_written_exactly_when_the_report_supports_one(tmp_path, overrides, with_model, no_mask):
    out = tmp_path / "out"
    config = fragscan.ScanConfig(**{**QUICK, **overrides})
    outputs = fragscan.scan_to(config, out, model=create_model("digits-cnn") if with_model else None)
    assert (out / "mask.safetensors").is_file() == (no_mask is None)
    if no_mask is None:
        assert outputs.no_mask is None and [p.name for p in outputs.written] == ALL_OUTPUTS
        assert not _differ(
            _mask_tensors(out / "mask.safetensors"), build_mask(outputs.report, create_model("digits-cnn").net).tensors
        )
    else:
        assert outputs.no_mask.startswith(no_mask)
        assert [p.name for p in outputs.written] == ALL_OUTPUTS[:3]


def test_scan_to_checks_names_and_out_before_loading_any_data(tmp_path, monkeypatch):
    monkeypatch.setattr(
        importlib.import_module("fragscan.pipeline.scanning"),
        "create_dataset",
        lambda *a, **k: pytest.fail("data loaded"),
    )
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(fragscan.FragscanError, match="unknown model"):
        fragscan.scan_to(fragscan.ScanConfig(model="digits-cnm", **QUICK), blocker / "out")
    with pytest.raises(fragscan.FragscanError, match="cannot write to --out"):
        fragscan.scan_to(fragscan.ScanConfig(**QUICK), blocker / "out")


def test_the_cli_says_why_there_is_no_mask(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "scan",
            "--max-samples",
            "40",
            "--thresholds",
            "3",
            "--eps",
            "0.1",
            "--filters",
            "step-up",
            "--summary-filter",
            "step-up",
            "--scope",
            "global",
            "--bootstrap",
            "0",
            "--classify",
            "tau",
            "--out",
            str(tmp_path),
        ],
    )
    assert result.exit_code == 0, result.output
    assert (
        "no mask.safetensors: a global-scope scan without the pulse filter has no classes to mask by" in result.output
    )
    assert not (tmp_path / "mask.safetensors").exists() and (tmp_path / "report.json").is_file()
