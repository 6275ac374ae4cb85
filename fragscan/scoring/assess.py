"""One sweep's curve -> accuracies, scores, intervals and classes (pure): what the report states
about a (group, filter), and what an adaptive sweep's stopping rule looks at (method §4, §5, §5b).

Scores are paired with the unfiltered network on the curve's own samples: a curve over the first
n samples of the seeded order (:func:`fragscan.data.sample_order`) is scored against the
unfiltered network's bits on those n, with the bootstrap a scan of n samples would draw.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import SCORES, ScoringPart
from ..report.model import Class
from ..sweep.engine import Curve, Measurement
from .classify import classify
from .confidence import LEVEL, Bootstrap, ScoreIntervals
from .scores import FilteringScores, filtering_scores


@dataclass(frozen=True)
class Reference:
    """The unfiltered network on some samples: its accuracies and the paired bootstrap over them."""

    clean0: float
    adversarial0: float
    bootstrap: Bootstrap | None


class References:
    """The unfiltered network's reference on each prefix of the seeded sample order.

    ``ranks`` holds each evaluated sample's place in that order (:func:`fragscan.data.sample_ranks`);
    the prefix of n is the samples of rank < n, in evaluation order, which is the order a scan of
    n samples evaluates them in. A scan without adaptive sampling only asks for all of them.
    """

    def __init__(self, unfiltered: Measurement, ranks: torch.Tensor, resamples: int, seed: int):
        self.unfiltered = tuple(correct.cpu() for correct in unfiltered)
        self.ranks = ranks.cpu()
        self.resamples, self.seed = resamples, seed
        self._cache: dict[int, Reference] = {}

    def columns(self, samples: int) -> torch.Tensor:
        """Positions of the first ``samples`` of the order among the evaluated samples, ascending."""
        return (self.ranks < samples).nonzero().squeeze(1)

    def at(self, samples: int) -> Reference:
        if samples not in self._cache:
            clean, adversarial = (correct[self.columns(samples)] for correct in self.unfiltered)
            self._cache[samples] = Reference(
                clean.double().mean().item(),
                adversarial.double().mean().item(),
                Bootstrap(clean, adversarial, self.resamples, self.seed) if self.resamples else None,
            )
        return self._cache[samples]


@dataclass(frozen=True)
class Assessment:
    clean: list[float]  # accuracy per threshold
    adversarial: list[float]
    scores: FilteringScores
    intervals: ScoreIntervals | None
    classes: dict[str, Class]  # per score


def assess(curve: Curve, reference: Reference, scoring: ScoringPart, level: float = LEVEL) -> Assessment:
    """The curve's accuracies and scores, their intervals at ``level`` and the classes under
    ``scoring.classify``."""
    samples = curve.clean.shape[1]
    clean = (curve.clean.sum(1).double() / samples).tolist()
    adversarial = (curve.adversarial.sum(1).double() / samples).tolist()
    present = [1.0 - r / curve.numel for r in curve.removed] if scoring.baseline == "density" else None
    scores = filtering_scores(
        clean,
        adversarial,
        curve.positions,
        reference.clean0,
        reference.adversarial0,
        present=present,
        normalise_by=scoring.normalise_by,
    )
    intervals = (
        None
        if reference.bootstrap is None
        else reference.bootstrap.intervals(
            curve.clean, curve.adversarial, curve.positions, present=present, normalise_by=scoring.normalise_by,
            level=level, point=[getattr(scores, score) for score in SCORES],
        )
    )
    perturbed = any(curve.changed)
    classes = {
        score: classify(
            getattr(scores, score),
            scoring.tau,
            perturbed=perturbed,
            interval=None if intervals is None else getattr(intervals, score),
            rule=scoring.classify,
        )
        for score in SCORES
    }
    return Assessment(clean, adversarial, scores, intervals, classes)


def budget_references(clean0: torch.Tensor, worst0: torch.Tensor, ranks, scoring: ScoringPart) -> list[References]:
    """The unfiltered network's reference at each budget (worst0: [samples, budgets]); one bootstrap
    seed, so every budget's resamples draw the same samples (paired across budgets too)."""
    return [References((clean0, worst0[:, i]), ranks, scoring.bootstrap, scoring.seed) for i in range(worst0.shape[1])]
