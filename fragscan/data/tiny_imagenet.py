"""Tiny ImageNet (200 classes, 64x64): ``train/WNID/images/*.JPEG`` and ``val/images/*.JPEG`` labelled by
``val/val_annotations.txt``, whose class ids map through train's class order (sorted WNIDs).
The labelled ``val/`` folder serves as fragscan's ``test`` split (the distribution's own test/ has no
labels); fragscan's ``val`` is held out of ``train/`` like every adapter's (``fragscan.data``).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

from ..base.errors import InputError
from ._registry import register_dataset
from .imagefolder import image_folder, read_rgb
from .layout import check_split, missing_files, require_root


class _Annotated(Dataset):
    """Images listed by file name with their train class index."""

    def __init__(self, files: list[Path], labels: list[int], classes: list[str]):
        self.files, self.targets, self.classes = files, labels, classes

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from torchvision.transforms.functional import to_tensor

        return to_tensor(read_rgb(self.files[index])), self.targets[index]


def _classes(root: Path) -> list[str]:
    train = root / "train"
    if not train.is_dir():
        raise missing_files("tiny-imagenet", "train/ (its WNID folders define the class order)", [root])
    return sorted(p.name for p in train.iterdir() if p.is_dir())


@register_dataset(
    "tiny-imagenet",
    num_classes=200,
    input_size=(3, 64, 64),
    mean=(0.4802, 0.4481, 0.3975),
    std=(0.2770, 0.2691, 0.2821),
    description="Tiny ImageNet: train/WNID/images/*; test: its labelled val/images/* + val/val_annotations.txt",
    holdout=True,
)
def tiny_imagenet(root: Path, split: str = "test", **kwargs) -> Dataset:
    check_split("tiny-imagenet", split, ("train", "test"))
    require_root("tiny-imagenet", root, "train/ and val/")
    classes = _classes(root)
    if split == "train":
        return image_folder(root / "train")
    annotations = root / "val" / "val_annotations.txt"
    if not annotations.is_file():
        raise missing_files("tiny-imagenet", "val/val_annotations.txt", [root / "val"])
    index = {wnid: i for i, wnid in enumerate(classes)}
    files, labels = [], []
    for number, line in enumerate(annotations.read_text().splitlines(), 1):
        fields = line.split("\t")
        if len(fields) < 2 or fields[1] not in index:
            raise InputError(f"{str(annotations)!r} line {number}: expected 'FILE<TAB>WNID...' with a WNID from train/")
        files.append(root / "val" / "images" / fields[0])
        labels.append(index[fields[1]])
    missing = next((f for f in files if not f.is_file()), None)
    if missing is not None:
        raise InputError(f"tiny-imagenet: {str(missing)!r} is listed in val_annotations.txt but missing")
    return _Annotated(files, labels, classes)
