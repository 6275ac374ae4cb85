"""Dataset adapters: each is a factory ``(root, split, **kw) -> Dataset`` of (pixels in [0,1] CxHxW, label)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import ConfigError, InputError
from ._registry import DATASETS, DatasetSpec, register_dataset  # noqa: F401 (the public verbs live here)


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.list(pattern)


def dataset_spec(name: str) -> DatasetSpec:
    return DATASETS.entry(name).meta["spec"]


def create_dataset(
    name: str, *, root: str | Path | None = None, split: str = "test", download: bool = False, **kwargs: Any
) -> Dataset:
    """The ``split`` of dataset ``name`` read from ``root``; ``download`` fetches it first where the adapter can."""
    entry = DATASETS.entry(name)
    if entry.meta["spec"].needs_root and root is None:
        raise ConfigError(f"dataset {name!r} reads files from disk; pass --data-root DIR")
    if download:
        kwargs["download"] = True
    return entry.obj(root=None if root is None else Path(root), split=split, **kwargs)


def class_count(dataset: Dataset, spec: DatasetSpec | None) -> int:
    """Classes of ``dataset``: its spec's, else its ``classes`` attribute, else its largest label + 1."""
    if spec is not None and spec.num_classes is not None:
        return spec.num_classes
    classes = getattr(dataset, "classes", None)
    if classes is not None:
        return len(classes)
    labels = getattr(dataset, "targets", None)
    if labels is None:
        labels = [int(dataset[i][1]) for i in range(len(dataset))]
    return int(torch.as_tensor(labels).max()) + 1


def evaluation_tensors(
    dataset: Dataset, max_samples: int | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The evaluation samples as stacked tensors: all of them, or ``max_samples`` drawn with ``seed``.

    Returns images, labels and the dataset indices used (sorted, so the order is the dataset's).
    """
    size = len(dataset)
    if size == 0:
        raise ConfigError("the dataset split is empty")
    if max_samples is None or max_samples >= size:
        indices = list(range(size))
    else:
        generator = torch.Generator().manual_seed(seed)
        indices = sorted(torch.randperm(size, generator=generator)[:max_samples].tolist())
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
