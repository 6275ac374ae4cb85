"""End-to-end user journeys across commands (scan -> mask -> retrain, train), as a user runs them,
and the bad inputs met along the way: each must work, or fail on one line with its exit code."""

import json

import pytest
from safetensors.torch import load_file
from typer.testing import CliRunner

from fragscan.cli import app
from fragscan.models import create_model

runner = CliRunner()
QUICK_SCAN = [
    "--max-samples",
    "20",
    "--thresholds",
    "3",
    "--eps",
    "0.1",
    "--bootstrap",
    "0",
    "--classify",
    "tau",
    "--quiet",
]
# Scans meant for masks run on val: retrain refuses to judge on the split a mask saw.
QUICK_SCAN = ["--split", "val", *QUICK_SCAN]
SELECTIVE_ONLY = ["--controls", "none", "--repeats", "1"]  # retrain's selective arm once, no controls


def _ok(arguments):
    result = runner.invoke(app, [str(a) for a in arguments])
    assert result.exit_code == 0, result.output
    return result


def test_train_scan_mask_retrain_journey_for_a_model_fitted_to_the_data(tmp_path):
    # small-cnn leaves its classes, input size and statistics to the data: every command must fit it
    # to the dataset as scan does, not only scan.
    _ok(["train", "small-cnn", "digits", "--epochs", "1", "--quiet", "--out", tmp_path / "train"])
    weights = tmp_path / "train" / "epoch_001.safetensors"
    assert create_model("small-cnn", weights=weights, num_classes=10, input_size=(1, 8, 8))  # loads strictly

    _ok(["scan", "small-cnn", "digits", "--weights", weights, *QUICK_SCAN, "--out", tmp_path / "scan"])
    _ok(["mask", tmp_path / "scan" / "report.json", "--policy", "layer", "-o", tmp_path / "m.safetensors", "--quiet"])
    assert (
        load_file(str(tmp_path / "m.safetensors")).keys()
        == load_file(str(tmp_path / "scan" / "mask.safetensors")).keys()
    )

    _ok(
        [
            "retrain",
            "small-cnn",
            "digits",
            "--weights",
            weights,
            "--mask",
            tmp_path / "m.safetensors",
            "--epochs",
            "1",
            "--max-samples",
            "20",
            "--eps",
            "0.1",
            *SELECTIVE_ONLY,
            "--quiet",
            "--out",
            tmp_path / "retrain",
        ]
    )
    assert json.loads((tmp_path / "retrain" / "retrain.json").read_text())["frozen_bit_identical"] is True


def test_a_cifar_stem_resnet_trains_scans_and_retrains_with_its_stem(tmp_path):
    # the paper's CIFAR ResNets: train and retrain must build the same first layers the scan used
    _ok(
        [
            "train",
            "resnet18",
            "digits",
            "--stem",
            "cifar",
            "--epochs",
            "1",
            "--split",
            "val",
            "--quiet",
            "--out",
            tmp_path / "train",
        ]
    )
    assert json.loads((tmp_path / "train" / "training.json").read_text())["stem"] == "cifar"
    weights = tmp_path / "train" / "epoch_001.safetensors"
    assert load_file(str(weights))["conv1.weight"].shape[-2:] == (3, 3)
    _ok(
        [
            "scan",
            "resnet18",
            "digits",
            "--stem",
            "cifar",
            "--weights",
            weights,
            "--select",
            "fc.*",
            *QUICK_SCAN,
            "--out",
            tmp_path / "scan",
        ]
    )
    retrain = [
        "retrain",
        "resnet18",
        "digits",
        "--weights",
        weights,
        "--mask",
        tmp_path / "scan" / "mask.safetensors",
        "--epochs",
        "1",
        "--max-samples",
        "20",
        "--eps",
        "0.1",
        *SELECTIVE_ONLY,
        "--quiet",
    ]
    without_stem = runner.invoke(app, [str(a) for a in [*retrain, "--out", tmp_path / "imagenet-stem"]])
    assert without_stem.exit_code == 2 and "'conv1.weight' has shape (64, 1, 3, 3)" in without_stem.output
    _ok([*retrain, "--stem", "cifar", "--out", tmp_path / "retrain"])
    result = json.loads((tmp_path / "retrain" / "retrain.json").read_text())
    assert result["settings"]["stem"] == "cifar" and result["frozen_bit_identical"] is True


