"""Hardening for CI use (issue 13): every number bounded and finite, every bad input one line and
exit 2 with nothing left in --out, and every feature carried through every command."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from html import escape
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

import fragscan
from fragscan.base.errors import ConfigError, InputError
from fragscan.cli import app
from fragscan.outputs.auditing import AuditPolicy, audit, load_policy, sarif
from fragscan.report import load_report, write_report

runner = CliRunner()
REPO = Path(__file__).resolve().parents[1]
# A scan small enough for a busy 2-core machine; tau: the evidence rule is issue 14's.
QUICK = [
    "--max-samples",
    "20",
    "--thresholds",
    "3",
    "--filters",
    "pulse",
    "--eps",
    "0.1",
    "--classify",
    "tau",
    "--bootstrap",
    "0",
]
QUICK_CONFIG = dict(max_samples=20, thresholds=3, filters="pulse", eps=0.1, classify="tau", bootstrap=0)


def one_line_exit_2(result, *expected: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for text in expected:
        assert text in lines[0], lines[0]


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """A scan of the embedded default with its weights copied to a file: (report path, weights path)."""
    from fragscan.models import model_spec

    root = tmp_path_factory.mktemp("scanned")
    weights = root / "digits.safetensors"
    shutil.copy(model_spec("digits-cnn").default_weights, weights)
    fragscan.scan_to(fragscan.ScanConfig(weights=weights, **QUICK_CONFIG), root / "out")
    return root / "out" / "report.json", weights


# 1 -------------------------------------------------------------------------------------------


def test_a_label_of_a_billion_is_refused_before_anything_is_built(tmp_path, memory_cap):
    data = tmp_path / "x.npz"
    labels = np.arange(20) % 3
    labels[7] = 10**9
    np.savez(data, x=np.zeros((20, 8, 8), np.uint8), y=labels)
    with memory_cap():  # the class list and classifier of 10**9 classes took 24 GB
        result = runner.invoke(
            app, ["scan", "small-cnn", "npz", "--data-root", str(data), *QUICK, "--out", str(tmp_path / "out")]
        )
    one_line_exit_2(result, "reach label 1000000000, beyond the 100000 classes", "0, 1, ..., K-1")
    assert not (tmp_path / "out").exists()


def test_a_plugin_dataset_with_a_huge_label_is_refused_too():
    from torch.utils.data import TensorDataset

    from fragscan.data import class_count

    dataset = TensorDataset(torch.zeros(2, 1, 4, 4), torch.tensor([0, 10**9]))
    with pytest.raises(InputError, match="reach label 1000000000"):
        class_count(dataset, None)


# 2, 3: every command's numbers ----------------------------------------------------------------

HUGE = "9" * 23
BAD_NUMBERS = [
    (["scan", *QUICK, "--tau", "nan"], "--tau must be a finite number in [0, 1) (a share of accuracy"),
    (["scan", *QUICK, "--tau", "inf"], "--tau must be a finite number in [0, 1) (a share of accuracy"),
    (["scan", *QUICK, "--tau", "1e308"], "--tau must lie in [0, 1) (a share of accuracy"),
    (["scan", *QUICK, "--tau", "1"], "--tau must lie in [0, 1)"),
    (["scan", *QUICK, "--adaptive", "--initial-samples", "1"], "--initial-samples must be at least 30"),
    (["scan", *QUICK, "--adaptive", "--look-ratio", "1e308"], "--look-ratio must lie in [1.01, 2]"),
    (["scan", *QUICK, "--thresholds", "1000000000000"], "--thresholds must lie in [3, 1000]"),
    (["scan", *QUICK, "--thresholds", HUGE], "--thresholds must lie in [3, 1000]"),
    (["scan", *QUICK, "--seed", HUGE], "--seed must lie in [0, 9223372036854775807]"),
    (["scan", *QUICK, "--bootstrap", "1000000000"], "--bootstrap must lie in [0, 10000]"),
    (["scan", *QUICK, "--precision-tolerance", "nan"], "--precision-tolerance must be a finite number in [0, 1]"),
    (["train", "digits-cnn", "digits", "--lr", "inf"], "--lr must be a finite number in (0, 10.0]"),
    (["train", "digits-cnn", "digits", "--lr", "1e30"], "--lr must lie in (0, 10.0]"),
    (["train", "digits-cnn", "digits", "--weight-decay", "nan"], "--weight-decay must be a finite number in [0, 10.0]"),
    (["train", "digits-cnn", "digits", "--weight-decay", "3.4e38"], "--weight-decay must lie in [0, 10.0]"),
    (["train", "digits-cnn", "digits", "--seed", HUGE], "--seed must lie in"),
    (["train", "digits-cnn", "digits", "--epochs", "1000000000000"], "--epochs must lie in [1, 100000]"),
    (["retrain", "digits-cnn", "digits", "--mask", "m.safetensors", "--lr", "inf"], "--lr must be a finite number"),
    (["retrain", "digits-cnn", "digits", "--mask", "m.safetensors", "--weight-decay", "nan"], "--weight-decay must be"),
    (["retrain", "digits-cnn", "digits", "--mask", "m.safetensors", "--seed", HUGE], "--seed must lie in"),
]


@pytest.mark.parametrize(("arguments", "message"), BAD_NUMBERS)
def test_non_finite_and_absurd_numbers_are_one_line_and_leave_nothing(tmp_path, arguments, message):
    out = tmp_path / "out"
    result = runner.invoke(app, [*arguments, "--out", str(out)])
    one_line_exit_2(result, message)
    assert not out.exists()  # not even a resume manifest that would block the next scan there


@pytest.mark.parametrize("samples", [1, 3, 10, 30])
def test_a_scan_of_a_few_samples_decides_nothing_from_a_zero_width_interval(samples):
    """Issue 23: `scan --max-samples 3 --eps 0.01 --thresholds 5 --attack-mode fixed` classed 3
    groups robust from bootstrap intervals of zero width."""
    config = fragscan.ScanConfig(max_samples=samples, eps=0.01, thresholds=5, attack_mode="fixed", filters="pulse")
    report = fragscan.scan(config)
    claims = [(g.summary_class, g.summary_interval) for g in report.groups]
    claims += [
        (getattr(curve.classes, kind), getattr(curve.intervals, kind))
        for g in report.groups for curve in g.filters.values() for kind in ("clean", "adversarial", "difference")
    ]  # fmt: skip
    for cls, interval in claims:
        if samples < 30:
            assert cls in ("inconclusive", "unperturbed", "undefined") and interval is None
        elif cls in ("fragile", "robust", "antifragile"):
            assert interval[1] - interval[0] > 0.2
    assert samples < 30 or any(interval is not None for _, interval in claims)


def test_every_numeric_setting_is_bounded_in_one_place():
    """Each settings model's numbers carry a limits.py type: a new option cannot forget its bounds."""
    from fragscan.config import RetrainConfig, TrainConfig, TrainSettings

    for model in (fragscan.ScanConfig, RetrainConfig, TrainSettings, TrainConfig):
        for name, field in model.model_fields.items():
            numeric = {int, float} & set(getattr(field.annotation, "__args__", (field.annotation,)))
            if numeric:
                assert field.metadata, f"{model.__name__}.{name} is a number without bounds"


