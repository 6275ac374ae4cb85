"""Dataset adapters: each is a factory ``(root, split, **kw) -> Dataset`` of (pixels in [0,1] CxHxW, label).

Validation split (method §7, no leakage). An adapter registered with ``holdout`` has training data,
and :func:`create_dataset` splits it in one place, the same way for every such adapter: ``val`` is
a seeded, stratified share of the adapter's own training data and ``train`` is the rest, so what
``train``/``retrain`` fit on never holds a ``val`` sample, and ``test`` stays the adapter's own.
Scans meant for masks run on ``val``; retraining is judged on ``test``.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset, TensorDataset

from ..base.errors import ConfigError, InputError
from ._registry import DATASETS, DatasetSpec, register_dataset  # noqa: F401 (the public verbs live here)
from .layout import checked_class_count, label_class_count

# The validation split: this share of the training data, at most VAL_CAP samples (and at least one
# per class), drawn by a stratified train_test_split with VAL_SEED. Fixed, not an option, so that
# train, scan and retrain on one machine or another always agree on which samples are held out.
VAL_SPLIT = "val"
VAL_SHARE = 0.2
VAL_CAP = 5000
VAL_SEED = 0


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.list(pattern)


def dataset_spec(name: str) -> DatasetSpec:
    return DATASETS.entry(name).meta["spec"]


def create_dataset(
    name: str, *, root: str | Path | None = None, split: str = "test", download: bool = False, **kwargs: Any
) -> Dataset:
    """The ``split`` of dataset ``name`` read from ``root``; ``download`` fetches it first where the adapter can.

    For an adapter with training data, ``train`` and ``val`` are the two sides of :func:`hold_out_val`.
    """
    entry = DATASETS.entry(name)
    spec: DatasetSpec = entry.meta["spec"]
    if spec.needs_root and root is None:
        # An adapter that can fetch its files says so: a user who is online needs no files at hand.
        fetch = (
            f", or --data-root DIR --download to fetch {name} into DIR (online)"
            if "download" in inspect.signature(entry.obj).parameters
            else ""
        )
        raise ConfigError(f"dataset {name!r} reads files from disk; pass --data-root DIR holding them{fetch}")
    if download:
        kwargs["download"] = True
    root = None if root is None else Path(root)
    holdout = spec.holdout(root) if callable(spec.holdout) else spec.holdout
    if holdout and split in ("train", VAL_SPLIT):
        return hold_out_val(entry.obj(root=root, split="train", **kwargs), name, split)
    return entry.obj(root=root, split=split, **kwargs)


class HeldOut(Subset):
    """One side of the train/val split; keeps the dataset's ``classes`` (and ImageFolder's ``samples``,
    for error messages) and says in ``holdout`` how it was drawn."""

    def __init__(self, dataset: Dataset, indices: list[int], labels: np.ndarray, holdout: str):
        super().__init__(dataset, indices)
        self.targets = labels[indices].tolist()
        self.holdout = holdout
        if getattr(dataset, "classes", None) is not None:
            self.classes = dataset.classes
        if getattr(dataset, "samples", None) is not None:
            self.samples = [dataset.samples[i] for i in indices]


def hold_out_val(training: Dataset, name: str, split: str) -> HeldOut:
    """The ``split`` side (``train`` or ``val``) of the seeded, stratified validation split of ``training``."""
    from sklearn.model_selection import train_test_split

    labels = dataset_labels(training)
    classes, counts = np.unique(labels, return_counts=True)
    size = min(VAL_CAP, max(len(classes), round(VAL_SHARE * len(labels))))
    if not len(labels) or counts.min() < 2 or len(labels) - size < len(classes):
        fewest = f"; class {classes[counts.argmin()]} has {counts.min()}" if len(labels) else ""
        raise ConfigError(
            f"{name}: the training data ({len(labels)} samples, {len(classes)} classes{fewest}) is too small to "
            f"hold out a stratified {VAL_SPLIT!r} split; give every class at least 2 training samples"
        )
    fit, val = train_test_split(np.arange(len(labels)), test_size=size, random_state=VAL_SEED, stratify=labels)
    note = (
        f"{VAL_SPLIT}: {len(val)} of the {len(labels)} training samples (stratified train_test_split, "
        f"random_state={VAL_SEED}); train: the other {len(fit)}"
    )
    return HeldOut(training, sorted(fit.tolist() if split == "train" else val.tolist()), labels, note)


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """Every label of ``dataset``: its ``targets``, a TensorDataset's label tensor, else read one by one."""
    labels = getattr(dataset, "targets", None)
    if labels is None and isinstance(dataset, TensorDataset) and len(dataset.tensors) > 1:
        labels = dataset.tensors[1]
    if labels is None:
        labels = [int(dataset[i][1]) for i in range(len(dataset))]
    return np.asarray(torch.as_tensor(labels), dtype=np.int64)


