"""Training with the source's defaults: Adam, lr 1e-3, batch 100, cross-entropy."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 10
    lr: float = 1e-3
    batch_size: int = 100
    weight_decay: float = 0.0
    seed: int = 0


def accuracy(model: nn.Module, dataset: Dataset, batch_size: int = 256, device: str | torch.device = "cpu") -> float:
    model.eval()
    correct = total = 0
    with torch.inference_mode():
        for images, labels in DataLoader(dataset, batch_size=batch_size):
            correct += int((model(images.to(device)).argmax(1) == labels.to(device)).sum())
            total += len(labels)
    return correct / total


def train(
    model: nn.Module,
    dataset: Dataset,
    settings: TrainSettings = TrainSettings(),
    *,
    device: str | torch.device = "cpu",
    on_epoch: Callable[[int, float], None] | None = None,
) -> nn.Module:
    """Train ``model`` (taking pixels in [0,1]) in place; ``on_epoch(epoch, mean_loss)`` after each epoch."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(dataset, batch_size=settings.batch_size, shuffle=True, generator=generator)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    model.to(device)
    for epoch in range(1, settings.epochs + 1):
        model.train()
        total = 0.0
        for images, labels in loader:
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(images.to(device)), labels.to(device))
            loss.backward()
            optimizer.step()
            total += loss.item() * len(labels)
        if on_epoch is not None:
            on_epoch(epoch, total / len(dataset))
    return model.eval()