PLUGIN = """
from torch import nn
import fragscan

@fragscan.register_model("journey-net")
def journey_net(num_classes=10, in_chans=1, **kwargs):
    return nn.Sequential(
        nn.Conv2d(in_chans, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, num_classes)
    )
"""


def test_train_and_mask_find_a_model_in_the_project_plugins_folder(tmp_path, monkeypatch):
    # scan loads ./plugins/*.py before it resolves names; train, mask and retrain must as well
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "journey.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    _ok(["train", "journey-net", "digits", "--epochs", "1", "--quiet", "--out", "train"])
    _ok(["scan", "journey-net", "digits", "--weights", "train/epoch_001.safetensors", *QUICK_SCAN, "--out", "scan"])
    _ok(["mask", "scan/report.json", "-o", "m.safetensors", "--quiet"])
    _ok(
        [
            "retrain",
            "journey-net",
            "digits",
            "--weights",
            "train/epoch_001.safetensors",
            "--mask",
            "m.safetensors",
            "--epochs",
            "1",
            "--max-samples",
            "20",
            "--eps",
            "0.1",
            *SELECTIVE_ONLY,
            "--quiet",
            "--out",
            "retrain",
        ]
    )


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """One quick scan of the embedded default, shared by the output-path tests."""
    out = tmp_path_factory.mktemp("scan")
    _ok(["scan", *QUICK_SCAN, "--out", out])
    return out / "report.json"


def _one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "internal error" not in result.output, result.output
    assert all(fragment in result.output for fragment in fragments), result.output


@pytest.mark.parametrize(
    "command",
    [
        ["mask", "{report}", "-o", "{directory}"],
        ["report", "{report}", "-o", "{directory}"],
        ["report", "{report}", "-o", "{directory}/page.html", "--csv", "{directory}"],
        ["compare", "{report}", "{report}", "--html", "{directory}"],
        ["compare", "{report}", "{report}", "--html", "{directory}/page.html", "--json", "{directory}"],
    ],
)
def test_an_output_file_that_is_a_directory_is_one_line_and_nothing_is_written(scanned, tmp_path, command):
    directory = tmp_path / "taken"
    directory.mkdir()
    result = runner.invoke(app, [part.format(report=scanned, directory=directory) for part in command])
    _one_line_error(result, str(directory), "is a directory")
    assert list(directory.iterdir()) == []  # not the other file of the pair either


def test_mask_creates_the_folder_of_its_output_like_every_other_command(scanned, tmp_path):
    out = tmp_path / "new" / "folder" / "m.safetensors"
    _ok(["mask", scanned, "-o", out, "--quiet"])
    assert load_file(str(out)).keys() == load_file(str(scanned.parent / "mask.safetensors")).keys()


@pytest.mark.parametrize("name", ["policy.yaml", "policy.json"])
def test_a_policy_file_that_is_not_text_is_one_line(scanned, tmp_path, name):
    policy = tmp_path / name
    policy.write_bytes(b"\xff\xfe\x00min_clean_accuracy: 0.5")
    result = runner.invoke(app, ["audit", str(scanned), "--policy", str(policy), "--out", str(tmp_path / "audit")])
    _one_line_error(result, str(policy), "UTF-8")
    assert not (tmp_path / "audit").exists()


