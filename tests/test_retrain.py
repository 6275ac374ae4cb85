import json

import torch
from safetensors.torch import load_file
from torch.utils.data import Subset
from typer.testing import CliRunner

from fragscan.attacks import build_attack
from fragscan.cli import app
from fragscan.data import create_dataset
from fragscan.models import create_model
from fragscan.retrain import bits_differ
from fragscan.train import TrainSettings, train

runner = CliRunner()


def _half_mask(model, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return {name: (torch.rand(p.shape, generator=generator) < 0.5).to(torch.uint8) for name, p in model.named_parameters()}


def _train_set():
    return Subset(create_dataset("digits", split="train"), range(200))


def test_masked_training_keeps_frozen_elements_bit_identical_with_weight_decay_and_adversary():
    model = create_model("digits-cnn")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    mask = _half_mask(model)
    adversary = build_attack("FGSM", model, 0.1, 10)
    train(model, _train_set(), TrainSettings(epochs=1, weight_decay=0.05), mask=mask, adversary=adversary)
    for name, parameter in model.named_parameters():
        differs = bits_differ(before[name], parameter.detach())
        frozen = ~mask[name].bool()
        assert not bool((differs & frozen).any()), name
        assert bool((differs & mask[name].bool()).any()), f"{name} did not move"


def test_a_batch_norm_layer_with_every_parameter_frozen_keeps_its_running_statistics():
    from torch import nn

    from fragscan.models import ModelSpec, Normalized

    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 10)
    )
    model = Normalized(net, ModelSpec((1, 8, 8), (0.3,), (0.4,), 10))
    mask = {name: torch.ones(p.shape, dtype=torch.uint8) for name, p in model.named_parameters()}
    mask["net.1.weight"].zero_()
    mask["net.1.bias"].zero_()  # the first norm layer frozen whole; the second still trains
    before = {k: v.clone() for k, v in model.state_dict().items()}
    train(model, _train_set(), TrainSettings(epochs=1), mask=mask)
    for buffer in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.equal(model.state_dict()[f"net.1.{buffer}"], before[f"net.1.{buffer}"]), buffer
        assert not torch.equal(model.state_dict()[f"net.4.{buffer}"], before[f"net.4.{buffer}"]), buffer


def test_masking_gradients_alone_would_not_keep_them_under_weight_decay():
    """Why frozen elements are restored after each step: Adam's decay moves zero-gradient entries."""
    model = create_model("digits-cnn")
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    mask = _half_mask(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=0.05)
    images, labels = next(iter(torch.utils.data.DataLoader(_train_set(), batch_size=100)))
    torch.nn.functional.cross_entropy(model(images), labels).backward()
    for name, parameter in model.named_parameters():
        parameter.grad.mul_(mask[name])
    optimizer.step()
    weight = "net.features.0.weight"
    assert bool((bits_differ(before[weight], model.get_parameter(weight).detach()) & ~mask[weight].bool()).any())


def test_scan_mask_retrain_round_trip_on_the_embedded_default(tmp_path):
    scan_dir, out = tmp_path / "scan", tmp_path / "retrain"
    result = runner.invoke(
        app, ["scan", "--max-samples", "40", "--thresholds", "3", "--eps", "0.1", "--filters", "pulse", "--quiet", "--out", str(scan_dir)]
    )
    assert result.exit_code == 0, result.output
    mask_path = scan_dir / "mask.safetensors"
    result = runner.invoke(app, ["mask", str(scan_dir / "report.json"), "--policy", "band", "-o", str(tmp_path / "again.safetensors")])
    assert result.exit_code == 0, result.output
    assert load_file(str(mask_path)).keys() == load_file(str(tmp_path / "again.safetensors")).keys()
    assert all(torch.equal(load_file(str(mask_path))[k], v) for k, v in load_file(str(tmp_path / "again.safetensors")).items())

    result = runner.invoke(
        app,
        ["retrain", "digits-cnn", "digits", "--mask", str(mask_path), "--epochs", "1", "--max-samples", "40",
         "--eps", "0.1", "--weight-decay", "0.01", "--adversarial", "--quiet", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "retrain.json").read_text())
    assert summary["frozen_bit_identical"] is True
    assert summary["control"] is not None and summary["settings"]["adversarial"] is True
    assert "<table>" in (out / "retrain.html").read_text()

    original = dict(create_model("digits-cnn").net.named_parameters())
    mask, after, control = load_file(str(mask_path)), load_file(str(out / "weights.safetensors")), load_file(str(out / "control.safetensors"))
    assert 0 < sum(int(m.sum()) for m in mask.values()) < sum(m.numel() for m in mask.values())
    for name, parameter in original.items():
        differs = bits_differ(parameter.detach(), after[name])
        assert not bool((differs & ~mask[name].bool()).any()), name
        if mask[name].any():
            assert bool(differs.any()), f"trainable {name} did not move"
        assert bool(bits_differ(parameter.detach(), control[name]).any()), f"control left {name} unchanged"


def test_no_control_skips_the_control(tmp_path):
    model = create_model("digits-cnn")
    from safetensors.torch import save_file

    save_file(_half_mask(model.net), str(tmp_path / "m.safetensors"))
    result = runner.invoke(
        app,
        ["retrain", "digits-cnn", "digits", "--mask", str(tmp_path / "m.safetensors"), "--epochs", "1", "--max-samples", "30",
         "--eps", "0.1", "--no-control", "--quiet", "--out", str(tmp_path / "o")],
    )
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "o" / "retrain.json").read_text())["control"] is None
    assert not (tmp_path / "o" / "control.safetensors").exists()


def test_train_writes_checkpoints_and_a_sidecar(tmp_path):
    result = runner.invoke(app, ["train", "digits-cnn", "digits", "--split", "test", "--epochs", "3", "--save-every", "2", "--quiet", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "training.json").read_text())
    assert [c["epoch"] for c in record["checkpoints"]] == [2, 3]
    assert len(record["losses"]) == 3 and record["losses"][-1] < record["losses"][0]
    model = create_model("digits-cnn", weights=tmp_path / "epoch_003.safetensors")  # loads strictly
    assert record["checkpoints"][-1]["accuracy"] > 0.5
    assert not torch.equal(model.net.features[0].weight, create_model("digits-cnn").net.features[0].weight)


def test_bad_training_options_are_one_line(tmp_path):
    result = runner.invoke(app, ["train", "digits-cnn", "digits", "--epochs", "0", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--epochs must lie in [1, 100000]" in result.output
    result = runner.invoke(app, ["retrain", "digits-cnn", "digits", "--mask", str(tmp_path / "none.safetensors"), "--out", str(tmp_path)])
    assert result.exit_code == 2 and "not found" in result.output and "Traceback" not in result.output
