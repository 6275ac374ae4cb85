"""A named model built to fit a dataset: what scan, train and retrain share, so a model that
leaves its classes, input size or statistics to the data is built the same way by each."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from .data import DATASETS, class_count, dataset_spec
from .models import Normalized, create_model_for_data
from .plugins import load_plugins


def model_for_data(
    name: str, dataset_name: str, dataset: Dataset, *, input_size: tuple[int, ...] | None = None, **options: Any
) -> Normalized:
    """:func:`create_model_for_data` with ``dataset``'s classes, image size (its first image's, unless
    given) and, for a registered dataset, its training statistics. Plugins (entry points,
    ``./plugins/``) are loaded first, as a scan loads them, so their names resolve."""
    load_plugins()
    spec = dataset_spec(dataset_name) if dataset_name in DATASETS else None
    if input_size is None:
        input_size = tuple(torch.as_tensor(dataset[0][0]).shape)
    return create_model_for_data(
        name,
        num_classes=class_count(dataset, spec),
        input_size=tuple(input_size),
        mean=spec.mean if spec else None,
        std=spec.std if spec else None,
        **options,
    )