def test_a_diverging_training_stops_instead_of_writing_nan_weights():
    from torch.utils.data import TensorDataset

    from fragscan.models import create_model
    from fragscan.models.train import TrainSettings, train

    model = create_model("small-cnn", num_classes=2, input_size=(1, 8, 8))
    overflowing = TensorDataset(torch.full((4, 1, 8, 8), 3e38), torch.tensor([0, 1, 0, 1]))
    with pytest.raises(ConfigError, match=r"training diverged in epoch 1 \(loss nan\).*lower --lr"):
        train(model, overflowing, TrainSettings(epochs=1))


# 4 -------------------------------------------------------------------------------------------


def test_an_audit_of_a_report_without_groups_says_so(scanned, tmp_path):
    report = load_report(scanned[0]).model_copy(update={"groups": []})
    with pytest.raises(InputError, match="rules max-fragile-share need analysed groups, but the report has none"):
        audit(report, AuditPolicy(max_fragile_share=0.5))
    write_report(report, tmp_path / "report.json")
    result = runner.invoke(app, ["audit", str(tmp_path / "report.json"), "--max-fragile-share", "0.5"])
    one_line_exit_2(result, "need analysed groups")


@pytest.mark.parametrize("section, field", [("baseline", "clean"), ("settings", "eps_used"), ("settings", "tau")])
def test_a_report_holding_nan_is_not_a_report(scanned, tmp_path, section, field):
    data = json.loads(scanned[0].read_text())
    data[section][field] = float("nan")
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))  # Python writes the bare NaN a broken tool would
    result = runner.invoke(app, ["audit", str(path), "--min-clean-accuracy", "0.5", "--out", str(tmp_path / "a")])
    one_line_exit_2(result, f"is not a fragscan report: {section}.{field}: Input should be a finite number")
    assert not (tmp_path / "a").exists()


