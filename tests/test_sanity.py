"""Checks before a scan: probabilities instead of logits, zero input gradients, chance accuracy."""

import torch
from torch import nn

import fragscan
from fragscan.models import ModelSpec, Normalized, create_model
from fragscan.models.sanity import check_model, looks_like_probabilities, near_chance, zero_input_gradients

SPEC = ModelSpec(input_size=(1, 8, 8), mean=(0.3056,), std=(0.3761,), num_classes=10)


def _digits_batch():
    from fragscan.data import create_dataset, evaluation_tensors

    images, labels, _ = evaluation_tensors(create_dataset("digits"), 40, 0)
    return images, labels


def test_softmax_outputs_are_flagged_and_logits_are_not():
    trained = create_model("digits-cnn")
    images, labels = _digits_batch()
    with torch.no_grad():
        logits = trained(images)
    assert looks_like_probabilities(logits) is None
    assert "probabilities" in looks_like_probabilities(logits.softmax(1))


def test_zero_input_gradients_are_flagged():
    images, labels = _digits_batch()
    flat = Normalized(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), SPEC)
    assert zero_input_gradients(flat, images, labels) is None
    rounded = Normalized(nn.Sequential(nn.Flatten(), nn.Linear(64, 10), _Round()), SPEC)
    assert "zero gradient" in zero_input_gradients(rounded, images, labels)


class _Round(nn.Module):
    def forward(self, x):
        return torch.round(x)  # gradient zero everywhere: gradient attacks are blind


def test_chance_accuracy_is_flagged():
    assert near_chance(0.12, 10) is not None and near_chance(0.9, 10) is None


def test_scan_reports_the_warnings_of_a_softmax_model(small_config):
    trained = create_model("digits-cnn")
    softmax_model = Normalized(nn.Sequential(trained.net, nn.Softmax(dim=1)), trained.spec)
    report = fragscan.scan(small_config(max_samples=40, thresholds=3, filters="pulse"), model=softmax_model)
    assert any("probabilities" in w for w in report.warnings)
    clean = fragscan.scan(small_config(max_samples=40, thresholds=3, filters="pulse"))
    assert not any("probabilities" in w or "gradient" in w for w in clean.warnings)


def test_check_model_leaves_a_trained_model_unflagged():
    images, labels = _digits_batch()
    assert check_model(create_model("digits-cnn"), images, labels, 32) == []