@pytest.mark.parametrize("content", ["a whole pickled model", "text"])
def test_weights_torch_load_refuses_say_what_to_save_instead_of_suggesting_unsafe_loading(tmp_path, content):
    import torch
    from torch import nn

    path = tmp_path / "weights.pt"
    if content == "text":
        path.write_text("not a torch file")
    else:
        torch.save(nn.Sequential(nn.Linear(2, 2)), path)  # the module object, not its state_dict()
    result = runner.invoke(app, ["scan", "--weights", str(path), *QUICK_SCAN, "--out", str(tmp_path / "out")])
    _one_line_error(result, str(path), "state_dict()")
    assert "weights_only` set to `False" not in result.output and "Re-running" not in result.output


def test_a_filter_named_twice_is_one_line_not_swept_twice(tmp_path):
    result = runner.invoke(app, ["scan", *QUICK_SCAN, "--filters", "pulse,step-up,pulse", "--out", str(tmp_path)])
    _one_line_error(result, "--filters", "'pulse' twice")
    assert not (tmp_path / "report.json").exists()


def test_ctrl_c_outside_a_scan_is_one_line_and_exit_130(tmp_path, monkeypatch):
    import fragscan.outputs.retraining.writing

    def interrupted(config):
        raise KeyboardInterrupt

    # retrain_to (which the command imports when it runs: torch is slow to import) calls retrain: patch it there
    monkeypatch.setattr(fragscan.outputs.retraining.writing, "retrain", interrupted)
    result = runner.invoke(
        app,
        ["retrain", "digits-cnn", "digits", "--mask", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "out")],
    )
    assert result.exit_code == 130, result.output
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("interrupted"), result.output


def test_compare_of_many_reports_in_a_pipe_shows_every_cell_whole(scanned):
    # CliRunner is not a terminal, like a CI log: no screen edge, so nothing may be cut to "…"
    import fragscan

    result = _ok(["compare", *[scanned] * 4])
    assert "…" not in result.output, result.output
    for group in fragscan.load_report(scanned).groups:
        line = next(line for line in result.output.splitlines() if group.name in line)
        assert line.count(group.summary_class) == 4, line


def test_a_global_scope_scan_prints_its_scores_and_class(tmp_path):
    import fragscan

    result = _ok(["scan", *QUICK_SCAN[:-1], "--scope", "global", "--out", tmp_path])  # not --quiet
    curves = fragscan.load_report(tmp_path / "report.json").global_
    row = next((line for line in result.output.splitlines() if line.strip().startswith("(global)")), None)
    assert row is not None, result.output
    assert all(f"{curve.scores.adversarial:+.4f}" in row for curve in curves.values()), row
    assert curves["pulse"].classes.adversarial in row, row


def test_an_unreadable_checkpoint_fails_before_the_others_are_scanned(tmp_path):
    import shutil

    from fragscan.models import model_spec

    folder = tmp_path / "epochs"
    folder.mkdir()
    shutil.copy(model_spec("digits-cnn").default_weights, folder / "epoch1.safetensors")
    (folder / "epoch2.pt").write_text("not a torch file")
    result = runner.invoke(app, ["scan", "--checkpoints", str(folder), *QUICK_SCAN, "--out", str(tmp_path / "out")])
    _one_line_error(result, "epoch2.pt")
    assert not list((tmp_path / "out").rglob("*.safetensors"))  # epoch1 was not swept first


@pytest.mark.parametrize(
    ("option", "value", "glob"),
    [("--include", "bias,weird*", "weird*"), ("--select", "features.*,clasifier.*", "clasifier.*")],
)
def test_a_glob_of_include_or_select_that_matches_nothing_is_one_line_not_ignored(tmp_path, option, value, glob):
    result = runner.invoke(app, ["scan", *QUICK_SCAN, option, value, "--out", str(tmp_path)])
    _one_line_error(result, option, repr(glob))
    assert not (tmp_path / "report.json").exists()


def test_scan_help_names_every_file_a_scan_writes(scanned):
    help_text = runner.invoke(app, ["scan", "--help"], env={"COLUMNS": "300"}).output
    written = [path.name for path in scanned.parent.iterdir() if not path.name.startswith(".")]
    assert written and all(name in help_text for name in written), (written, help_text)


