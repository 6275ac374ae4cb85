"""Resume and faults: checkpoints, interruption, kill -9, out-of-memory back-off."""

import importlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

import fragscan
from fragscan.base.errors import ConfigError, InputError
from fragscan.cli import app
from fragscan.pipeline.resume import DIRECTORY_NAME, FinishedTarget, ResumeStore
from fragscan.sweep.engine import Curve, EngineInfo

scan_module = importlib.import_module("fragscan.pipeline.scanning")
ROOT = Path(__file__).resolve().parent.parent
FIVE_GROUPS = [
    "features.0.weight",
    "features.2.weight",
    "features.6.weight",
    "classifier.1.weight",
    "classifier.3.weight",
]
CLI_SCAN = [
    "scan",
    "--max-samples",
    "40",
    "--thresholds",
    "3",
    "--eps",
    "0.1",
    "--batch-size",
    "16",
    "--filters",
    "step-up,pulse",
    "--quiet",
]


def numbers(report) -> dict:
    data = json.loads(report.model_dump_json()) if not isinstance(report, dict) else dict(report)
    data.pop("run")
    return data


def interrupt_after(monkeypatch, finished: int):
    """Make the in-process sweep raise KeyboardInterrupt when target number ``finished`` starts."""
    calls = []
    real = scan_module.sweep_target

    def sweep_target(*args, **kwargs):
        calls.append(args[2])
        if len(calls) > finished:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(scan_module, "sweep_target", sweep_target)
    return calls


def test_a_resumed_scan_equals_an_uninterrupted_one(small_config, tmp_path, monkeypatch):
    # PGD has a random start, seeded per batch: a resumed scan must draw the same noise
    config = small_config(attack="PGD", filters="pulse", summary_filter="pulse", thresholds=3, max_samples=40)
    reference = fragscan.scan(config)
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(config, resume_dir=tmp_path / "ckpt")
    assert len(list((tmp_path / "ckpt" / "targets").glob("*.safetensors"))) == 2
    swept = interrupt_after(monkeypatch, 99)
    resumed = fragscan.scan(config, resume_dir=tmp_path / "ckpt")
    assert swept == FIVE_GROUPS[2:]
    assert resumed.run.resumed_targets == 2
    assert numbers(resumed) == numbers(reference)


def test_checkpoints_keep_curves_bit_for_bit(tmp_path):
    generator = torch.Generator().manual_seed(1)
    curves = {
        f: Curve(
            thresholds=[0.1 + 1e-17, -0.30000000000000004, 1 / 3],
            positions=[0.0, 0.5, 1.0],
            removed=[0, 7, 12],
            changed=[0, 6, 12],
            numel=12,
            clean=torch.rand(3, 11, generator=generator) > 0.5,
            adversarial=torch.rand(3, 11, generator=generator) > 0.5,
        )
        for f in ("step-up", "pulse")
    }
    store = ResumeStore(tmp_path, {"seed": 0})
    store.save("features.0.weight", FinishedTarget(curves, 32, "cpu", EngineInfo()))
    loaded = ResumeStore(tmp_path, {"seed": 0}).load("features.0.weight")
    assert (loaded.batch_size, loaded.device) == (32, "cpu")
    for f, curve in curves.items():
        back = loaded.curves[f]
        assert (back.thresholds, back.positions, back.removed, back.changed, back.numel) == (
            curve.thresholds,
            curve.positions,
            curve.removed,
            curve.changed,
            curve.numel,
        )
        assert back.clean.dtype == torch.bool and torch.equal(back.clean, curve.clean)
        assert torch.equal(back.adversarial, curve.adversarial)