def same_samples(first: Dataset, second: Dataset) -> bool:
    """Whether two datasets hold the same samples in the same order, as two split names of one .npz file
    or CLASS folder do: equal lengths and labels, and equal first and last images."""
    if len(first) != len(second) or not len(first):
        return False
    if not np.array_equal(dataset_labels(first), dataset_labels(second)):
        return False
    return all(torch.equal(torch.as_tensor(first[i][0]), torch.as_tensor(second[i][0])) for i in (0, len(first) - 1))


def class_count(dataset: Dataset, spec: DatasetSpec | None) -> int:
    """Classes of ``dataset``: its spec's, else its ``classes`` attribute, else its largest label + 1."""
    if spec is not None and spec.num_classes is not None:
        return spec.num_classes
    classes = getattr(dataset, "classes", None)
    if classes is not None:
        return checked_class_count(len(classes), "the dataset's classes")
    return label_class_count(dataset_labels(dataset), "the dataset's labels")


def sample_order(size: int, seed: int) -> torch.Tensor:
    """The seeded order samples are drawn in: a scan of n samples evaluates the first n of it."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))


def sample_ranks(size: int, indices: list[int], seed: int) -> torch.Tensor:
    """Each drawn sample's place in :func:`sample_order`: the samples of rank < n are exactly the
    ones a scan with ``max_samples=n`` draws (method §5b: an adaptive scan's prefixes)."""
    ranks = torch.empty(size, dtype=torch.long)
    ranks[sample_order(size, seed)] = torch.arange(size)
    return ranks[torch.as_tensor(indices, dtype=torch.long)]


def drawn_indices(size: int, max_samples: int | None, seed: int) -> list[int]:
    """The dataset indices a scan of ``max_samples`` evaluates (all when None), sorted."""
    if max_samples is None or max_samples >= size:
        return list(range(size))
    return sorted(sample_order(size, seed)[:max_samples].tolist())


def drawn_ranks(size: int, samples: int, seed: int) -> torch.Tensor:
    """:func:`sample_ranks` of the ``samples`` a scan drew from a split of ``size``: what a report
    alone needs to pair an adaptive sweep's prefix with the unfiltered network."""
    return sample_ranks(size, drawn_indices(size, samples, seed), seed)


def evaluation_tensors(
    dataset: Dataset, max_samples: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The evaluation samples as stacked tensors: all of them, or ``max_samples`` drawn with ``seed``.

    Returns images, labels and the dataset indices used (sorted, so the order is the dataset's).
    """
    size = len(dataset)
    if size == 0:
        raise ConfigError("the dataset split is empty")
    indices = drawn_indices(size, max_samples, seed)
    images, labels = zip(*(dataset[i] for i in indices))
    contract = "samples must be (float tensor C x H x W in [0, 1], int label)"
    try:
        images = [torch.as_tensor(x, dtype=torch.float32) for x in images]
        labels = torch.as_tensor(labels)
    except (TypeError, ValueError, RuntimeError) as error:  # a PIL image, a string label, ragged arrays
        raise InputError(
            f"the dataset's {contract}; {_sample_name(dataset, indices[0])} is "
            f"({type(images[0]).__name__}, {type(labels[0]).__name__}): {error}"
        ) from None
    if images[0].ndim != 3 or labels.ndim != 1 or labels.is_floating_point() or labels.is_complex():
        raise InputError(
            f"the dataset's {contract}; {_sample_name(dataset, indices[0])} has an image of shape "
            f"{tuple(images[0].shape)} and a {labels.dtype} label of shape {tuple(labels.shape[1:])}"
        )
    odd = next((n for n, x in enumerate(images) if x.shape != images[0].shape), None)
    if odd is not None:
        raise InputError(
            f"the images differ in size: {_sample_name(dataset, indices[0])} is {tuple(images[0].shape)}, "
            f"{_sample_name(dataset, indices[odd])} {tuple(images[odd].shape)}; resize them to one size first"
        )
    if int(labels.min()) < 0:
        raise InputError(f"dataset labels must be 0, 1, ..., K-1; found {int(labels.min())}")
    pixels = torch.stack(images)
    if not bool(torch.isfinite(pixels).all()) or float(pixels.min()) < 0 or float(pixels.max()) > 1:
        # attacks clip to [0, 1]: 0-255 pixels would be scored, silently, on other images than the clean ones
        raise InputError(
            f"the dataset gives pixels in [{float(pixels.min()):.3g}, {float(pixels.max()):.3g}]"
            f"{'' if bool(torch.isfinite(pixels).all()) else ' with NaN or inf'}; adapters must give floats in [0, 1] "
            "(divide 0-255 pixels by 255)"
        )
    return pixels, labels, indices


def _sample_name(dataset: Dataset, index: int) -> str:
    """A sample as the user knows it: its file (ImageFolder's ``samples``) or its index."""
    samples = getattr(dataset, "samples", None)
    return repr(str(samples[index][0])) if samples is not None else f"sample {index}"


# Built-in adapters register on import, one small module each.
from . import cifar, digits, idx, imagefolder, npz, svhn, tiny_imagenet  # noqa: E402,F401
