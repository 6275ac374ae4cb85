"""Score confidence (method §5): a paired bootstrap over evaluation samples.

Every curve and the unfiltered network were measured on the same samples, so one resample of
sample indices is applied to all of them at once (paired): each resample recomputes every
accuracy from the stored per-sample correctness, then every score. Nothing is re-evaluated.

Each interval is the percentile interval of the resampled scores where each tail holds at least
``MIN_TAIL_RESAMPLES`` resamples. A simultaneous level (1 − 0.05/G over a report's G groups) at 1000
resamples leaves about half a resample in a tail: the "interval" would be the most extreme draws,
its coverage not the level's and its ends jumping from seed to seed. There the interval is the
normal bootstrap interval instead: the score on all samples ± z · the resamples' standard deviation,
z the standard normal quantile of the level (:func:`interval_method` says which a level gets).

No interval is narrower than the data can support (method §5c). With binary outcomes and few
samples every resample can coincide (three samples, all correct under every network) and the
bootstrap's interval has zero width, which the evidence rule would read as proof. A paired score
moves only through samples on which the filtered and the unfiltered network disagree; when none
of n samples disagreed, the share that would in the population is still up to the exact
(Clopper-Pearson) bound 1 − ((1 − level)/2)^(1/n), and the score up to that share over its
reference accuracy (:func:`width_floor`). Every interval's half-width is at least that floor, and
below ``MIN_INTERVAL_SAMPLES`` samples (too few distinct resamples to estimate a spread) there is no
interval at all, so no class is decided.

Per-sample correctness travels in the report as packed bits (``pack_bits``): base64 of
``numpy.packbits`` over the row-major bool array, so a report alone can recompute intervals.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from scipy.stats import norm

from ..base.limits import MIN_INTERVAL_SAMPLES
from ..report.model import Interval
from .scores import score_arrays

LEVEL = 0.95  # the spec's 95 % interval
# A percentile interval's end is the resampled score with k of the draws beyond it; how many draws
# fall beyond the true quantile varies by about √k from seed to seed (±20 % at 25, ±70 % at 2).
# 25 is what a plain 95 % interval has at the default 1000 resamples (Efron and Tibshirani, 1993,
# ask for about 1000 resamples for a 90-95 % percentile interval: 25-50 per tail), so per-filter
# intervals stay percentile ones; below it the tail is too few draws to place a quantile, and the
# normal interval is used instead.
MIN_TAIL_RESAMPLES = 25

Method = Literal["percentile", "normal"]


def pack_bits(correct: torch.Tensor) -> str:
    """Bool tensor -> base64 text of its bits (row-major, most significant bit first)."""
    return base64.b64encode(np.packbits(correct.cpu().numpy().astype(bool).ravel()).tobytes()).decode("ascii")


def unpack_bits(text: str, shape: Sequence[int]) -> torch.Tensor:
    count = int(np.prod(shape))
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8), count=count)
    return torch.from_numpy(bits.astype(bool).reshape(tuple(shape)))


@dataclass(frozen=True)
class ScoreIntervals:
    clean: Interval | None
    adversarial: Interval | None
    difference: Interval | None


class Bootstrap:
    """``resamples`` draws of the sample indices with replacement, shared by every curve (paired).

    Each draw is held as per-sample counts, so a resampled accuracy is one matrix product.
    """

    def __init__(self, unfiltered_clean: torch.Tensor, unfiltered_adversarial: torch.Tensor, resamples: int, seed: int):
        samples = unfiltered_clean.numel()
        generator = torch.Generator().manual_seed(seed)
        draws = torch.randint(samples, (resamples, samples), generator=generator)
        counts = torch.zeros(resamples, samples).scatter_add_(1, draws, torch.ones(resamples, samples))
        # float32 counts are exact and halve the one costly step, the matrix product below.
        self._weights = counts.T.contiguous()  # [samples, resamples]
        self._samples = samples
        self._resamples = resamples
        # The unfiltered accuracies on all samples: the point scores' reference.
        self.reference = tuple(c.double().mean().item() for c in (unfiltered_clean, unfiltered_adversarial))
        self.clean0 = self._accuracy(unfiltered_clean)
        self.adversarial0 = self._accuracy(unfiltered_adversarial)

    def _accuracy(self, correct: torch.Tensor) -> np.ndarray:
        """Bool [..., samples] -> resampled accuracy [resamples, ...]."""
        resampled = correct.to(torch.float32) @ self._weights  # [..., resamples] correct counts
        return resampled.movedim(-1, 0).numpy().astype(np.float64) / self._samples

    def intervals(
        self,
        clean: torch.Tensor,
        adversarial: torch.Tensor,
        positions: Sequence[float],
        *,
        present: Sequence[float] | None = None,
        normalise_by: str = "unfiltered",
        level: float = LEVEL,
        point: Sequence[float | None] | None = None,
    ) -> ScoreIntervals:
        """Intervals (``level``, 95 % by default) of the three scores (clean, adversarial,
        difference) of one curve (bool [thresholds, samples]); a family of claims passes a
        simultaneous ``level``. Where :func:`interval_method` says ``normal``, each is centred on
        ``point``, the curve's scores on all samples as the report gives them (computed here from
        the curve when not given)."""
        draws = score_arrays(
            self._accuracy(clean),
            self._accuracy(adversarial),
            positions,
            self.clean0,
            self.adversarial0,
            present=present,
            normalise_by=normalise_by,
        )
        if self._samples < MIN_INTERVAL_SAMPLES:
            return ScoreIntervals(None, None, None)
        method = interval_method(level, self._resamples)
        if method == "percentile":
            intervals = [_percentile_interval(d, level) for d in draws]
        else:
            if point is None:
                point = _point_scores(clean, adversarial, positions, self.reference, present, normalise_by)
            intervals = [_normal_interval(d, p, level) for d, p in zip(draws, point)]
        accuracies = reference_accuracies(clean, adversarial, self.reference, normalise_by)
        floors = width_floor(self._samples, level, *accuracies)
        return ScoreIntervals(*(_widened(i, f) for i, f in zip(intervals, floors)))


def floor_share(samples: int, level: float) -> float:
    """The exact (Clopper-Pearson) upper ``level`` bound on the share of samples on which two
    networks disagree, when none of ``samples`` did."""
    return 1 - ((1 - level) / 2) ** (1 / samples)


def width_floor(samples: int, level: float, clean0: float, adversarial0: float) -> tuple[float, float, float]:
    """The smallest half-width the (clean, adversarial, difference) scores' ``level`` intervals may
    have at ``samples``, given the reference accuracies the scores divide by: :func:`floor_share`
    over that reference (the difference score moves with both). Infinite where a reference
    accuracy is 0 (the score is undefined there anyway)."""
    share = floor_share(samples, level)
    clean, adversarial = (share / r if r > 0 else math.inf for r in (clean0, adversarial0))
    return clean, adversarial, clean + adversarial


def reference_accuracies(
    clean: torch.Tensor, adversarial: torch.Tensor, unfiltered: tuple[float, float], normalise_by: str
) -> tuple[float, float]:
    """The (clean, adversarial) accuracies a curve's scores divide by: the ``unfiltered`` network's,
    or the curve's at its first threshold (``normalise_by='first'``)."""
    if normalise_by == "unfiltered":
        return unfiltered
    return tuple(c[0].double().mean().item() for c in (clean, adversarial))