def test_other_settings_on_resume_are_a_clear_error(small_config, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(small_config(), resume_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"differs in: eps, eps_used\).*--no-resume"):
        fragscan.scan(small_config(eps=0.05), resume_dir=tmp_path)
    fresh = fragscan.scan(small_config(eps=0.05), resume_dir=tmp_path, resume=False)
    assert fresh.run.resumed_targets == 0


def test_resuming_an_adaptive_scan_without_adaptive_names_only_adaptive(small_config, tmp_path, monkeypatch):
    """issue 23.21: it named 8 "differing" settings, 7 of them unchanged (the scoring settings an adaptive
    scan's fingerprint holds and a fixed one's leaves out)."""
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(small_config(adaptive={"initial_samples": 30}), resume_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"\(differs in: adaptive\);"):
        fragscan.scan(small_config(), resume_dir=tmp_path)


def test_scoring_settings_change_on_resume_without_sweeping_again(small_config, tmp_path, monkeypatch):
    first = small_config(filters="pulse,step-up", summary_filter="pulse", thresholds=3, max_samples=40)
    fragscan.scan(first, resume_dir=tmp_path)
    rescored = first.model_copy(
        update=dict(
            tau=0.05,
            bootstrap=50,
            classify="tau",
            summary_filter="step-up",
            summary_score="difference",
            baseline="density",
            normalise_by="first",
        )
    )
    swept = interrupt_after(monkeypatch, 99)
    resumed = fragscan.scan(rescored, resume_dir=tmp_path)
    assert swept == [] and resumed.run.resumed_targets == len(FIVE_GROUPS)
    assert numbers(resumed) == numbers(fragscan.scan(rescored))


def test_a_damaged_checkpoint_is_one_line(small_config, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        interrupt_after(patch, 1)
        with pytest.raises(KeyboardInterrupt):
            fragscan.scan(small_config(), resume_dir=tmp_path)
    (checkpoint,) = (tmp_path / "targets").glob("*.safetensors")
    checkpoint.write_bytes(checkpoint.read_bytes()[:-9])
    with pytest.raises(InputError, match="is damaged .*--no-resume") as error:
        fragscan.scan(small_config(), resume_dir=tmp_path)
    assert "\n" not in str(error.value)


def test_ctrl_c_exits_130_keeps_finished_groups_and_the_same_command_resumes(tmp_path, monkeypatch):
    out = tmp_path / "out"
    command = [*CLI_SCAN, "--out", str(out)]
    reference = CliRunner().invoke(app, [*CLI_SCAN, "--out", str(tmp_path / "reference")])
    assert reference.exit_code == 0, reference.output
    with monkeypatch.context() as patch:
        interrupt_after(patch, 3)
        interrupted = CliRunner().invoke(app, command)
    assert interrupted.exit_code == 130
    assert interrupted.output.strip().startswith("interrupted:") and "run the same command again" in interrupted.output
    assert len(interrupted.output.strip().splitlines()) == 1
    assert not (out / "report.json").exists()
    assert len(list((out / DIRECTORY_NAME / "targets").glob("*.safetensors"))) == 3
    resumed = CliRunner().invoke(app, command)
    assert resumed.exit_code == 0, resumed.output
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["resumed_targets"] == 3
    assert numbers(report) == numbers(json.loads((tmp_path / "reference" / "report.json").read_text()))
    assert not (out / DIRECTORY_NAME).exists()  # the finished report replaces the checkpoints


def test_kill_9_loses_at_most_the_group_in_flight(tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "fragscan", *CLI_SCAN, "--out", str(out)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    targets = out / DIRECTORY_NAME / "targets"
    deadline = time.monotonic() + 120
    while not list(targets.glob("*.safetensors")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    kept = len(list(targets.glob("*.safetensors")))
    assert 1 <= kept < 5 and not (out / "report.json").exists()
    resumed = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["run"]["resumed_targets"] >= kept
    fresh = subprocess.run(
        [*command[:-1], str(tmp_path / "fresh")], cwd=ROOT, env=environment, capture_output=True, text=True
    )
    assert fresh.returncode == 0, fresh.stderr
    assert numbers(report) == numbers(json.loads((tmp_path / "fresh" / "report.json").read_text()))


def test_a_second_scan_into_the_same_out_at_once_is_refused_on_one_line(tmp_path):
    """issue 23.19: of two identical `scan --adaptive --out D` at once, the second died with FileNotFoundError
    (exit 3) as the first removed the resume store; now --out is held by one run at a time."""
    out = tmp_path / "out"
    arguments = [*CLI_SCAN, "--adaptive", "--initial-samples", "30", "--out", str(out)]
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.Popen(
        [sys.executable, "-m", "fragscan", *arguments], cwd=ROOT, env=environment, stderr=subprocess.PIPE, text=True
    )
    deadline, manifest = time.monotonic() + 120, out / DIRECTORY_NAME / "manifest.json"
    while not manifest.exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.02)
    assert first.poll() is None, "the first scan ended before the second could start"
    second = CliRunner().invoke(app, arguments)
    assert first.wait() == 0, first.stderr.read()
    assert second.exit_code == 2, second.output
    lines = second.output.strip().splitlines()
    assert len(lines) == 1 and f"--out {str(out)!r} is in use by another fragscan run" in lines[0]
    assert (out / "report.json").is_file() and not list(out.glob(".*.lock"))  # the lock goes with the run


def test_a_scan_refused_after_opening_its_resume_store_leaves_nothing_to_resume(tmp_path, monkeypatch):
    """Issue 23.23: `--executor ray` with Ray unreachable left --out/.fragscan-checkpoints holding a manifest only."""
    def unreachable(*args, **kwargs):
        assert (tmp_path / "new" / DIRECTORY_NAME / "manifest.json").exists() or (tmp_path / "kept").exists()
        raise ConfigError("cannot start or reach Ray (127.0.0.1:1): timed out")

    monkeypatch.setattr(importlib.import_module("fragscan.pipeline.scanning"), "run_targets", unreachable)
    quick = ["scan", "--eps", "0.1", "--max-samples", "20", "--thresholds", "3", "--quiet", "--out"]
    refused = CliRunner().invoke(app, [*quick, str(tmp_path / "new")])
    assert refused.exit_code == 2 and "cannot start or reach Ray" in refused.output
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    (tmp_path / "kept" / "notes.txt").write_text("the user's")
    assert CliRunner().invoke(app, [*quick, str(tmp_path / "kept")]).exit_code == 2
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["notes.txt"]
