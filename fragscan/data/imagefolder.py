"""Any folder of class sub-folders of images (torchvision's ImageFolder): ``ROOT/SPLIT/CLASS/*.png``,
or ``ROOT/CLASS/*.png`` when ROOT has no SPLIT folder. Classes are the sorted folder names.

With ``ROOT/train`` and no ``ROOT/val``, fragscan holds ``val`` out of ``train`` (``fragscan.data``);
a ``ROOT/val`` folder of the user's own is used as it is. A flat ``ROOT/CLASS`` folder is one split
of unknown origin, so it offers no ``val``.
"""

from __future__ import annotations

from pathlib import Path

from ..base.errors import ConfigError, InputError
from ._registry import register_dataset
from .layout import own_train_without_val, require_root


def read_rgb(path: str | Path):
    """The image at ``path`` as RGB (grayscale and RGBA converted, as torchvision's loader does), or
    an InputError naming the file that is not an image."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as error:  # PIL's UnidentifiedImageError is an OSError
        raise InputError(f"cannot read image {str(path)!r}: {error}; remove or replace the file") from None


def image_folder(directory: Path, grayscale: bool = False):
    """torchvision's ImageFolder over ``directory`` giving float pixels in [0, 1] (RGB, or one channel)."""
    from torchvision import datasets, transforms

    steps = [transforms.Grayscale()] if grayscale else []
    try:
        return datasets.ImageFolder(
            str(directory), transform=transforms.Compose([*steps, transforms.ToTensor()]), loader=read_rgb
        )
    except (FileNotFoundError, OSError) as error:  # no class folder, or a class folder without an image
        raise InputError(
            f"imagefolder: cannot use {str(directory)!r}: {error}; expected DIR/CLASS/*.png|jpg with an image in every "
            "CLASS folder"
        ) from None


@register_dataset(
    "imagefolder",
    description="ROOT[/SPLIT]/CLASS/*.png|jpg (torchvision ImageFolder); grayscale=True for 1 channel",
    holdout=lambda root: own_train_without_val(root, "train", "val"),
)
def imagefolder(root: Path, split: str = "test", grayscale: bool = False, **kwargs):
    require_root("imagefolder", root, "CLASS/IMAGE folders, or SPLIT/CLASS/IMAGE")
    if (root / split).is_dir():
        return image_folder(root / split, grayscale)
    splits = (
        sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.lower() in _SPLIT_NAMES) if root.is_dir() else []
    )
    if splits:  # read as CLASS folders, the other splits would become the classes
        raise ConfigError(
            f"imagefolder: {str(root)!r} has no {split!r} folder but has split folders {', '.join(splits)}; "
            f"pass --split {'|'.join(splits)}"
        )
    if split == "val":  # the flat folder may be the very samples a retraining is judged on
        raise ConfigError(
            f"imagefolder: {str(root)!r} holds CLASS folders, no train/ to hold a 'val' split out of; "
            "arrange ROOT/train/CLASS and ROOT/test/CLASS"
        )
    return image_folder(root, grayscale)


# Folder names that mark ROOT/SPLIT/CLASS rather than ROOT/CLASS.
_SPLIT_NAMES = {"train", "test", "val", "valid", "validation", "extra"}
