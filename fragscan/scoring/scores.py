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


def integrate(values: Sequence[float] | np.ndarray, positions: Sequence[float]) -> float | np.ndarray:
    """Simpson's rule over the sweep position t in [0, 1], in sweep order (along the last axis)."""
    result = simpson(np.asarray(values, dtype=np.float64), x=np.asarray(positions, dtype=np.float64), axis=-1)
    return float(result) if np.ndim(result) == 0 else result


def _relative(curve: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``curve / reference`` per row; NaN where the reference accuracy is 0 (score undefined)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(reference[..., None] == 0, np.nan, curve / np.where(reference == 0, 1, reference)[..., None])


def score_arrays(
    clean: np.ndarray,
    adversarial: np.ndarray,
    positions: Sequence[float],
    clean0: float | np.ndarray,
    adversarial0: float | np.ndarray,
    *,
    present: Sequence[float] | None = None,
    normalise_by: str = "unfiltered",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three scores for curves of shape ``[..., thresholds]`` against references of shape ``[...]``.

    The bootstrap passes one row per resample; an undefined score is NaN.
    """
    clean = np.asarray(clean, dtype=np.float64)
    adversarial = np.asarray(adversarial, dtype=np.float64)
    if normalise_by == "first":
        clean0, adversarial0 = clean[..., 0], adversarial[..., 0]
    clean0 = np.asarray(clean0, dtype=np.float64)
    adversarial0 = np.asarray(adversarial0, dtype=np.float64)
    baseline = np.ones(clean.shape[-1]) if present is None else np.asarray(present, dtype=np.float64)
    relative_clean = _relative(clean, clean0)
    relative_adversarial = _relative(adversarial, adversarial0)
    return (
        np.asarray(integrate(relative_clean - baseline, positions)),
        np.asarray(integrate(relative_adversarial - baseline, positions)),
        np.asarray(integrate(relative_adversarial - relative_clean, positions)),
    )


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
    scores = score_arrays(
        clean, adversarial, positions, clean0, adversarial0, present=present, normalise_by=normalise_by
    )
    clean_score, adversarial_score, difference = (None if np.isnan(s) else float(s) for s in scores)
    return FilteringScores(clean=clean_score, adversarial=adversarial_score, difference=difference)
