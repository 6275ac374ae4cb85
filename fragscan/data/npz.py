"""Arrays in a NumPy ``.npz``: ``x`` (N x H x W, N x H x W x C or N x C x H x W; integers 0-255 or finite
floats in [0, 1]) and ``y`` (N integer labels). ``--data-root`` is the file, or a folder holding ``SPLIT.npz``.
Loaded with ``allow_pickle=False``. A folder with ``train.npz`` and no ``val.npz`` gets its ``val``
held out of ``train`` (``fragscan.data``); a single file is one split, with no ``val``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..base.errors import ConfigError, InputError
from ._registry import register_dataset
from .layout import label_class_count, own_train_without_val


def _channels_first(x: np.ndarray) -> np.ndarray:
    if x.ndim == 3:
        return x[:, None]
    if x.ndim == 4 and x.shape[-1] in (1, 3, 4) and x.shape[1] not in (1, 3, 4):
        return x.transpose(0, 3, 1, 2)
    if x.ndim == 4:
        return x
    raise InputError(f"npz: x has shape {x.shape}; expected N x H x W, N x H x W x C or N x C x H x W")


@register_dataset(
    "npz",
    description="a .npz with arrays x (images) and y (labels); ROOT is the file or holds SPLIT.npz",
    holdout=lambda root: own_train_without_val(root, "train.npz", "val.npz"),
)
def npz(root: Path, split: str = "test", **kwargs) -> TensorDataset:
    if root.is_file() and split == "val":  # the one file may be the very samples a retraining is judged on
        raise ConfigError(f"npz: {str(root)!r} is one file, no train.npz to hold a 'val' split out of; pass a folder")
    path = root if root.is_file() else root / f"{split}.npz"
    if not path.is_file():
        raise InputError(
            f"npz: {str(path)!r} not found; pass the .npz file or a folder holding {split}.npz (arrays x, y)"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # a .npy holds one bare array
            raise InputError(
                f"npz: {str(path)!r} is one .npy array, not a .npz archive; save it with np.savez(FILE, x=images, "
                "y=labels)"
            )
        with loaded as arrays:
            if "x" not in arrays or "y" not in arrays:
                raise InputError(f"npz: {str(path)!r} holds {sorted(arrays.files)}; it needs arrays 'x' and 'y'")
            x, y = arrays["x"], arrays["y"]
    except ValueError as error:
        if "allow_pickle" in str(error):  # numpy's own hint would tell the user to unpickle: never
            raise InputError(
                f"npz: {str(path)!r} holds Python objects, which fragscan never unpickles; save numbers: "
                "np.savez(FILE, x=images, y=labels) with numeric arrays"
            ) from None
        raise InputError(f"npz: cannot read {str(path)!r}: {error}") from None
    except (OSError, EOFError, zipfile.BadZipFile) as error:
        raise InputError(f"npz: cannot read {str(path)!r}: {error}") from None
    pixels = _channels_first(x)  # x's shape first: a flat x's length is no count of images to check y against
    if x.ndim == 0 or y.ndim != 1 or len(x) != len(y) or not np.issubdtype(y.dtype, np.integer):
        raise InputError(
            f"npz: y must be N integer labels for the N={len(x) if x.ndim else 0} images, got {y.dtype} {y.shape}"
        )
    classes = label_class_count(y, f"npz: y in {str(path)!r}")
    if np.issubdtype(pixels.dtype, np.integer):
        if pixels.size and (pixels.min() < 0 or pixels.max() > 255):  # uint16 or signed data: no agreed scale
            raise InputError(
                f"npz: integer x must be pixels 0-255, found [{pixels.min()}, {pixels.max()}]; or give floats in [0, 1]"
            )
        pixels = pixels.astype(np.float32) / 255.0
    elif not np.issubdtype(pixels.dtype, np.floating):
        raise InputError(f"npz: x is {pixels.dtype}; give integer pixels 0-255 or floats in [0, 1]")
    elif not np.isfinite(pixels).all():
        raise InputError("npz: x holds NaN or infinite values; pixels must be floats in [0, 1]")
    elif pixels.size and (pixels.min() < 0 or pixels.max() > 1):
        raise InputError(f"npz: float x must lie in [0, 1], found [{pixels.min():.3g}, {pixels.max():.3g}]")
    dataset = TensorDataset(
        torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32)), torch.from_numpy(y.astype(np.int64))
    )
    dataset.classes = [str(c) for c in range(classes)]
    return dataset