def test_the_same_training_twice_writes_byte_identical_checkpoints_and_record(tmp_path):
    # training.json records each checkpoint's sha256, and scans record the weights' sha256: equal
    # runs must give equal bytes, whatever order safetensors' hash map puts the metadata in
    for run in ("a", "b"):
        _ok(["train", "digits-cnn", "digits", "--split", "val", "--epochs", "1", "--quiet", "--out", tmp_path / run])
    for name in ("epoch_001.safetensors", "training.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_a_mask_rederived_from_a_report_is_byte_identical_to_the_scans_own(scanned, tmp_path):
    for run in range(3):
        _ok(["mask", scanned, "-o", tmp_path / f"m{run}.safetensors", "--quiet"])
        assert (tmp_path / f"m{run}.safetensors").read_bytes() == (scanned.parent / "mask.safetensors").read_bytes()


def test_safetensors_bytes_are_the_same_every_call_and_read_back_unchanged():
    import torch
    from safetensors.torch import load

    from fragscan.models.weights import safetensors_bytes

    tensors = {"b": torch.arange(3, dtype=torch.uint8), "a": torch.ones(2, 3)}
    metadata = {key: key.upper() for key in "qwertyuiop"}
    produced = {safetensors_bytes(tensors, metadata) for _ in range(20)}
    assert len(produced) == 1
    data = produced.pop()
    length = int.from_bytes(data[:8], "little")
    assert length % 8 == 0 and json.loads(data[8 : 8 + length])["__metadata__"] == metadata
    assert {k: v.tolist() for k, v in load(data).items()} == {k: v.tolist() for k, v in tensors.items()}


def test_a_mask_reads_back_with_its_metadata_in_one_order(scanned):
    # retrain.json records the mask's metadata: two equal retrains must write equal files
    from fragscan.outputs.masks import load_mask

    net = create_model("digits-cnn").net
    orders = {tuple(load_mask(scanned.parent / "mask.safetensors", net).metadata) for _ in range(10)}
    assert len(orders) == 1


@pytest.mark.parametrize("command", [["audit"], ["report"], ["mask"], ["compare", "{directory}"]])
def test_a_scan_folder_given_for_its_report_names_the_report_inside(scanned, command):
    directory = str(scanned.parent)
    result = runner.invoke(app, [part.format(directory=directory) for part in command] + [directory])
    _one_line_error(result, "is a directory", str(scanned))


def test_retrain_refuses_a_mask_derived_for_another_model_even_when_its_shapes_fit(scanned, tmp_path):
    # small-cnn on 8x8 digits has digits-cnn's parameter names and shapes: only the metadata tells
    from safetensors.torch import save_file

    model = create_model("small-cnn", num_classes=10, input_size=(1, 8, 8))
    weights = tmp_path / "small.safetensors"
    save_file({k: v.contiguous() for k, v in model.net.state_dict().items()}, str(weights))
    result = runner.invoke(
        app,
        [
            "retrain",
            "small-cnn",
            "digits",
            "--weights",
            str(weights),
            "--mask",
            str(scanned.parent / "mask.safetensors"),
            "--epochs",
            "1",
            "--max-samples",
            "20",
            "--eps",
            "0.1",
            *SELECTIVE_ONLY,
            "--quiet",
            "--out",
            str(tmp_path / "out"),
        ],
    )
    _one_line_error(result, "'digits-cnn'", "'small-cnn'")
    assert not (tmp_path / "out" / "weights.safetensors").exists()


def _npz_folder(folder, size, classes=10):
    import numpy as np

    folder.mkdir()
    generator = np.random.default_rng(0)
    for split in ("train", "test"):
        x = generator.integers(0, 256, size=(30, size, size), dtype=np.uint8)
        np.savez(folder / f"{split}.npz", x=x, y=np.arange(30) % classes)
    return folder


@pytest.mark.parametrize("command", ["train", "retrain"])
def test_train_and_retrain_refuse_data_the_models_registration_does_not_take_as_scan_does(scanned, tmp_path, command):
    # digits-cnn is registered for 1x8x8 inputs and adaptive pooling would run it on 12x12 images:
    # scan refuses that, so training on them would make weights no scan accepts
    data = _npz_folder(tmp_path / "data", size=12)
    arguments = [
        "train",
        "digits-cnn",
        "npz",
        "--data-root",
        str(data),
        "--epochs",
        "1",
        "--quiet",
        "--out",
        str(tmp_path / "out"),
    ]
    if command == "retrain":
        arguments = [
            "retrain",
            "digits-cnn",
            "npz",
            "--data-root",
            str(data),
            "--mask",
            str(scanned.parent / "mask.safetensors"),
            "--epochs",
            "1",
            "--eps",
            "0.1",
            *SELECTIVE_ONLY,
            "--quiet",
            "--out",
            str(tmp_path / "out"),
        ]
    result = runner.invoke(app, arguments)
    _one_line_error(result, "(1, 12, 12)", "(1, 8, 8)")
    assert not list((tmp_path / "out").glob("*.safetensors"))
    scan = runner.invoke(
        app, ["scan", "digits-cnn", "npz", "--data-root", str(data), *QUICK_SCAN, "--out", str(tmp_path / "s")]
    )
    _one_line_error(scan, "(1, 12, 12)", "(1, 8, 8)")  # the same words as scan's
    assert scan.output.split(": ", 1)[1] == result.output.split(": ", 1)[1]


def test_checkpoints_with_the_same_file_name_in_different_folders_get_distinct_labels(tmp_path):
    import shutil

    import fragscan
    from fragscan.models import model_spec

    for run in ("run1", "run2"):
        (tmp_path / run).mkdir()
        shutil.copy(model_spec("digits-cnn").default_weights, tmp_path / run / "epoch10.safetensors")
    _ok(
        [
            "scan",
            "--weights",
            tmp_path / "run1" / "epoch10.safetensors",
            "--weights",
            tmp_path / "run2" / "epoch10.safetensors",
            *QUICK_SCAN,
            "--filters",
            "pulse",
            "--out",
            tmp_path / "out",
        ]
    )
    labels = [c.label for c in fragscan.load_report(tmp_path / "out" / "report.json").checkpoints]
    assert labels == ["run1/epoch10", "run2/epoch10"]


def test_a_rescan_that_writes_no_mask_leaves_no_stale_mask_beside_its_report(tmp_path):
    _ok(["scan", *QUICK_SCAN, "--filters", "pulse", "--out", tmp_path])
    assert (tmp_path / "mask.safetensors").is_file()
    result = _ok(
        [
            "scan",
            *QUICK_SCAN[:-1],
            "--scope",
            "global",
            "--filters",
            "step-up",
            "--summary-filter",
            "step-up",
            "--out",
            tmp_path,
        ]
    )
    assert "no mask.safetensors" in result.output
    assert not (tmp_path / "mask.safetensors").exists()  # the earlier scan's, which retrain would take for this one's


@pytest.mark.parametrize("option", [["--ray-address", "auto"], ["--ray-gpus-per-worker", "1"]])
def test_ray_options_without_the_ray_executor_are_one_line_not_ignored(tmp_path, option):
    # forgetting --executor ray would otherwise run the whole scan in this process, silently
    result = runner.invoke(app, ["scan", *QUICK_SCAN, *option, "--out", str(tmp_path)])
    _one_line_error(result, option[0], "--executor ray")
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize(
    "command",
    [
        ["report", "{report}", "-o", "{report}"],
        ["report", "{report}", "--csv", "{report}"],
        ["report", "{report}", "-o", "{copy}/same", "--csv", "{copy}/same"],
        ["mask", "{report}", "-o", "{report}"],
        ["compare", "{report}", "{copy}/report.json", "--json", "{copy}/report.json"],
        ["compare", "{report}", "{report}", "--html", "{copy}/same", "--json", "{copy}/same"],
    ],
)
def test_an_output_named_as_an_input_or_as_another_output_is_refused_before_it_overwrites(scanned, tmp_path, command):
    import shutil

    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(scanned, copy / "report.json")
    before = scanned.read_bytes()
    result = runner.invoke(app, [part.format(report=scanned, copy=copy) for part in command])
    _one_line_error(result, "same file")
    assert scanned.read_bytes() == before and (copy / "report.json").read_bytes() == before
    assert not (copy / "same").exists()


def test_a_mask_given_as_weights_is_refused_not_loaded_as_zeros_and_ones(tmp_path):
    # a network without buffers has a mask's exact names and shapes: only the dtype tells them apart
    import torch
    from torch import nn

    from fragscan.base.errors import InputError
    from fragscan.models.weights import apply_state_dict

    net = nn.Sequential(nn.Linear(3, 2))
    mask = {name: torch.ones(p.shape, dtype=torch.uint8) for name, p in net.named_parameters()}
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(InputError, match="'0.weight' has dtype uint8"):
        apply_state_dict(net, mask, source="mask.safetensors")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_heatmap_labels_with_dollar_signs_are_text_not_broken_mathtext():
    # checkpoint labels are file names, rows group names, the label a filter id: none is TeX
    import numpy as np

    from fragscan.report import plots

    svg = plots.diverging_heatmap(np.zeros((1, 2)), ["net.$w$"], ["epoch$^$1", "b"], "S_adv ($f$)")
    assert "epoch$^$1" in svg and "net.$w$" in svg


def test_an_internal_error_with_a_multi_line_message_is_still_one_line(tmp_path, monkeypatch):
    import fragscan.outputs.retraining.writing

    def broken(config):
        raise RuntimeError("what went wrong\n  detail the parser printed\n  ^")

    # retrain_to (which the command imports when it runs: torch is slow to import) calls retrain: patch it there
    monkeypatch.setattr(fragscan.outputs.retraining.writing, "retrain", broken)
    result = runner.invoke(
        app,
        ["retrain", "digits-cnn", "digits", "--mask", str(tmp_path / "m.safetensors"), "--out", str(tmp_path / "out")],
    )
    assert result.exit_code == 3, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "RuntimeError: what went wrong" in result.output and "--debug" in result.output


@pytest.mark.parametrize(("version", "extra"), [("2.99", {"added_in_2_99": 1}), ("3.0", {})])
def test_a_report_of_a_newer_schema_says_so_instead_of_not_a_report_or_a_silent_read(scanned, tmp_path, version, extra):
    data = json.loads(scanned.read_text())
    data.update(schema_version=version, **extra)
    newer = tmp_path / "report.json"
    newer.write_text(json.dumps(data))
    result = runner.invoke(app, ["audit", str(newer), "--out", str(tmp_path / "audit")])
    _one_line_error(result, f"schema {version}", "newer")


def test_a_retrain_without_the_unmasked_control_leaves_no_earlier_one_beside_its_result(scanned, tmp_path):
    common = [
        "retrain",
        "digits-cnn",
        "digits",
        "--mask",
        scanned.parent / "mask.safetensors",
        "--epochs",
        "1",
        "--max-samples",
        "20",
        "--eps",
        "0.1",
        "--repeats",
        "1",
        "--quiet",
        "--out",
        tmp_path,
    ]
    _ok(common)
    assert (tmp_path / "unmasked.safetensors").is_file()
    _ok([*common, "--controls", "random"])
    assert set(json.loads((tmp_path / "retrain.json").read_text())["arms"]) == {"selective", "random"}
    assert not (tmp_path / "unmasked.safetensors").exists()  # the first run's, which this result did not make
