"""scikit-learn's bundled 8x8 digits (1797 real images), with a fixed stratified train/test split
(``val`` is then held out of train like every adapter's, in ``fragscan.data``)."""

from __future__ import annotations

import torch
from torch.utils.data import TensorDataset

from ..base.errors import ConfigError
from ._registry import register_dataset

SPLIT_SEED = 0
TEST_FRACTION = 0.3
SPLIT_DESCRIPTION = f"stratified train_test_split(test_size={TEST_FRACTION}, random_state={SPLIT_SEED})"


@register_dataset(
    "digits",
    num_classes=10,
    input_size=(1, 8, 8),
    needs_root=False,
    description=f"scikit-learn load_digits, bundled, no download; {SPLIT_DESCRIPTION}",
    holdout=True,
)
def digits(root=None, split: str = "test", **kwargs) -> TensorDataset:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test"):
        raise ConfigError(f"digits has splits 'train' and 'test', not {split!r}")
    bunch = load_digits()
    images = torch.tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    labels = torch.tensor(bunch.target, dtype=torch.long)
    train_idx, test_idx = train_test_split(
        range(len(labels)), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=bunch.target
    )
    chosen = torch.tensor(train_idx if split == "train" else test_idx)
    return TensorDataset(images[chosen], labels[chosen])
