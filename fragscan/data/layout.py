"""Shared pieces of the on-disk adapters: an in-memory image tensor dataset and "files expected" errors."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ..base.errors import ConfigError, InputError
from ..base.limits import LIMITS_DOC, MAX_CLASSES


class ImageTensors(Dataset):
    """uint8 images N x C x H x W and integer labels; items are (float pixels in [0, 1], int label)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str]):
        if images.ndim != 4 or len(images) != len(labels):
            raise InputError(
                f"got {tuple(images.shape)} images for {len(labels)} labels; expected N x C x H x W and N labels"
            )
        self.images, self.targets, self.classes = images, labels.long(), list(classes)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index].float() / 255.0, int(self.targets[index])


def check_split(name: str, split: str, splits: Iterable[str]) -> None:
    splits = tuple(splits)
    if split not in splits:
        raise ConfigError(f"{name} has splits {', '.join(map(repr, splits))}, not {split!r} (--split)")


def require_root(name: str, root: Path, expected: str) -> Path:
    if not root.exists():
        raise InputError(f"{name}: --data-root {str(root)!r} does not exist; it should hold {expected}")
    return root


def own_train_without_val(root: Path | None, train: str, val: str) -> bool:
    """Does ``root`` hold a ``train`` entry and no ``val`` of the user's own (then fragscan holds one out)?"""
    return root is not None and (root / train).exists() and not (root / val).exists()


def first_existing(candidates: Iterable[Path]) -> Path | None:
    return next((path for path in candidates if path.exists()), None)


def missing_files(name: str, expected: str, places: Sequence[Path], hint: str = "") -> InputError:
    where = ", ".join(repr(str(p)) for p in places)
    return InputError(f"{name}: no {expected} in {where}{'; ' + hint if hint else ''}")


def download_failed(dataset: str, root: Path, error: BaseException) -> InputError:
    """torchvision's download errors run over several lines (file, mirror, cause): one line here."""
    return InputError(f"--download of {dataset} into {str(root)!r} failed: {' '.join(str(error).split())}")


def label_class_count(labels: np.ndarray, source: str) -> int:
    """The classes every one of ``labels`` names (the largest + 1), all of them checked, not only those a
    scan happens to draw: a label of -1 would index no class (an IndexError in training, or a scan that
    passes only while it draws around it)."""
    if not len(labels):
        return 0
    if labels.min() < 0:
        raise InputError(f"{source}: labels must be 0, 1, ..., K-1; found {labels.min()} (fix the labels)")
    return checked_class_count(int(labels.max()) + 1, source)


def checked_class_count(count: int, source: str) -> int:
    """``count`` classes, refused beyond MAX_CLASSES before a classifier (or a list of names) that
    size is built: one corrupt label of 10**9 would otherwise take every byte of memory. One class is
    refused too: a classifier of one class is right about every sample, trained or not."""
    if count == 1:
        raise InputError(
            f"{source} name one class only, and over one class any network scores accuracy 1.000; give samples "
            "of two or more classes"
        )
    if count > MAX_CLASSES:
        raise InputError(
            f"{source} reach label {count - 1}, beyond the {MAX_CLASSES} classes fragscan takes; "
            f"labels must be 0, 1, ..., K-1 (see {LIMITS_DOC})"
        )
    return count
