import pytest
import torch
from typer.testing import CliRunner

import fragscan
from fragscan.base.errors import InputError
from fragscan.cli import app
from fragscan.models import create_model
from fragscan.outputs.masks import TRAINABLE, build_mask, element_classes, load_mask, reported_network, save_mask
from fragscan.report import report_digest
from fragscan.scoring.evidence import judge
from fragscan.sweep.filters import Pulse

runner = CliRunner()


@pytest.fixture(scope="module")
def report():
    config = fragscan.ScanConfig(max_samples=60, thresholds=5, eps=0.1, batch_size=32, filters=("step-up", "pulse"))
    return fragscan.scan(config)


@pytest.fixture
def net():
    return create_model("digits-cnn").net


def test_bands_rebuilt_from_the_report_are_the_bands_the_sweep_removed(report, net):
    weights = dict(net.named_parameters())
    for group in report.groups:
        curve = group.filters["pulse"]
        pulse = Pulse(curve.thresholds[0], curve.thresholds[-1], len(curve.thresholds))
        band = element_classes(weights[group.name], curve.thresholds, ["x"] * len(curve.thresholds))
        for i, alpha in enumerate(curve.thresholds):
            in_band = pulse.removed(weights[group.name].detach(), alpha)
            assert int(in_band.sum()) == curve.removed[i]
            assert bool((band[in_band] == i).all())


def test_band_mask_gives_each_element_its_bands_class_by_hand(report, net):
    # The point rule's oracle: a band is trainable when its Δadv does not fall below −τ. (The evidence
    # rule's threshold classes have their own oracle in test_evidence.py.)
    settings = report.settings.model_copy(update={"classify": "tau"})
    report = judge(report.model_copy(update={"settings": settings}))
    mask = build_mask(report, net, policy="band", score="adversarial")
    assert mask.metadata["rule"] == "tau"
    weights = dict(net.named_parameters())
    saw = set()
    for group in report.groups:
        curve = group.filters["pulse"]
        w = weights[group.name].detach()
        alphas = torch.tensor(curve.thresholds, dtype=torch.float64)
        nearest = (w.double().unsqueeze(-1) - alphas).abs().argmin(-1)
        for i in range(len(alphas)):
            delta = curve.adversarial[i] - report.baseline.adversarial
            expected = curve.changed[i] > 0 and delta >= -report.settings.tau  # robust or antifragile
            saw.add(expected)
            assert bool((mask.tensors[group.name][nearest == i] == int(expected)).all())
    assert saw == {True, False}  # the default scan separates bands
    assert mask.tensors["features.0.bias"].all()  # outside the analysis: --others train


def test_layer_mask_follows_the_group_class_and_others_freeze(report, net):
    mask = build_mask(report, net, policy="layer", filters=("pulse", "step-up"), others="freeze")
    for group in report.groups:
        # pulse/S_adv is the summary pair: its class is the group's (simultaneous) summary class
        keep = group.summary_class in TRAINABLE and group.filters["step-up"].classes.adversarial in TRAINABLE
        assert bool((mask.tensors[group.name] == int(keep)).all())
    assert not mask.tensors["features.0.bias"].any()
    assert mask.metadata["policy"] == "layer" and mask.metadata["filter"] == "pulse,step-up"


def test_mask_file_round_trip_keeps_tensors_and_metadata(report, net, tmp_path):
    mask = build_mask(report, net)
    path = save_mask(mask, tmp_path / "mask.safetensors")
    loaded = load_mask(path, net)
    assert loaded.tensors.keys() == dict(net.named_parameters()).keys()
    assert all(torch.equal(loaded.tensors[k], v) and v.dtype == torch.uint8 for k, v in mask.tensors.items())
    assert loaded.metadata["report_sha256"] == report_digest(report)
    assert loaded.metadata["fragscan_version"] == fragscan.__version__
    assert {loaded.metadata[k] for k in ("model", "policy", "score", "filter")} == {
        "digits-cnn",
        "band",
        "adversarial",
        "pulse",
    }


