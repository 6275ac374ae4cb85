"""MNIST, Fashion-MNIST and KMNIST from their four IDX files, in any of the layouts they ship in.

A directory holding the files directly (Debian's ``dataset-fashion-mnist`` puts them in
``/usr/share/datasets/fashion-mnist``), its ``raw/`` folder, or torchvision's ``<Name>/raw/``;
each file gzipped or not, named ``train-images-idx3-ubyte`` or ``train-images.idx3-ubyte``.
The files are read here rather than by torchvision's classes, whose md5 check rejects
recompressed copies such as Debian's.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from math import prod
from pathlib import Path

import torch

from ..base.errors import InputError
from ._registry import register_dataset
from .layout import ImageTensors, check_split, download_failed, first_existing, missing_files, require_root

_PREFIX = {"train": "train", "test": "t10k"}
_KINDS = {"images": "idx3", "labels": "idx1"}

FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
KMNIST_CLASSES = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]


def read_idx(path: Path) -> torch.Tensor:
    """An IDX file of unsigned bytes (the only type these datasets use) as a uint8 tensor."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            data = handle.read()
    except (OSError, EOFError, zlib.error) as error:  # zlib.error: a corrupt gzip stream
        raise InputError(f"cannot read IDX file {str(path)!r}: {error}") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] != 0x08:
        raise InputError(f"{str(path)!r} is not an IDX file of unsigned bytes (bad magic number)")
    ndim = data[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) - header != prod(shape):
        raise InputError(f"IDX file {str(path)!r} is truncated: header says {shape}, found {len(data) - header} bytes")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).reshape(shape)


def _file_names(split: str, kind: str) -> list[str]:
    stem, idx = f"{_PREFIX[split]}-{kind}", _KINDS[kind]
    return [f"{stem}{sep}{idx}-ubyte{gz}" for sep in ("-", ".") for gz in ("", ".gz")]


def _places(root: Path, torchvision_name: str) -> list[Path]:
    return [root, root / "raw", root / torchvision_name / "raw"]


def load_idx_split(name: str, torchvision_name: str, root: Path, split: str, classes: list[str]) -> ImageTensors:
    check_split(name, split, _PREFIX)
    require_root(name, root, "the four IDX files (train-images-idx3-ubyte[.gz], ...)")
    places = _places(root, torchvision_name)
    arrays = {}
    for kind in _KINDS:
        names = _file_names(split, kind)
        found = first_existing(place / file for place in places for file in names)
        if found is None:
            raise missing_files(name, f"{names[0]}[.gz] (or {names[2]})", places, "pass --download to fetch it")
        arrays[kind] = read_idx(found)
    images, labels = arrays["images"], arrays["labels"]
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise InputError(f"{name}: images {tuple(images.shape)} and labels {tuple(labels.shape)} do not pair up")
    return ImageTensors(images.unsqueeze(1), labels, classes)


def _download(torchvision_class: str, root: Path, split: str) -> None:
    import torchvision.datasets

    try:
        getattr(torchvision.datasets, torchvision_class)(str(root), train=split == "train", download=True)
    except Exception as error:  # network or checksum: one line
        raise download_failed(torchvision_class, root, error) from None


def _adapter(name: str, torchvision_name: str, classes: list[str], mean: float, std: float, description: str):
    @register_dataset(
        name, num_classes=10, input_size=(1, 28, 28), mean=(mean,), std=(std,), description=description, holdout=True
    )
    def factory(root: Path, split: str = "test", download: bool = False, **kwargs) -> ImageTensors:
        if download:
            _download(torchvision_name, root, split)
        return load_idx_split(name, torchvision_name, root, split, classes)

    return factory


mnist = _adapter(
    "mnist", "MNIST", [str(d) for d in range(10)], 0.1307, 0.3081, "MNIST digits, four IDX files (.gz or not)"
)
fashion_mnist = _adapter(
    "fashion-mnist", "FashionMNIST", FASHION_CLASSES, 0.2860, 0.3530,
    "Fashion-MNIST, four IDX files; Debian: /usr/share/datasets/fashion-mnist",
)
kmnist = _adapter("kmnist", "KMNIST", KMNIST_CLASSES, 0.1918, 0.3483, "Kuzushiji-MNIST, four IDX files (.gz or not)")
