"""A worked dataset plugin: MNIST-style CSV files (``label,pixel0,...,pixel783`` per row, 0-255).

Many copies of MNIST and Fashion-MNIST circulate as ``mnist_train.csv`` / ``mnist_test.csv``.
Load this file with ``--plugin``:

    fragscan scan small-cnn mnist-csv --plugin examples/mnist_csv_plugin.py --data-root DIR --weights W

A dataset factory takes ``(root, split, **kw)`` and returns a torch Dataset of
``(float image in [0, 1], C x H x W, int label)``. Raise ``fragscan.InputError`` with the
files expected and where: fragscan prints it as one line.
"""

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

import fragscan
from fragscan import InputError


@fragscan.register_dataset(
    "mnist-csv",
    num_classes=10,
    input_size=(1, 28, 28),
    description="ROOT/mnist_SPLIT.csv: label,pixel0..pixel783 per row (plugin example)",
)
def mnist_csv(root: Path, split: str = "test", **kwargs) -> TensorDataset:
    path = Path(root) / f"mnist_{split}.csv"
    if not path.is_file():
        raise InputError(f"mnist-csv: {str(path)!r} not found; put mnist_{split}.csv (label,pixel0..pixel783) there")
    rows = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    if rows.shape[1] != 1 + 28 * 28:
        raise InputError(f"mnist-csv: {str(path)!r} has {rows.shape[1]} columns, expected 785 (label + 784 pixels)")
    images = torch.from_numpy(rows[:, 1:].astype(np.float32) / 255.0).view(-1, 1, 28, 28)
    return TensorDataset(images, torch.from_numpy(rows[:, 0]))
