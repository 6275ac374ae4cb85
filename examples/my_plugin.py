"""The plugin of the README's walk-through: a tiny MLP for the embedded 8x8 digits, used by every
command with ``--plugin examples/my_plugin.py`` (train, scan, retrain; mask loads what the scan loaded)."""

from torch import nn

import fragscan


@fragscan.register_model("tinymlp", input_size=(1, 8, 8), num_classes=10)
def tinymlp(num_classes: int = 10, in_chans: int = 1, **kwargs) -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * 8 * 8, 32), nn.ReLU(), nn.Linear(32, num_classes))
