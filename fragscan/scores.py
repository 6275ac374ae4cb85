"""Filtering scores (method §4): pure functions from accuracy curves to three numbers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.integrate import simpson


@dataclass(frozen=True)
class FilteringScores:
    clean: float | None
    adversarial: float | None
    difference: float | None


def integrate(values: Sequence[float], positions: Sequence[float]) -> float:
    """Simpson's rule over the sweep position t in [0, 1], in sweep order."""
    return float(simpson(np.asarray(values, dtype=np.float64), x=np.asarray(positions, dtype=np.float64)))


def _relative(curve: np.ndarray, reference: float) -> np.ndarray | None:
    return None if reference == 0 else curve / reference


def filtering_scores(
    clean: Sequence[float],
    adversarial: Sequence[float],
    positions: Sequence[float],
    clean0: float,
    adversarial0: float,
    *,
    present: Sequence[float] | None = None,
    normalise_by: str = "unfiltered",
) -> FilteringScores:
    """S_clean = ∫(P̂c − b)dt, S_adv = ∫(P̂a − b)dt, S_diff = ∫(P̂a − P̂c)dt.

    ``present`` is the share of the tensor still present at each position (baseline ``density``);
    ``None`` means b = 1. A score whose reference accuracy is 0 is undefined (``None``).
    """
    clean = np.asarray(clean, dtype=np.float64)
    adversarial = np.asarray(adversarial, dtype=np.float64)
    if normalise_by == "first":
        clean0, adversarial0 = float(clean[0]), float(adversarial[0])
    baseline = np.ones_like(clean) if present is None else np.asarray(present, dtype=np.float64)
    relative_clean = _relative(clean, clean0)
    relative_adversarial = _relative(adversarial, adversarial0)
    return FilteringScores(
        clean=None if relative_clean is None else integrate(relative_clean - baseline, positions),
        adversarial=None if relative_adversarial is None else integrate(relative_adversarial - baseline, positions),
        difference=None
        if relative_clean is None or relative_adversarial is None
        else integrate(relative_adversarial - relative_clean, positions),
    )
