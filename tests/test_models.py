"""Model registry: built-ins fitted to the data, timm and torchvision names, listing and close matches."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import fragscan
from fragscan.base.errors import ConfigError, InputError, UnknownNameError
from fragscan.cli import app
from fragscan.models import create_model, create_model_for_data, list_models
from fragscan.sweep.groups import parameter_groups

PAPER = ["resnet18", "resnet50", "squeezenet1_1", "shufflenet_v2_x1_0"]
# Conv/Linear weights of each architecture, as the method spec counts them (ShuffleNetV2 about 57).
PAPER_GROUPS = {"resnet18": 21, "resnet50": 54, "squeezenet1_1": 26, "shufflenet_v2_x1_0": 57}


@pytest.mark.parametrize("name", PAPER)
@pytest.mark.parametrize("stem", ["imagenet", "cifar"])
def test_paper_builtins_take_one_channel_and_the_data_classes(name, stem):
    model = create_model(name, num_classes=7, in_chans=1, input_size=(1, 28, 28), stem=stem)
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 7)
    assert model.spec.input_size == (1, 28, 28) and model.spec.num_classes == 7
    assert len(parameter_groups(model.net)[0]) == PAPER_GROUPS[name]


def test_the_cifar_stem_keeps_resolution_the_imagenet_stem_reduces():
    def after_stem(stem):
        net = create_model("resnet18", num_classes=10, input_size=(3, 32, 32), stem=stem).net
        return net.maxpool(net.relu(net.bn1(net.conv1(torch.rand(1, 3, 32, 32))))).shape[-1]

    assert (after_stem("imagenet"), after_stem("cifar")) == (8, 32)


@pytest.mark.parametrize("name", ["timm:resnet18", "resnet10t", "tv:shufflenet_v2_x1_0", "tv:resnet18"])
def test_timm_and_torchvision_names_adapt_classes_and_channels(name):
    model = create_model(name, num_classes=5, in_chans=1, input_size=(1, 32, 32))
    assert model(torch.rand(2, 1, 32, 32)).shape == (2, 5)
    first_conv = next(m for m in model.net.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.in_channels == 1


def test_fitting_to_data_fills_only_what_the_spec_leaves_open():
    digits = create_model_for_data("digits-cnn", num_classes=3, input_size=(1, 28, 28), mean=(0.2,), std=(0.3,))
    assert digits.spec.num_classes == 10 and digits.spec.input_size == (1, 8, 8)
    assert digits.spec.mean == (0.3056,)
    small = create_model_for_data(
        "small-cnn", num_classes=3, input_size=(3, 20, 20), mean=(0.1, 0.2, 0.3), std=(1, 1, 1)
    )
    assert small.spec.num_classes == 3 and small.spec.input_size == (3, 20, 20)
    assert small.spec.mean == (0.1, 0.2, 0.3)


def test_normalisation_lives_inside_the_wrapper():
    model = create_model("small-cnn", num_classes=2, input_size=(1, 8, 8), mean=(0.25,), std=(0.5,))
    pixels = torch.rand(3, 1, 8, 8)
    assert torch.equal(model(pixels), model.net((pixels - 0.25) / 0.5))


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [("resnt18", "resnet18"), ("tv:shufflenet_v2_x1", "tv:shufflenet_v2_x1_0"), ("timm:resnet1", "timm:resnet18")],
)
def test_an_unknown_model_name_suggests_close_matches(name, suggestion):
    with pytest.raises(UnknownNameError, match="did you mean") as caught:
        create_model(name, num_classes=10, input_size=(3, 32, 32))
    assert suggestion in str(caught.value)


def test_pretrained_fails_fast_offline_with_a_clear_message():
    for name, where in [("timm:resnet18", "HF_HUB_OFFLINE=1"), ("tv:resnet18", "HF_HUB_OFFLINE=1")]:
        with pytest.raises(InputError, match="--pretrained") as caught:
            create_model(name, num_classes=10, input_size=(3, 32, 32), pretrained=True)
        assert where in str(caught.value) and "--weights" in str(caught.value)
    with pytest.raises(ConfigError, match="--pretrained is for timm and torchvision"):
        create_model("resnet18", num_classes=10, input_size=(3, 32, 32), pretrained=True)


def test_list_models_globs_over_all_sources():
    names = list_models("*shufflenet_v2_x1_0")
    assert {"shufflenet_v2_x1_0", "tv:shufflenet_v2_x1_0"} <= set(names)
    assert "resnet18" in list_models("resnet1*") and "resnet10t" in list_models("resnet1*")
    assert list_models("*", external=False) == sorted(list_models("*", external=False))


def test_models_command_lists_builtins_and_matches_patterns():
    runner = CliRunner()
    plain = runner.invoke(app, ["models"])
    assert plain.exit_code == 0 and "squeezenet1_1" in plain.output and "tv:resnet18" not in plain.output
    pattern = runner.invoke(app, ["models", "tv:shuffle*"])
    assert "tv:shufflenet_v2_x1_0" in pattern.output and "digits-cnn" not in pattern.output


def _tiny_npz(tmp_path, channels=3, size=16, classes=4, samples=8):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "test.npz",
        x=rng.integers(0, 256, (samples, size, size, channels), dtype=np.uint8),
        y=np.arange(samples) % classes,
    )
    return tmp_path


@pytest.mark.parametrize("name", ["timm:resnet18", "tv:shufflenet_v2_x1_0"])
def test_timm_and_torchvision_models_scan_end_to_end(tmp_path, name):
    root = _tiny_npz(tmp_path)
    config = fragscan.ScanConfig(
        model=name,
        dataset="npz",
        data_root=root,
        max_samples=8,
        thresholds=3,
        filters="pulse",
        eps=0.03,
        attack_mode="fixed",
        batch_size=8,
    )
    report = fragscan.scan(config)
    groups, _ = parameter_groups(create_model(name, num_classes=4, input_size=(3, 16, 16)).net)
    assert [g.name for g in report.groups] == [g.name for g in groups]
    assert report.model.num_classes == 4 and report.model.input_size == [3, 16, 16]
    assert all(len(g.filters["pulse"].clean) == 3 for g in report.groups)


def test_scan_cli_records_the_new_options_and_fails_cleanly(tmp_path):
    runner = CliRunner()
    out = tmp_path / "out"
    root = _tiny_npz(tmp_path, channels=1, size=12, classes=3, samples=6)
    result = runner.invoke(
        app,
        [
            "scan",
            "squeezenet1_1",
            "npz",
            "--data-root",
            str(root),
            "--stem",
            "cifar",
            "--max-samples",
            "6",
            "--thresholds",
            "3",
            "--filters",
            "pulse",
            "--eps",
            "0.05",
            "--attack-mode",
            "fixed",
            "--quiet",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    report = fragscan.load_report(out / "report.json")
    assert report.settings.stem == "cifar" and report.settings.pretrained is False and report.settings.download is False
    assert report.model.input_size == [1, 12, 12] and report.model.num_classes == 3
    for arguments, message in [
        (["tv:resnet18", "npz", "--pretrained"], "--pretrained"),
        (["resnt18", "npz"], "did you mean resnet18"),
        (["small-cnn", "npz", "--stem", "tiny"], "--stem"),
        (["small-cnn", "cifar10", "--download"], "--download of CIFAR10"),
    ]:
        failed = runner.invoke(app, ["scan", *arguments, "--data-root", str(root), "--out", str(tmp_path / "bad")])
        assert failed.exit_code == 2, failed.output
        assert message in failed.output and len(failed.output.strip().splitlines()) == 1
        assert not (tmp_path / "bad" / "report.json").exists()
