"""A worked plugin: LeNet-5 for 28x28 grayscale images (MNIST, Fashion-MNIST, KMNIST).

fragscan loads every ``*.py`` in the project's ``plugins/`` folder before it resolves names, so
``fragscan scan lenet5 fashion-mnist --data-root DIR --weights lenet5.safetensors`` works as is.
The factory returns a network that takes *normalised* input; fragscan wraps it so attacks see
pixels in [0, 1] and subtracts ``mean`` / divides by ``std`` itself.
"""

from torch import nn

import fragscan


@fragscan.register_model("lenet5", input_size=(1, 28, 28), mean=(0.2860,), std=(0.3530,), num_classes=10)
def lenet5(num_classes: int = 10, in_chans: int = 1, **kwargs) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_chans, 6, 5, padding=2),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.Tanh(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.Tanh(),
        nn.Linear(120, 84),
        nn.Tanh(),
        nn.Linear(84, num_classes),
    )
