"""CIFAR-10 and CIFAR-100, from the python layout (``cifar-10-batches-py/``, ``cifar-100-python/``) or
the binary one (``cifar-10-batches-bin/``, ``cifar-100-binary/``).

The python batches are pickles; they are read with an unpickler that admits only numpy arrays and
plain containers, so a hostile file cannot run code (torchvision would unpickle them in full).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..base.errors import InputError
from ._registry import register_dataset
from .layout import ImageTensors, check_split, download_failed, missing_files, require_root

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArraysOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a CIFAR batch holds only arrays")
        return super().find_class(module, name)


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            batch = _ArraysOnly(handle, encoding="latin1").load()
    except (OSError, pickle.UnpicklingError, EOFError, ValueError) as error:
        raise InputError(f"cannot read CIFAR batch {str(path)!r}: {error}") from None
    if not isinstance(batch, dict):
        raise InputError(f"CIFAR batch {str(path)!r} holds no dict")
    return {key.decode() if isinstance(key, bytes) else key: value for key, value in batch.items()}


@dataclass(frozen=True)
class _Variant:
    """Where one CIFAR variant keeps its files in each layout, and how its labels are stored."""

    name: str
    classes: list[str]
    python_dir: str
    python_files: dict[str, list[str]]
    label_key: str
    binary_dir: str
    binary_files: dict[str, list[str]]
    label_bytes: int

    def load(self, root: Path, split: str) -> ImageTensors:
        check_split(self.name, split, ("train", "test"))
        require_root(self.name, root, f"{self.python_dir}/ or {self.binary_dir}/")
        python = root / self.python_dir if (root / self.python_dir).is_dir() else root
        if all((python / f).exists() for f in self.python_files[split]):
            return self._python(python, split)
        binary = root / self.binary_dir if (root / self.binary_dir).is_dir() else root
        if all((binary / f).exists() for f in self.binary_files[split]):
            return self._binary(binary, split)
        raise missing_files(
            self.name,
            f"{', '.join(self.python_files[split])} (python layout) or {', '.join(self.binary_files[split])} (binary)",
            [root / self.python_dir, root / self.binary_dir, root],
            "pass --download to fetch the python layout",
        )

    def _python(self, directory: Path, split: str) -> ImageTensors:
        images, labels = [], []
        for file in self.python_files[split]:
            batch = _unpickle(directory / file)
            if "data" not in batch or self.label_key not in batch:
                raise InputError(f"CIFAR batch {str(directory / file)!r} lacks 'data' or {self.label_key!r}")
            data = np.asarray(batch["data"], dtype=np.uint8)
            if data.size % 3072:
                raise InputError(
                    f"CIFAR batch {str(directory / file)!r}: 'data' holds {data.size} bytes, not rows of 3x32x32 pixels"
                )
            images.append(data.reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[self.label_key], dtype=np.int64))
        return ImageTensors(
            torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)), self.classes
        )

    def _binary(self, directory: Path, split: str) -> ImageTensors:
        record = self.label_bytes + 3072
        images, labels = [], []
        for file in self.binary_files[split]:
            raw = np.fromfile(directory / file, dtype=np.uint8)
            if raw.size % record:
                raise InputError(
                    f"CIFAR binary {str(directory / file)!r} is not a whole number of {record}-byte records"
                )
            rows = raw.reshape(-1, record)
            labels.append(rows[:, self.label_bytes - 1].astype(np.int64))  # CIFAR-100: coarse, then fine label
            images.append(rows[:, self.label_bytes :].reshape(-1, 3, 32, 32))
        return ImageTensors(
            torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)), self.classes
        )


CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR10 = _Variant(
    "cifar10",
    CIFAR10_CLASSES,
    "cifar-10-batches-py",
    {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
    "labels",
    "cifar-10-batches-bin",
    {"train": [f"data_batch_{i}.bin" for i in range(1, 6)], "test": ["test_batch.bin"]},
    1,
)
CIFAR100 = _Variant(
    "cifar100",
    [str(i) for i in range(100)],
    "cifar-100-python",
    {"train": ["train"], "test": ["test"]},
    "fine_labels",
    "cifar-100-binary",
    {"train": ["train.bin"], "test": ["test.bin"]},
    2,
)


def _download(class_name: str, root: Path, split: str) -> None:
    import torchvision.datasets

    try:
        getattr(torchvision.datasets, class_name)(str(root), train=split == "train", download=True)
    except Exception as error:
        raise download_failed(class_name, root, error) from None


@register_dataset(
    "cifar10",
    num_classes=10,
    input_size=(3, 32, 32),
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    description="CIFAR-10: cifar-10-batches-py/ (python) or cifar-10-batches-bin/",
    holdout=True,
)
def cifar10(root: Path, split: str = "test", download: bool = False, **kwargs) -> ImageTensors:
    if download:
        _download("CIFAR10", root, split)
    return CIFAR10.load(root, split)


@register_dataset(
    "cifar100",
    num_classes=100,
    input_size=(3, 32, 32),
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    description="CIFAR-100 fine labels: cifar-100-python/ or cifar-100-binary/",
    holdout=True,
)
def cifar100(root: Path, split: str = "test", download: bool = False, **kwargs) -> ImageTensors:
    if download:
        _download("CIFAR100", root, split)
    return CIFAR100.load(root, split)
