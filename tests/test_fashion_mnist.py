"""Real data: Fashion-MNIST as Debian's `dataset-fashion-mnist` installs it (CI installs the package)."""

from pathlib import Path

import pytest
import torch
from torch.utils.data import Subset

import fragscan
from fragscan.data import create_dataset
from fragscan.models import create_model
from fragscan.models.train import TrainSettings, accuracy, train

DEBIAN_ROOT = Path("/usr/share/datasets/fashion-mnist")

pytestmark = pytest.mark.skipif(
    not (DEBIAN_ROOT / "t10k-images-idx3-ubyte.gz").exists(),
    reason="needs Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist; .ci/run installs it)",
)


def test_the_debian_files_read_as_the_published_splits_with_val_held_out_of_train():
    test = create_dataset("fashion-mnist", root=DEBIAN_ROOT, split="test")
    train_split = create_dataset("fashion-mnist", root=DEBIAN_ROOT, split="train")
    val = create_dataset("fashion-mnist", root=DEBIAN_ROOT, split="val")
    assert (len(train_split), len(val), len(test)) == (55000, 5000, 10000)
    assert set(train_split.indices).isdisjoint(val.indices)
    assert len(set(train_split.indices) | set(val.indices)) == 60000
    assert torch.bincount(torch.tensor(val.targets)).tolist() == [500] * 10  # stratified: the training data is balanced
    assert torch.bincount(test.targets).tolist() == [1000] * 10  # the test split is balanced
    assert abs(float(test.images.float().mean() / 255) - 0.2860) < 0.005


@pytest.mark.slow
def test_train_briefly_then_scan_on_the_real_test_split():
    torch.manual_seed(0)
    train_split = create_dataset("fashion-mnist", root=DEBIAN_ROOT, split="train")
    test_split = create_dataset("fashion-mnist", root=DEBIAN_ROOT, split="test")
    model = create_model("small-cnn", num_classes=10, input_size=(1, 28, 28), mean=(0.2860,), std=(0.3530,))
    train(model, Subset(train_split, range(6000)), TrainSettings(epochs=1, seed=0))
    held_out = accuracy(model, Subset(test_split, range(500)))
    assert held_out > 0.55  # ten classes: chance is 0.1

    config = fragscan.ScanConfig(
        model="small-cnn", dataset="fashion-mnist", data_root=DEBIAN_ROOT, max_samples=200, thresholds=3,
        filters="pulse", eps=0.05, attack_mode="fixed",
    )
    report = fragscan.scan(config, model=model)
    assert report.dataset.size == 10000 and report.dataset.samples == 200
    assert report.baseline.clean > 0.55 and report.baseline.adversarial < report.baseline.clean
    assert [g.name for g in report.groups] == [
        "features.0.weight", "features.2.weight", "features.6.weight", "classifier.1.weight", "classifier.3.weight"
    ]
    assert not any("chance" in w or "probabilities" in w or "gradient" in w for w in report.warnings)
