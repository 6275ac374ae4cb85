"""Synaptic filters: each says which thresholds it sweeps and which weights it removes at one.

A filter instance is bound to one value range ``[lo, hi]`` and sweep length ``n``: the pulse width
depends on both, and global scope shares one range across all groups (method §2).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from ..base.errors import ConfigError
from ..base.limits import MIN_THRESHOLDS
from ..base.registry import Registry

FILTERS: Registry[type[SynapticFilter]] = Registry("filter")


def register_filter(cls: type[SynapticFilter]) -> type[SynapticFilter]:
    """Class decorator: make a filter available under its ``id``."""
    return FILTERS.register(cls.id, cls, label=cls.label, description=cls.description)


def create_filter(filter_id: str, lo: float, hi: float, n: int) -> SynapticFilter:
    return FILTERS.get(filter_id)(lo, hi, n)


class SynapticFilter:
    id: ClassVar[str]
    label: ClassVar[str]
    description: ClassVar[str]

    def __init__(self, lo: float, hi: float, n: int):
        if n < MIN_THRESHOLDS:
            raise ConfigError(
                f"a sweep needs at least {MIN_THRESHOLDS} thresholds, got {n}; "
                f"pass --thresholds {MIN_THRESHOLDS} or more"
            )
        if not lo <= hi:
            raise ConfigError(f"filter range needs lo <= hi, got [{lo}, {hi}]")
        self.lo, self.hi, self.n = float(lo), float(hi), int(n)

    @classmethod
    def over(cls, weight: torch.Tensor, n: int) -> SynapticFilter:
        """The filter swept over this tensor's own signed value range."""
        return cls(float(weight.min()), float(weight.max()), n)

    def positions(self) -> torch.Tensor:
        """Normalised sweep position t_i = i/(n-1), the integration variable of the scores."""
        return torch.linspace(0.0, 1.0, self.n, dtype=torch.float64)

    def thresholds(self) -> torch.Tensor:
        """The n thresholds alpha_i, in sweep order (float64)."""
        return torch.linspace(self.lo, self.hi, self.n, dtype=torch.float64)

    def removed(self, weight: torch.Tensor, alpha: float) -> torch.Tensor:
        """Boolean mask of the entries this filter sets to zero at threshold ``alpha``."""
        raise NotImplementedError


@register_filter
class StepUp(SynapticFilter):
    id = "step-up"
    label = "ideal low-pass"
    description = "rising threshold; removes every w <= alpha"

    def removed(self, weight, alpha):
        return weight <= alpha


@register_filter
class StepDown(SynapticFilter):
    id = "step-down"
    label = "ideal high-pass"
    description = "falling threshold; removes every w >= alpha"

    def thresholds(self):
        return torch.linspace(self.hi, self.lo, self.n, dtype=torch.float64)

    def removed(self, weight, alpha):
        return weight >= alpha


@register_filter
class Pulse(SynapticFilter):
    id = "pulse"
    label = "pulse wave"
    description = "removes the band alpha - s <= w < alpha + s, s = (hi - lo) / (2n)"

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / (2 * self.n)

    def removed(self, weight, alpha):
        return (weight >= alpha - self.half_width) & (weight < alpha + self.half_width)


@register_filter
class Magnitude(SynapticFilter):
    id = "magnitude"
    label = "magnitude pruning"
    description = "rising threshold on |w| from 0 to max|w|; removes every |w| <= alpha"

    def thresholds(self):
        return torch.linspace(0.0, max(abs(self.lo), abs(self.hi)), self.n, dtype=torch.float64)

    def removed(self, weight, alpha):
        return weight.abs() <= alpha


@register_filter
class RandomRemoval(SynapticFilter):
    """Control: removes a random share alpha of the entries, independent of their values.

    Each entry gets a fixed uniform key from a generator seeded by the tensor's shape, so masks
    are nested along the sweep and identical across runs.
    """

    id = "random"
    label = "random removal (control)"
    description = "removes a random share alpha in [0, 1] of the entries (nested masks)"

    def thresholds(self):
        return torch.linspace(0.0, 1.0, self.n, dtype=torch.float64)

    def removed(self, weight, alpha):
        generator = torch.Generator().manual_seed(weight.numel())
        keys = torch.rand(weight.shape, generator=generator, dtype=torch.float64).to(weight.device)
        return keys < alpha
