"""The embedded default: a small CNN for scikit-learn's 8x8 digits, with weights in the package."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ._registry import register_model
from .paper import SmallCNN

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DIGITS_CNN_WEIGHTS = WEIGHTS_DIR / "digits_cnn.safetensors"

# Pixel statistics of the digits training split (fragscan.data.digits), computed once.
DIGITS_MEAN = (0.3056,)
DIGITS_STD = (0.3761,)


@register_model(
    "digits-cnn",
    input_size=(1, 8, 8),
    mean=DIGITS_MEAN,
    std=DIGITS_STD,
    num_classes=10,
    default_weights=str(DIGITS_CNN_WEIGHTS),
)
def digits_cnn(num_classes: int = 10, in_chans: int = 1, **kwargs) -> nn.Module:
    # SmallCNN's adaptive pooling is the identity on the 4x4 maps 8x8 digits give.
    return SmallCNN(num_classes=num_classes, in_chans=in_chans)
