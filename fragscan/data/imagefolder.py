"""Any folder of class sub-folders of images (torchvision's ImageFolder): ``ROOT/SPLIT/CLASS/*.png``,
or ``ROOT/CLASS/*.png`` when ROOT has no SPLIT folder. Classes are the sorted folder names.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from . import register_dataset
from .layout import require_root


def image_folder(directory: Path, grayscale: bool = False):
    """torchvision's ImageFolder over ``directory`` giving float pixels in [0, 1] (RGB, or one channel)."""
    from torchvision import datasets, transforms

    steps = [transforms.Grayscale()] if grayscale else []
    try:
        return datasets.ImageFolder(str(directory), transform=transforms.Compose([*steps, transforms.ToTensor()]))
    except (FileNotFoundError, OSError) as error:
        raise InputError(
            f"imagefolder: {str(directory)!r} holds no CLASS/IMAGE files ({error}); expected DIR/CLASS/*.png|jpg"
        ) from None


@register_dataset("imagefolder", description="ROOT[/SPLIT]/CLASS/*.png|jpg (torchvision ImageFolder); grayscale=True for 1 channel")
def imagefolder(root: Path, split: str = "test", grayscale: bool = False, **kwargs):
    require_root("imagefolder", root, "CLASS/IMAGE folders, or SPLIT/CLASS/IMAGE")
    directory = root / split if (root / split).is_dir() else root
    return image_folder(directory, grayscale)
