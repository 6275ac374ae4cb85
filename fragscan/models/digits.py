"""The embedded default: a small CNN for scikit-learn's 8x8 digits, with weights in the package."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from . import register_model

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DIGITS_CNN_WEIGHTS = WEIGHTS_DIR / "digits_cnn.safetensors"

# Pixel statistics of the digits training split (fragscan.data.digits), computed once.
DIGITS_MEAN = (0.3056,)
DIGITS_STD = (0.3761,)


class DigitsCNN(nn.Module):
    def __init__(self, num_classes: int = 10, in_chans: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1),
            nn.ReLU(),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 4 * 4, 64),
            nn.ReLU(),
            nn.Linear(64, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model(
    "digits-cnn",
    input_size=(1, 8, 8),
    mean=DIGITS_MEAN,
    std=DIGITS_STD,
    num_classes=10,
    default_weights=str(DIGITS_CNN_WEIGHTS),
)
def digits_cnn(num_classes: int = 10, in_chans: int = 1, **kwargs) -> nn.Module:
    return DigitsCNN(num_classes=num_classes, in_chans=in_chans)
