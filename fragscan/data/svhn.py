"""SVHN cropped digits: ``train_32x32.mat``, ``test_32x32.mat``, ``extra_32x32.mat`` (MATLAB files, read by scipy).

Read here rather than by torchvision's SVHN, whose md5 check rejects any re-saved copy; label 10
means digit 0, as in the source files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..base.errors import InputError, first_line
from ._registry import register_dataset
from .layout import ImageTensors, check_split, download_failed, missing_files, require_root

SPLITS = ("train", "test", "extra")


@register_dataset(
    "svhn",
    num_classes=10,
    input_size=(3, 32, 32),
    mean=(0.4377, 0.4438, 0.4728),
    std=(0.1980, 0.2010, 0.1970),
    description="SVHN: train_32x32.mat / test_32x32.mat / extra_32x32.mat",
    holdout=True,
)
def svhn(root: Path, split: str = "test", download: bool = False, **kwargs) -> ImageTensors:
    from scipy.io import loadmat

    check_split("svhn", split, SPLITS)
    if download:
        import torchvision.datasets

        try:
            torchvision.datasets.SVHN(str(root), split=split, download=True)
        except Exception as error:
            raise download_failed("SVHN", root, error) from None
    require_root("svhn", root, f"{split}_32x32.mat")
    path = root / f"{split}_32x32.mat"
    if not path.is_file():
        raise missing_files("svhn", path.name, [root], "pass --download to fetch it")
    try:
        arrays = loadmat(str(path))
        images, labels = arrays["X"], arrays["y"]
    except Exception as error:  # scipy's parser fails on damaged bytes in many ways (IndexError, TypeError, ...)
        raise InputError(
            f"cannot read SVHN file {str(path)!r} (expected arrays X [32,32,3,N] and y [N,1]): {first_line(error)}"
        ) from None
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3):
        raise InputError(f"SVHN file {str(path)!r}: X has shape {images.shape}, expected (32, 32, 3, N)")
    if labels.size != images.shape[3]:
        raise InputError(f"SVHN file {str(path)!r}: y holds {labels.size} labels for {images.shape[3]} images in X")
    pixels = torch.from_numpy(np.ascontiguousarray(images.transpose(3, 2, 0, 1)).astype(np.uint8))
    digits = torch.from_numpy(labels.reshape(-1).astype(np.int64) % 10)
    return ImageTensors(pixels, digits, [str(d) for d in range(10)])
