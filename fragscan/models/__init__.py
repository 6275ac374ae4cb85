"""Model registry: ``register_model`` / ``create_model`` / ``list_models`` (timm's three verbs).

Every model fragscan analyses is a :class:`Normalized` wrapper: it takes pixels in [0, 1] and does
its own normalisation, so attacks perturb pixels and clip to the valid range.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..registry import Registry
from .weights import load_state_dict, apply_state_dict


@dataclass(frozen=True)
class ModelSpec:
    """What the pipeline needs to know about a model's input, like timm's ``pretrained_cfg``."""

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    default_weights: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Normalized(nn.Module):
    """Pixels in [0, 1] -> logits. ``net`` is the user's network; its parameter names are kept."""

    def __init__(self, net: nn.Module, spec: ModelSpec):
        super().__init__()
        if len(spec.mean) != spec.input_size[0] or len(spec.std) != spec.input_size[0]:
            raise ConfigError(f"mean/std need one value per input channel ({spec.input_size[0]})")
        self.net = net
        self.spec = spec
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, -1, 1, 1), persistent=False)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.net((pixels - self.mean) / self.std)


MODELS: Registry[Callable[..., nn.Module]] = Registry("model")


def register_model(
    name: str,
    *,
    input_size: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    num_classes: int,
    default_weights: str | None = None,
    source: str = "builtin",
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator: register a factory ``(num_classes=K, **kw) -> nn.Module`` taking normalised input."""
    spec = ModelSpec(tuple(input_size), tuple(mean), tuple(std), int(num_classes), default_weights)

    def wrap(factory):
        return MODELS.register(name, factory, spec=spec, source=source)

    return wrap


def list_models(pattern: str = "*") -> list[str]:
    return MODELS.list(pattern)


def model_spec(name: str) -> ModelSpec:
    return MODELS.entry(name).meta["spec"]


def create_model(name: str, *, weights: str | Path | None = None, **kwargs: Any) -> Normalized:
    """Build a registered model, load weights (``weights`` or the spec's default) and wrap it."""
    entry = MODELS.entry(name)
    spec: ModelSpec = entry.meta["spec"]
    net = entry.obj(num_classes=spec.num_classes, **kwargs)
    weights = weights if weights is not None else spec.default_weights
    if weights is not None:
        apply_state_dict(net, load_state_dict(weights), source=str(weights))
    return Normalized(net, spec).eval()


# Built-in architectures register themselves on import.
from . import digits  # noqa: E402,F401
