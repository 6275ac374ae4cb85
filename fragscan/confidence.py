"""Score confidence (method §5): a paired bootstrap over evaluation samples.

Every curve and the unfiltered baseline were measured on the same samples, so one resample of
sample indices is applied to all of them at once (paired): each resample recomputes every
accuracy from the stored per-sample correctness, then every score. Nothing is re-evaluated.

Per-sample correctness travels in the report as packed bits (``pack_bits``): base64 of
``numpy.packbits`` over the row-major bool array, so a report alone can recompute intervals.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .scores import score_arrays

LEVEL = 0.95  # the spec's 95 % interval


def pack_bits(correct: torch.Tensor) -> str:
    """Bool tensor -> base64 text of its bits (row-major, most significant bit first)."""
    return base64.b64encode(np.packbits(correct.cpu().numpy().astype(bool).ravel()).tobytes()).decode("ascii")


def unpack_bits(text: str, shape: Sequence[int]) -> torch.Tensor:
    count = int(np.prod(shape))
    bits = np.unpackbits(np.frombuffer(base64.b64decode(text), dtype=np.uint8), count=count)
    return torch.from_numpy(bits.astype(bool).reshape(tuple(shape)))


Interval = tuple[float, float] | None


@dataclass(frozen=True)
class ScoreIntervals:
    clean: Interval
    adversarial: Interval
    difference: Interval


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
    ) -> ScoreIntervals:
        """Percentile intervals (``level``, 95 % by default) of the three scores of one curve
        (bool [thresholds, samples]); a family of claims passes a simultaneous ``level``."""
        scores = score_arrays(
            self._accuracy(clean),
            self._accuracy(adversarial),
            positions,
            self.clean0,
            self.adversarial0,
            present=present,
            normalise_by=normalise_by,
        )
        return ScoreIntervals(*(_percentile_interval(s, level) for s in scores))


def _percentile_interval(draws: np.ndarray, level: float) -> Interval:
    """The central ``level`` share of the resampled scores; None when the score is undefined in
    most draws (a reference accuracy of 0)."""
    defined = draws[~np.isnan(draws)]
    if defined.size < draws.size / 2:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


def family_level(members: int, looks: int = 1, level: float = LEVEL) -> float:
    """Bonferroni: the per-claim level that keeps a family of ``members`` claims, each looked at
    ``looks`` times, at ``level`` together (spec §5: summary classes over the report's groups;
    §5b: the planned looks of an adaptive scan)."""
    return 1 - (1 - level) / max(1, members * looks)
