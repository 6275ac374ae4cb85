"""A named model built to fit a dataset: what scan, train and retrain share, so a model that
leaves its classes, input size or statistics to the data is built the same way by each."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from ..base.errors import ConfigError
from ..base.plugins import load_plugins
from ..data import DATASETS, class_count, dataset_spec
from . import Normalized, create_model_for_data


def model_for_data(
    name: str, dataset_name: str, dataset: Dataset, *, input_size: tuple[int, ...] | None = None, **options: Any
) -> Normalized:
    """:func:`create_model_for_data` with ``dataset``'s classes, image size (its first image's, unless
    given) and, for a registered dataset, its training statistics. Plugins (entry points,
    ``./plugins/``) are loaded first, as a scan loads them, so their names resolve."""
    load_plugins()
    if len(dataset) == 0:
        raise ConfigError(f"dataset {dataset_name!r} gives no samples in this split")
    spec = dataset_spec(dataset_name) if dataset_name in DATASETS else None
    if input_size is None:
        input_size = tuple(torch.as_tensor(dataset[0][0]).shape)
    classes = class_count(dataset, spec)
    model = create_model_for_data(
        name,
        num_classes=classes,
        input_size=tuple(input_size),
        mean=spec.mean if spec else None,
        std=spec.std if spec else None,
        **options,
    )
    check_fits(model, name, dataset_name, input_size, classes - 1)
    return model


def check_fits(model: Normalized, name: str, dataset_name: str, image_size: tuple[int, ...], top_label: int) -> None:
    """Refuse data that a model's registration does not take (its fixed input size or classes):
    adaptive pooling may run it anyway, with another dataset's statistics and meaningless results."""
    if tuple(image_size) != tuple(model.spec.input_size):
        raise ConfigError(
            f"dataset {dataset_name!r} gives images of shape {tuple(image_size)} but model "
            f"{name!r} expects {tuple(model.spec.input_size)}"
        )
    if top_label >= model.spec.num_classes:
        raise ConfigError(f"dataset labels reach {top_label} but model {name!r} has {model.spec.num_classes} classes")