def test_band_policy_needs_the_pulse_filter(net):
    report = fragscan.scan(
        fragscan.ScanConfig(max_samples=20, thresholds=3, eps=0.1, filters="step-up", summary_filter="step-up")
    )
    with pytest.raises(fragscan.FragscanError, match="no 'pulse' sweep"):
        build_mask(report, net)


def test_weights_that_are_not_the_scanned_ones_are_refused(report, tmp_path):
    from safetensors.torch import save_file

    other = create_model("digits-cnn").net
    with torch.no_grad():
        other.features[0].weight.add_(1e-3)
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(tmp_path / "w.safetensors"))
    with pytest.raises(InputError, match="sha256 differs"):
        reported_network(report, tmp_path / "w.safetensors")


def _broken(kind, tensors):
    name = "features.0.weight"
    if kind == "missing":
        del tensors[name]
    elif kind == "extra":
        tensors["spare.weight"] = torch.ones(2, dtype=torch.uint8)
    elif kind == "shape":
        tensors[name] = torch.ones(3, dtype=torch.uint8)
    elif kind == "nan":
        tensors[name] = torch.full(tensors[name].shape, float("nan"))
    elif kind == "dtype":
        tensors[name] = tensors[name].float()
    elif kind == "values":
        tensors[name] = tensors[name] * 2
    return tensors


BROKEN = [
    ("missing", "no tensor for parameter 'features.0.weight'"),
    ("extra", "'spare.weight' is not a parameter of the model"),
    ("shape", "'features.0.weight' has shape (3,), the parameter has (16, 1, 3, 3)"),
    ("nan", "'features.0.weight' contains NaN"),
    ("dtype", "'features.0.weight' has dtype float32, masks are uint8"),
    ("values", "'features.0.weight' has values other than 0 and 1"),
]


@pytest.mark.parametrize(("kind", "message"), BROKEN)
def test_a_mask_that_does_not_fit_is_one_line_from_the_cli(tmp_path, net, kind, message):
    from safetensors.torch import save_file

    tensors = {k: torch.ones(p.shape, dtype=torch.uint8) for k, p in net.named_parameters()}
    save_file(_broken(kind, tensors), str(tmp_path / "bad.safetensors"))
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["retrain", "digits-cnn", "digits", "--mask", str(tmp_path / "bad.safetensors"), "--out", str(out)]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not out.exists()  # nothing left behind, not even the folder


def test_a_file_that_is_not_safetensors_is_one_line(tmp_path, net):
    (tmp_path / "bad.safetensors").write_bytes(b"not a mask")
    with pytest.raises(InputError, match="cannot read mask"):
        load_mask(tmp_path / "bad.safetensors", net)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--policy", "pixel"], "--policy must be one of band, layer"),
        (["--score", "accuracy"], "--score must be clean, adversarial or difference"),
        (["--filters", "step-up"], "--policy band needs --filters pulse"),
        (["--policy", "layer", "--filters", "step-down"], "the report has no 'step-down' sweep"),
        (["--others", "maybe"], "--others must be 'train' or 'freeze'"),
        (["--inconclusive", "maybe"], "--inconclusive must be 'freeze' or 'train'"),
    ],
)
def test_mask_command_bad_options_are_one_line(report, tmp_path, arguments, message):
    from fragscan.report import write_report

    write_report(report, tmp_path / "report.json")
    out = tmp_path / "m.safetensors"
    result = runner.invoke(app, ["mask", str(tmp_path / "report.json"), "-o", str(out), *arguments])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize("command", ["mask", "train", "retrain"])
def test_new_commands_explain_themselves(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0 and len(result.output) > 300


@pytest.mark.parametrize(("filters", "policy"), [("step-up", "layer"), ("pulse", "band")])
def test_every_scan_writes_a_mask_with_the_policy_its_filters_allow(tmp_path, filters, policy):
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "scan",
            "--max-samples",
            "20",
            "--thresholds",
            "3",
            "--eps",
            "0.1",
            "--filters",
            filters,
            "--summary-filter",
            filters,
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    mask = load_mask(out / "mask.safetensors", create_model("digits-cnn").net)
    assert mask.metadata["policy"] == policy
    assert mask.metadata["report_sha256"] == report_digest(fragscan.load_report(out / "report.json"))
