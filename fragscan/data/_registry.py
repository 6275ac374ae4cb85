"""The dataset registry and its decorator, apart from the package face so the adapters can import them
(an adapter importing ``fragscan.data`` itself would close a circle: the face imports every adapter)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from torch.utils.data import Dataset

from ..base.registry import Registry

DATASETS: Registry[Callable[..., Dataset]] = Registry("dataset")


@dataclass(frozen=True)
class DatasetSpec:
    """What the pipeline knows about a dataset before reading it. ``None``: read from the data."""

    num_classes: int | None = None
    input_size: tuple[int, int, int] | None = None
    needs_root: bool = True
    description: str = ""
    mean: tuple[float, ...] | None = None  # pixel statistics of the training split, for models fitted to it
    std: tuple[float, ...] | None = None
    # Whether the data at a root has a training split to hold ``val`` out of (a bool when it never
    # depends on the files): then ``val`` and ``train`` are carved from the adapter's ``train``.
    holdout: bool | Callable[[Path | None], bool] = False


def register_dataset(
    name: str,
    *,
    num_classes: int | None = None,
    input_size: tuple[int, int, int] | None = None,
    needs_root: bool = True,
    description: str = "",
    mean: tuple[float, ...] | None = None,
    std: tuple[float, ...] | None = None,
    source: str | None = None,
    holdout: bool | Callable[[Path | None], bool] = False,
) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    """Decorator: register a factory ``(root, split, **kw) -> Dataset`` of (pixels in [0,1] CxHxW, int label).

    Leave ``num_classes`` as ``None`` when it depends on the files: the dataset's ``classes``
    attribute (or its largest label + 1) then gives it. ``holdout``: the factory's ``train`` split
    is training data, and fragscan holds the ``val`` split out of it (a callable decides per root).
    """
    spec = DatasetSpec(
        int(num_classes) if num_classes is not None else None,
        tuple(input_size) if input_size else None,
        needs_root,
        description,
        tuple(mean) if mean is not None else None,
        tuple(std) if std is not None else None,
        holdout,
    )

    def wrap(factory):
        return DATASETS.register(name, factory, spec=spec, source=source)

    return wrap
