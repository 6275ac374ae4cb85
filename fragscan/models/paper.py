"""The paper's architectures (torchvision's definitions), adapted to the data's classes and channels.

``stem="imagenet"`` keeps torchvision's first layers (stride-2 conv and max-pool); ``stem="cifar"``
is the usual small-image variant: a stride-1 3x3 first conv and no early max-pool [ours, recorded
as ``--stem``]. Parameter names stay torchvision's, so its state dicts fit the imagenet stem.
Also ``small-cnn``: a few-layer CNN for any input size, quick to train in tests and examples.
"""

from __future__ import annotations

from torch import nn

from ..config import Stem
from ._registry import register_model


def _conv_like(conv: nn.Conv2d, in_chans: int, *, small: bool) -> nn.Conv2d:
    """``conv`` with ``in_chans`` inputs; ``small`` makes it a stride-1 3x3 conv (the cifar stem)."""
    kernel, stride, padding = (3, 1, 1) if small else (conv.kernel_size, conv.stride, conv.padding)
    return nn.Conv2d(in_chans, conv.out_channels, kernel, stride, padding, bias=conv.bias is not None)


@register_model("resnet18", stems=True)
def resnet18(num_classes: int, in_chans: int = 3, stem: Stem = "imagenet") -> nn.Module:
    from torchvision.models import resnet18 as build

    return _resnet(build(num_classes=num_classes), in_chans, stem)


@register_model("resnet50", stems=True)
def resnet50(num_classes: int, in_chans: int = 3, stem: Stem = "imagenet") -> nn.Module:
    from torchvision.models import resnet50 as build

    return _resnet(build(num_classes=num_classes), in_chans, stem)


def _resnet(net: nn.Module, in_chans: int, stem: Stem) -> nn.Module:
    if in_chans != 3 or stem == "cifar":
        net.conv1 = _conv_like(net.conv1, in_chans, small=stem == "cifar")
    if stem == "cifar":
        net.maxpool = nn.Identity()
    return net


@register_model("squeezenet1_1", stems=True)
def squeezenet1_1(num_classes: int, in_chans: int = 3, stem: Stem = "imagenet") -> nn.Module:
    from torchvision.models import squeezenet1_1 as build

    net = build(num_classes=num_classes)
    if in_chans != 3 or stem == "cifar":
        net.features[0] = _conv_like(net.features[0], in_chans, small=stem == "cifar")
    return net


@register_model("shufflenet_v2_x1_0", stems=True)
def shufflenet_v2_x1_0(num_classes: int, in_chans: int = 3, stem: Stem = "imagenet") -> nn.Module:
    from torchvision.models import shufflenet_v2_x1_0 as build

    net = build(num_classes=num_classes)
    if in_chans != 3 or stem == "cifar":
        net.conv1[0] = _conv_like(net.conv1[0], in_chans, small=stem == "cifar")
    if stem == "cifar":
        net.maxpool = nn.Identity()
    return net


class SmallCNN(nn.Module):
    """Three convs and two linears; adaptive pooling makes it fit any image size of at least 2x2."""

    def __init__(self, num_classes: int, in_chans: int = 1):
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
            nn.AdaptiveAvgPool2d(4),
        )
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(32 * 4 * 4, 64), nn.ReLU(), nn.Linear(64, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


@register_model("small-cnn")
def small_cnn(num_classes: int, in_chans: int = 1) -> nn.Module:
    return SmallCNN(num_classes=num_classes, in_chans=in_chans)
