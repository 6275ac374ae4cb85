"""Dataset adapters: each is a factory ``(root, split, **kw) -> Dataset`` of (pixels in [0,1] CxHxW, label)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from ..errors import ConfigError
from ..registry import Registry

DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")


@dataclass(frozen=True)
class DatasetSpec:
    num_classes: int
    input_size: tuple[int, int, int] | None = None
    needs_root: bool = True
    description: str = ""


def register_dataset(
    name: str,
    *,
    num_classes: int,
    input_size: tuple[int, int, int] | None = None,
    needs_root: bool = True,
    description: str = "",
    source: str = "builtin",
) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Decorator: register a factory ``(root, split, **kw) -> Dataset``."""
    spec = DatasetSpec(int(num_classes), tuple(input_size) if input_size else None, needs_root, description)

    def wrap(factory):
        return DATASETS.register(name, factory, spec=spec, source=source)

    return wrap


def list_datasets(pattern: str = "*") -> list[str]:
    return DATASETS.list(pattern)


def dataset_spec(name: str) -> DatasetSpec:
    return DATASETS.entry(name).meta["spec"]


def create_dataset(name: str, *, root: str | Path | None = None, split: str = "test", **kwargs: Any) -> Dataset:
    entry = DATASETS.entry(name)
    if entry.meta["spec"].needs_root and root is None:
        raise ConfigError(f"dataset {name!r} reads files from disk; pass --data-root DIR")
    return entry.obj(root=None if root is None else Path(root), split=split, **kwargs)


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
    return torch.stack([torch.as_tensor(x, dtype=torch.float32) for x in images]), torch.as_tensor(labels), indices


from . import digits  # noqa: E402,F401  (built-in adapters register on import)