def _widened(interval: Interval | None, floor: float) -> Interval | None:
    """``interval`` widened about its centre to a half-width of at least ``floor``."""
    if interval is None:
        return None
    low, high = interval
    extra = max(0.0, floor - (high - low) / 2)
    return low - extra, high + extra


def interval_method(level: float, resamples: int) -> Method:
    """``percentile`` where each tail of a ``level`` interval holds at least ``MIN_TAIL_RESAMPLES``
    of ``resamples`` draws, else ``normal`` (too few draws in the tail to place a percentile)."""
    tail = (1 - level) / 2 * resamples
    return "percentile" if tail >= MIN_TAIL_RESAMPLES - 1e-9 else "normal"


def _defined(draws: np.ndarray) -> np.ndarray | None:
    """The draws where the score is defined; None when it is undefined (a reference accuracy of 0)
    in most of them: no interval."""
    defined = draws[~np.isnan(draws)]
    return None if defined.size < draws.size / 2 else defined


def _percentile_interval(draws: np.ndarray, level: float) -> Interval | None:
    """The central ``level`` share of the resampled scores; None when the score is undefined in
    most draws."""
    defined = _defined(draws)
    if defined is None:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


def _normal_interval(draws: np.ndarray, point: float | None, level: float) -> Interval | None:
    """``point`` ± z · the standard deviation of the resampled scores (the bootstrap standard
    error), z the normal quantile of ``level``; None when the score is undefined in most draws or
    on all samples (nothing to centre on)."""
    defined = _defined(draws)
    if defined is None or point is None or defined.size < 2:
        return None
    half = float(norm.ppf(1 - (1 - level) / 2)) * float(np.std(defined, ddof=1))
    return point - half, point + half


def _point_scores(clean, adversarial, positions, reference, present, normalise_by) -> list[float | None]:
    """The curve's three scores on all its samples, as :func:`fragscan.scoring.assess.assess` computes them."""
    accuracy = lambda correct: (correct.sum(-1).double() / correct.shape[-1]).numpy()  # noqa: E731
    scores = score_arrays(
        accuracy(clean), accuracy(adversarial), positions, *reference, present=present, normalise_by=normalise_by
    )
    return [None if np.isnan(s) else float(s) for s in scores]


def family_level(members: int, looks: int = 1, level: float = LEVEL) -> float:
    """Bonferroni: the per-claim level that keeps a family of ``members`` claims, each looked at
    ``looks`` times, at ``level`` together (spec §5: summary classes over the report's groups;
    §5b: the planned looks of an adaptive scan)."""
    return 1 - (1 - level) / max(1, members * looks)
