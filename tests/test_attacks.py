"""Attacks see the network exactly as the measurements do, and leave it so."""

import pytest
import torch
from torch import nn
from torch.nn import functional

import fragscan
from fragscan.attacks import ADVERSARIAL_MODES, build_attack, craft, predictions
from fragscan.data import create_dataset, evaluation_tensors
from fragscan.engine import analysis_mode, sweep
from fragscan.groups import parameter_groups
from fragscan.models import ModelSpec, Normalized
from fragscan.reference import reference_sweep
from fragscan.train import TrainSettings, train

BATCH = 16


class SmallNet(nn.Module):
    """BatchNorm plus two kinds of dropout: a module, and timm's functional ``F.dropout(training=self.training)``."""

    def __init__(self, num_classes=10, in_chans=1):
        super().__init__()
        self.conv = nn.Conv2d(in_chans, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(8 * 8 * 8, num_classes)

    def forward(self, x):
        x = self.drop(torch.relu(self.bn(self.conv(x)))).flatten(1)
        return self.head(functional.dropout(x, 0.5, training=self.training))


def _dropout_model(epochs=0):
    torch.manual_seed(0)
    model = Normalized(SmallNet(), ModelSpec((1, 8, 8), (0.3056,), (0.3761,), 10))
    return train(model, create_dataset("digits", split="train"), TrainSettings(epochs=epochs)) if epochs else model


@pytest.fixture(scope="module")
def data():
    images, labels, _ = evaluation_tensors(create_dataset("digits"), 32, 0)
    return images, labels


def _flags(model):
    return {name: module.training for name, module in model.named_modules()}


@pytest.mark.parametrize("attack", ["FGSM", "PGD"])
def test_norm_mode_train_keeps_every_module_mode_through_an_attack(data, attack):
    model = _dropout_model()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    with analysis_mode(model, "train"):
        flags = _flags(model)
        assert flags["net.bn"] and not flags["net.drop"] and not flags["net"]  # what analysis_mode promises
        first = predictions(model, data[0], BATCH)
        craft(build_attack(attack, model, 0.1, 10, "train"), *data, BATCH, 0)
        assert _flags(model) == flags
        assert torch.equal(predictions(model, data[0], BATCH), first)  # no dropout left on
        assert torch.equal(predictions(model, data[0], BATCH), first)
    for key, value in model.state_dict().items():
        assert torch.equal(value, buffers[key]), key


def test_the_attack_itself_runs_with_batch_statistics_and_no_dropout(data):
    model = _dropout_model()
    seen = []
    for module in model.modules():
        module.register_forward_pre_hook(lambda m, _: seen.append((type(m).__name__, m.training)))
    with analysis_mode(model, "train"):
        craft(build_attack("FGSM", model, 0.1, 10, "train"), *data, BATCH, 0)
    assert seen and all(training == (kind == "BatchNorm2d") for kind, training in seen), set(seen)


def test_a_norm_mode_train_scan_never_runs_dropout(small_config):
    """Every forward a scan makes, the attack's included, sees analysis_mode's flags."""
    model = _dropout_model()
    wrong = set()

    def record(module, _):
        if module.training != isinstance(module, nn.BatchNorm2d):
            wrong.add(type(module).__name__)

    for module in model.modules():
        module.register_forward_pre_hook(record)
    fragscan.scan(small_config(norm_mode="train", max_samples=40, thresholds=3, bootstrap=0), model=model)
    assert not wrong


def _engine_and_reference(model, images, labels, mode, norm_mode="eval", **attack_options):
    groups, _ = parameter_groups(model.net)
    filters, thresholds = ("step-up", "pulse"), 3

    def make_attack(network):
        return build_attack("FGSM", network, 0.1, 10, norm_mode, **attack_options)

    with analysis_mode(model, norm_mode):
        adversary = ADVERSARIAL_MODES[mode](make_attack(model), images, labels, BATCH, 0)
        result = sweep(model, groups, filters, thresholds, images, labels, adversary, batch_size=BATCH)
        expected = reference_sweep(model, groups, filters, thresholds, images, labels, make_attack, mode, BATCH, 0)
    varied = False
    for group, per_filter in expected.items():
        for filter_id, (clean, adversarial) in per_filter.items():
            assert torch.equal(result.curves[group][filter_id].clean, clean), (group, filter_id)
            assert torch.equal(result.curves[group][filter_id].adversarial, adversarial), (group, filter_id)
            varied |= bool((clean != clean[0]).any() or (adversarial != adversarial[0]).any())
    assert varied, "the curves never change: the comparison would prove nothing"
    return result.info


def test_a_norm_mode_train_sweep_equals_the_obvious_loop_with_fgsm_fused(data):
    """With the modes left alone, FGSM's shared forward applies in train mode too, and agrees."""
    info = _engine_and_reference(_dropout_model(epochs=1), *data, "regenerate", norm_mode="train")
    assert info.fused_attack