def test_sarif_never_holds_a_bare_nan(scanned, tmp_path):
    from fragscan.outputs.auditing import Finding
    from fragscan.outputs.auditing.writing import write_audit_outputs

    result = audit(load_report(scanned[0]), AuditPolicy(min_clean_accuracy=1.0))
    finding = Finding(message="m", value=float("nan"))
    bad = result.model_copy(update={"rules": [result.rules[0].model_copy(update={"findings": [finding]})]})
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_audit_outputs(bad, tmp_path)
    assert not (tmp_path / "audit.sarif").exists()


# 5 -------------------------------------------------------------------------------------------


def test_a_json_policy_key_given_twice_is_refused(tmp_path):
    path = tmp_path / "policy.json"
    path.write_text('{"max_fragile_share": 0.1, "max_fragile_share": 0.9}')
    with pytest.raises(InputError, match="sets 'max_fragile_share' twice"):
        load_policy(path)


def test_a_guard_glob_matching_no_group_fails_before_the_sweep(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('must_not_be_fragile: ["clasifier.*"]\n')
    result = runner.invoke(app, ["scan", *QUICK, "--policy", str(policy), "--out", str(tmp_path / "out")])
    one_line_exit_2(result, "glob 'clasifier.*' matches no group of the model; groups: features.0.weight")
    assert not (tmp_path / "out").exists()  # no sweep ran: no progress, no resume manifest


# 6 -------------------------------------------------------------------------------------------


def test_a_report_with_a_damaged_curve_is_refused_without_naming_a_missing_option(scanned, tmp_path):
    data = json.loads(scanned[0].read_text())
    curve = data["groups"][0]["filters"]["pulse"]
    for key in ("thresholds", "positions", "removed", "changed", "clean", "adversarial"):
        curve[key] = curve[key][:1]
    path = tmp_path / "report.json"
    path.write_text(json.dumps(data))
    result = runner.invoke(app, ["mask", str(path), "--out", str(tmp_path / "m.safetensors")])
    one_line_exit_2(result, "has 1 thresholds, settings.thresholds says 3; the report is damaged")
    assert "--thresholds" not in result.output
    curve["clean"] = curve["clean"] * 2
    path.write_text(json.dumps(data))
    one_line_exit_2(runner.invoke(app, ["mask", str(path)]), "lists differ in length")


# 7, 10: the manual's plugin walk-through (docs/models.md), verbatim ------------------------------


def docs_block(page: str, marker: str) -> list[list[str]]:
    """The `fragscan ...` lines of the bash block in ``docs/<page>`` that mentions ``marker``."""
    blocks = re.findall(r"```bash\n(.*?)```", (REPO / "docs" / page).read_text(), re.S)
    block = next(b for b in blocks if marker in b)
    return [shlex.split(line)[1:] for line in block.splitlines() if line.startswith("fragscan ")]


def test_the_docs_plugin_example_works_with_train_scan_mask_and_retrain(tmp_path, monkeypatch):
    commands = docs_block("models.md", "examples/my_plugin.py")
    assert [c[0] for c in commands] == ["train", "scan", "mask", "retrain"]
    (tmp_path / "examples").mkdir()
    shutil.copy(REPO / "examples" / "my_plugin.py", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    for arguments in commands:
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, (arguments, result.output)
    # 10: from another directory, the report's recorded (absolute) weights and plugin file still resolve
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    plugin = str(tmp_path / "examples" / "my_plugin.py")
    report_path = str(tmp_path / "tinymlp-scan" / "report.json")
    result = runner.invoke(app, ["mask", report_path, "--plugin", plugin, "--out", "m.safetensors"])
    assert result.exit_code == 0, result.output
    report = load_report(tmp_path / "tinymlp-scan" / "report.json")
    assert Path(report.model.weights).is_absolute() and all(Path(p).is_absolute() for p in report.settings.plugins)
    assert (tmp_path / "tinymlp-retrain" / "retrain.json").is_file()


@pytest.mark.parametrize("bins", ["0", "1001", "1000000000000", "9" * 23])
def test_compare_depth_bins_are_bounded(scanned, bins):
    report = str(scanned[0])
    result = runner.invoke(app, ["compare", report, report, "--by", "role", "--depth-bins", bins])
    one_line_exit_2(result, "--depth-bins must lie in [1, 1000]")


def test_settings_made_through_the_library_hold_absolute_paths(tmp_path, monkeypatch):
    """Not only the CLI's: settings given relative paths hold them resolved, so a report or result
    written through the API names files that a command run from another directory finds."""
    from fragscan.config import RetrainConfig, TrainConfig

    monkeypatch.chdir(tmp_path)
    here = tmp_path.resolve()
    scan = fragscan.ScanConfig(weights="w.safetensors", data_root="data", plugins=["p.py"])
    assert (scan.weights, scan.data_root, scan.plugins) == (here / "w.safetensors", here / "data", (here / "p.py",))
    assert fragscan.ScanConfig(checkpoints=["a.safetensors"]).checkpoints == (here / "a.safetensors",)
    with pytest.raises(ValueError, match="names the file .* twice"):  # the same file, relative and absolute
        fragscan.ScanConfig(checkpoints=["a.safetensors", here / "a.safetensors"])
    assert TrainConfig(model="digits-cnn", dataset="digits", weights="w.safetensors").weights == here / "w.safetensors"
    retrain = RetrainConfig(mask="m.safetensors", data_root="data")
    assert (retrain.mask, retrain.data_root) == (here / "m.safetensors", here / "data")


def test_a_report_never_makes_fragscan_run_the_plugin_files_it_names(scanned, tmp_path):
    """issue 23.1: a report is data. One naming a plugin file (in settings.plugins and in its plugin list,
    with the file's true sha256) made `mask` run it; no command that reads a report may."""
    from fragscan.base.files import file_sha256

    marker, planted = tmp_path / "ran", tmp_path / "planted.py"
    planted.write_text(f"from pathlib import Path\nPath({str(marker)!r}).write_text('ran')\n")
    report = load_report(scanned[0])
    line = f"planted (file: {planted}) registered nothing [sha256 {file_sha256(planted)}]"
    naming = report.model_copy(
        update={"plugins": [line], "settings": report.settings.model_copy(update={"plugins": (planted,)})}
    )
    path = str(tmp_path / "report.json")
    write_report(naming, Path(path))
    for arguments in (
        ["mask", path, "--out", str(tmp_path / "m.safetensors"), "-q"],
        ["report", path, "-q"],
        ["audit", path, "-q"],
        ["compare", path, path],
    ):
        result = runner.invoke(app, arguments)
        assert result.exit_code == 0, (arguments, result.output)
    assert not marker.exists()


PROJECT_PLUGIN = """
from torch import nn
import fragscan

@fragscan.register_model("{name}", input_size=(1, 8, 8), num_classes=10)
def project_net(num_classes=10, in_chans=1, **kwargs):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, num_classes))
"""


def fragscan_in(directory: Path, *arguments) -> subprocess.CompletedProcess:
    """``python -m fragscan`` in a fresh process run from ``directory``: only what it loads itself is registered."""
    return subprocess.run(
        [sys.executable, "-m", "fragscan", *map(str, arguments)],
        cwd=directory,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
    )


def test_mask_from_another_directory_names_the_scans_project_plugin_and_loads_it_only_when_named(tmp_path, monkeypatch):
    """A model registered only by A/plugins/*.py: `mask` run from B does not load that file because the
    report names it (issue 23.1) but says, on one line, which file to pass with --plugin; named, from
    where it is or where it moved, or edited since, it writes the mask the scan wrote in A."""
    from fragscan.base.plugins import load_plugins
    from fragscan.models import MODELS

    name = f"project-net-{tmp_path.name}"
    a, b = tmp_path / "a", tmp_path / "b"
    (a / "plugins").mkdir(parents=True)
    b.mkdir()
    (a / "plugins" / "project_net.py").write_text(PROJECT_PLUGIN.format(name=name))
    monkeypatch.chdir(a)
    try:
        load_plugins()
        save_file(fragscan.create_model(name).net.state_dict(), str(a / "w.safetensors"))
        fragscan.scan_to(fragscan.ScanConfig(model=name, weights=a / "w.safetensors", **QUICK_CONFIG), a / "scan")
    finally:
        MODELS.unregister(name)
    report, scanned_mask = a / "scan" / "report.json", (a / "scan" / "mask.safetensors").read_bytes()
    plugin = a / "plugins" / "project_net.py"
    assert any(f"(project: {plugin})" in line for line in load_report(report).plugins)

    result = fragscan_in(b, "mask", report, "-o", "m.safetensors")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"plugin file {str(plugin)!r}" in lines[0] and f"--plugin {str(plugin)!r}" in lines[0]
    assert not (b / "m.safetensors").exists()
    result = fragscan_in(b, "mask", report, "--plugin", plugin, "-o", "m.safetensors")
    assert result.returncode == 0, result.stderr
    assert f"plugin: project_net (file: {plugin})" in result.stderr
    assert (b / "m.safetensors").read_bytes() == scanned_mask

    moved = tmp_path / "moved.py"
    plugin.rename(moved)
    with moved.open("a") as edited:
        edited.write("# edited after the scan\n")
    result = fragscan_in(b, "mask", report, "--plugin", moved, "-o", "again.safetensors", "-q")
    assert result.returncode == 0, result.stderr
    assert (b / "again.safetensors").read_bytes() == scanned_mask


# 8 -------------------------------------------------------------------------------------------


def imagenet_resnet18_and_grey_images(folder: Path, samples: int, classes: int) -> tuple[Path, Path]:
    """An (untrained) ImageNet-shaped tv:resnet18 weights file and a .npz of 32x32 grey images."""
    from torchvision.models import resnet18

    imagenet = folder / "imagenet.safetensors"
    save_file({k: v.contiguous() for k, v in resnet18().state_dict().items()}, str(imagenet))
    data = folder / "grey.npz"
    pixels = np.random.default_rng(0).integers(0, 255, (samples, 32, 32), np.uint8)
    np.savez(data, x=pixels, y=np.arange(samples) % classes)
    return imagenet, data


def test_mask_rebuilds_a_pretrained_network_fitted_to_grey_images(tmp_path):
    imagenet, data = imagenet_resnet18_and_grey_images(tmp_path, 12, 10)
    config = fragscan.ScanConfig(
        model="tv:resnet18",
        dataset="npz",
        data_root=data,
        pretrained=True,
        weights=imagenet,
        select=["fc.weight"],
        **{**QUICK_CONFIG, "max_samples": 12},
    )
    fragscan.scan_to(config, tmp_path / "out")  # conv1 is fitted to 1 channel
    result = runner.invoke(
        app, ["mask", str(tmp_path / "out" / "report.json"), "--out", str(tmp_path / "m.safetensors")]
    )
    assert result.exit_code == 0, result.output
    assert load_file(str(tmp_path / "m.safetensors"))["conv1.weight"].shape[1] == 1


def test_train_takes_pretrained(tmp_path):
    imagenet, data = imagenet_resnet18_and_grey_images(tmp_path, 8, 2)
    result = runner.invoke(
        app,
        [
            "train",
            "tv:resnet18",
            "npz",
            "--data-root",
            str(data),
            "--pretrained",
            "--weights",
            str(imagenet),
            "--epochs",
            "1",
            "--batch-size",
            "8",
            "--out",
            str(tmp_path / "t"),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    trained = load_file(str(tmp_path / "t" / "epoch_001.safetensors"))
    assert trained["conv1.weight"].shape[1] == 1 and trained["fc.weight"].shape[0] == 2


# 9 -------------------------------------------------------------------------------------------


def test_retrain_refuses_a_mask_derived_from_other_weights(scanned, tmp_path):
    report, weights = scanned
    mask = report.parent / "mask.safetensors"
    other = tmp_path / "other.safetensors"
    state = load_file(str(weights))
    state["features.0.weight"] = state["features.0.weight"] + 1
    save_file(state, str(other))
    result = runner.invoke(
        app,
        ["retrain", "digits-cnn", "digits", "--mask", str(mask), "--weights", str(other), "--out", str(tmp_path / "r")],
    )
    one_line_exit_2(result, "was derived from a scan of other weights", "other.safetensors")
    assert not (tmp_path / "r").exists()


# 11 ------------------------------------------------------------------------------------------


def test_the_same_checkpoint_twice_is_refused(tmp_path, scanned, monkeypatch):
    weights = scanned[1]
    monkeypatch.chdir(weights.parent)  # the same file, once absolute and once relative
    result = runner.invoke(
        app, ["scan", "--weights", str(weights), "--weights", weights.name, *QUICK, "--out", str(tmp_path / "o")]
    )
    one_line_exit_2(result, "--weights names the file", "twice; give each checkpoint once")
    assert not (tmp_path / "o").exists()


def test_multi_checkpoint_progress_and_summary_name_each_checkpoint(tmp_path, scanned):
    first, second = tmp_path / "epoch_1.safetensors", tmp_path / "epoch_2.safetensors"
    shutil.copy(scanned[1], first)
    shutil.copy(scanned[1], second)
    result = runner.invoke(
        app,
        [
            "scan",
            "--weights",
            str(first),
            "--weights",
            str(second),
            *QUICK,
            "--select",
            "classifier.3.*",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "at epoch_1 (1/2) · classifier.3.weight" in result.output
    assert "at epoch_2 (2/2) · classifier.3.weight" in result.output
    assert "2 checkpoints scanned (epoch_1, epoch_2)" in result.output


# 12 ------------------------------------------------------------------------------------------


def test_models_all_lists_the_timm_model_a_builtin_shadows():
    result = runner.invoke(app, ["models", "resnet18", "--all"])
    assert result.exit_code == 0
    assert re.search(r"timm:resnet18\b", result.output)


def test_filters_lists_plugin_filters(tmp_path):
    plugin = tmp_path / "band_plugin.py"
    plugin.write_text(
        "import fragscan\nfrom fragscan.sweep.filters import StepUp\n\n"
        "@fragscan.register_filter\nclass Mirror(StepUp):\n    id = 'mirror-test'\n    label = 'mirror'\n"
        "    description = 'a test filter'\n"
    )
    try:
        result = runner.invoke(app, ["filters", "--plugin", str(plugin)])
        assert result.exit_code == 0 and "mirror-test" in result.output, result.output
    finally:
        fragscan.sweep.filters.FILTERS.unregister("mirror-test")


def test_plugins_with_none_says_so(tmp_path, monkeypatch):
    from importlib import metadata

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(metadata, "entry_points", lambda **kwargs: [])
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0 and "no plugins: no 'fragscan.plugins' entry points installed" in result.output


# 13, 14, 15 ----------------------------------------------------------------------------------


class _Blind(torch.nn.Module):
    """Ignores its input: no attack can lower its accuracy, whatever ε."""

    def __init__(self, num_classes=10, in_chans=1):
        super().__init__()
        self.head = torch.nn.Linear(4, num_classes)

    def forward(self, x):
        return self.head(torch.ones(len(x), 4, device=x.device)) + 0 * x.flatten(1).sum(1, keepdim=True)


def test_eps_auto_that_cannot_reach_its_target_says_so():
    from fragscan.models import MODELS, register_model

    register_model("blind-net", input_size=(1, 8, 8), num_classes=10, source="test")(_Blind)
    try:
        with torch.no_grad():
            model = fragscan.create_model("blind-net")
            model.net.head.bias.copy_(torch.arange(10.0))  # always class 9: accuracy 1/10 on digits
        report = fragscan.scan(fragscan.ScanConfig(model="blind-net", **{**QUICK_CONFIG, "eps": "auto"}), model=model)
    finally:
        MODELS.unregister("blind-net")
    assert any(w.startswith("--eps auto did not reach its target") for w in report.warnings), report.warnings


def test_retrain_says_when_eps_auto_cannot_reach_its_target(tmp_path):
    """As the scan does: the same warning, printed, in retrain.json and on retrain.html."""
    from fragscan.models import MODELS, register_model
    from fragscan.outputs.retraining.experiment import RetrainResult

    register_model("blind-net", input_size=(1, 8, 8), num_classes=10, source="test")(_Blind)
    try:
        with torch.no_grad():
            net = fragscan.create_model("blind-net").net
            net.head.bias.copy_(torch.arange(10.0))  # always class 9: accuracy 1/10 on digits, attacked or not
        save_file(net.state_dict(), str(tmp_path / "blind.safetensors"))
        mask = {name: torch.ones_like(value, dtype=torch.uint8) for name, value in net.state_dict().items()}
        mask["head.weight"][::2] = 0
        save_file(mask, str(tmp_path / "m.safetensors"), metadata={"model": "blind-net", "split": "val"})
        arguments = ["retrain", "blind-net", "digits", "--weights", tmp_path / "blind.safetensors", "--mask"]
        arguments += [tmp_path / "m.safetensors", "--eps", "auto", "--epochs", "1", "--max-samples", "100"]
        arguments += ["--train-samples", "100", "--repeats", "1", "--controls", "none", "--out", tmp_path / "r"]
        result = runner.invoke(app, [str(a) for a in arguments])
    finally:
        MODELS.unregister("blind-net")
    assert result.exit_code == 0, result.output
    assert "warning: --eps auto did not reach its target" in " ".join(result.output.split()), result.output
    record = json.loads((tmp_path / "r" / "retrain.json").read_text())
    (warning,) = record["warnings"]
    assert warning.startswith("--eps auto did not reach its target: adversarial accuracy 0.") and "FGSM" in warning
    assert record["before"]["clean"]["estimate"] > 0 and record["eps_used"] == 1
    assert f'<div class="warning">warning: {escape(warning)}</div>' in (tmp_path / "r" / "retrain.html").read_text()
    del record["warnings"]  # a retrain.json written before warnings were recorded still loads
    assert RetrainResult.model_validate(record).warnings == []


def test_a_near_chance_model_fails_the_audit_unless_allowed(scanned, tmp_path):
    report = load_report(scanned[0])
    untrained = report.model_copy(update={"baseline": report.baseline.model_copy(update={"clean": 0.1})})
    failed = audit(untrained, AuditPolicy())
    assert not failed.passed and failed.rules[0].id == "above-chance"
    assert audit(untrained, AuditPolicy(allow_near_chance=True)).passed
    assert audit(report, AuditPolicy()).rules == []  # a trained model: the rule does not appear
    write_report(untrained, tmp_path / "report.json")
    result = runner.invoke(app, ["audit", str(tmp_path / "report.json"), "-q"])
    assert result.exit_code == 1 and "above-chance" in result.output
    assert runner.invoke(app, ["audit", str(tmp_path / "report.json"), "-q", "--allow-near-chance"]).exit_code == 0


def test_the_summary_of_a_near_chance_scan_is_loud(scanned):
    from rich.console import Console

    from fragscan.cli.summary import print_summary

    report = load_report(scanned[0])
    untrained = report.model_copy(update={"baseline": report.baseline.model_copy(update={"clean": 0.1})})
    console = Console(record=True, width=200)
    print_summary(untrained, console)
    lines = console.export_text().splitlines()
    assert lines[1].startswith("near chance: clean accuracy 0.100 is near chance")  # above the table of classes


def test_the_ci_examples_audit_adversarial_accuracy_at_a_fixed_eps(scanned):
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        options = re.search(r"SCAN_OPTIONS: (.*)", (REPO / "examples" / "ci" / name).read_text()).group(1)
        eps = options.split("--eps ")[1].split()[0]
        assert float(eps) > 0, f"{name}: --eps {eps}"
    report = load_report(scanned[0])
    auto = report.model_copy(update={"settings": report.settings.model_copy(update={"eps": "auto"})})
    warned = audit(auto, AuditPolicy(min_adversarial_accuracy=0.1)).warnings
    assert any("--eps auto tuned" in w for w in warned)


# cosmetics -----------------------------------------------------------------------------------


def test_help_shows_brackets_literally():
    result = runner.invoke(app, ["scan", "--help"], terminal_width=250)
    assert "fragscan[ray]" in result.output


def test_sarif_uris_are_percent_encoded(scanned, tmp_path, monkeypatch):
    folder = tmp_path / "my reports"
    folder.mkdir()
    shutil.copy(scanned[0], folder / "report.json")
    monkeypatch.chdir(tmp_path)
    result = audit(
        load_report(folder / "report.json"),
        AuditPolicy(min_clean_accuracy=1.0),
        report_path=str(folder / "report.json"),
    )
    uris = [
        loc["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif(result)["runs"][0]["results"]
        for loc in r["locations"]
    ]
    assert uris and all(" " not in uri for uri in uris) and "my%20reports/report.json" in uris


def test_out_naming_a_file_says_so(tmp_path):
    (tmp_path / "afile.txt").write_text("keep")
    result = runner.invoke(app, ["scan", *QUICK, "--out", str(tmp_path / "afile.txt")])
    one_line_exit_2(result, "afile.txt' is a file, not a directory; name a directory")
    assert (tmp_path / "afile.txt").read_text() == "keep"


def test_an_attack_without_eps_is_shown_without_one(scanned):
    from rich.console import Console

    from fragscan.cli.summary import print_summary

    report = load_report(scanned[0])
    cw = report.model_copy(update={"settings": report.settings.model_copy(update={"attack": "CW"})})
    console = Console(record=True, width=200)
    print_summary(cw, console)
    assert "under CW (no ε)" in console.export_text() and "ε=0.1" not in console.export_text()


def test_an_all_zero_mask_is_warned_about(scanned, tmp_path):
    report, weights = scanned
    zero = {k: torch.zeros_like(v) for k, v in load_file(str(report.parent / "mask.safetensors")).items()}
    from fragscan.models.weights import safetensors_bytes

    metadata = {"model": "digits-cnn"}
    (tmp_path / "zero.safetensors").write_bytes(safetensors_bytes(zero, metadata))
    result = runner.invoke(
        app,
        [
            "retrain",
            "digits-cnn",
            "digits",
            "--mask",
            str(tmp_path / "zero.safetensors"),
            "--weights",
            str(weights),
            "--epochs",
            "1",
            "--max-samples",
            "20",
            "--eps",
            "0.1",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "warning: the mask freezes every element, so nothing was retrained" in " ".join(result.output.split())
    recorded = json.loads((tmp_path / "r" / "retrain.json").read_text())["warnings"]
    assert any(w.startswith("the mask freezes every element") for w in recorded)
    assert "the mask freezes every element" in (tmp_path / "r" / "retrain.html").read_text()


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit.script/save themselves are deprecated
def test_a_torchscript_file_as_weights_is_one_line_without_torchs_warning(tmp_path, recwarn):
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    recwarn.clear()
    result = runner.invoke(app, ["scan", "--weights", str(path), *QUICK, "--out", str(tmp_path / "o")])
    one_line_exit_2(result, "are a TorchScript archive (torch.jit.save)")
    assert "weights_only" not in result.output
    assert not [w for w in recwarn if "TorchScript" in str(w.message)]


@pytest.mark.parametrize("held", ["a plain pickle", "a sparse tensor"])
def test_weights_torch_warns_about_are_one_line_without_its_warning(tmp_path, recwarn, held):
    """issue 23.10: torch's UserWarning (pickle protocol 4, sparse tensor invariants) came before the one line."""
    import pickle

    path = tmp_path / "weights.pt"
    if held == "a plain pickle":
        path.write_bytes(pickle.dumps({"a": 1}, protocol=4))
    else:
        torch.save({"features.0.weight": torch.ones(2).to_sparse()}, path)
    recwarn.clear()
    result = runner.invoke(app, ["scan", "--weights", str(path), *QUICK, "--out", str(tmp_path / "o")])
    one_line_exit_2(result, f"weights {str(path)!r}")
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)], [str(w.message) for w in recwarn]


def test_help_and_option_errors_do_not_import_torch():
    import subprocess
    import sys

    code = "import sys, fragscan.cli; print(sorted({'torch', 'torchattacks', 'timm'} & set(sys.modules)))"
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert found.stdout.strip() == "[]", found.stdout  # `fragscan --help` took 3 s importing them
