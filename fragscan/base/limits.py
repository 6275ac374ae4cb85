"""The bounds of every number fragscan takes: command options, policy fields and what a report or
dataset file carries. One place, so a non-finite or absurd value is refused by construction, on
one line naming the option, before anything is built or written. ``docs/limits.md`` lists them.

Upper bounds are far above any useful value; they exist so that a typo (``--thresholds 1e12``)
fails at once instead of as an 8 TB allocation, an integer overflow or a week-long run.
"""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import AfterValidator, Field, Strict, ValidationInfo

# Simpson's rule needs 3 points: the one lower bound on a sweep's length, for the config and for a filter
# built directly.
MIN_THRESHOLDS = 3
MAX_THRESHOLDS = 1000  # a 1000-point curve resolves value bands far finer than any sample size can tell apart
MAX_BOOTSTRAP = 10_000  # percentile intervals settle long before; memory is resamples x samples x 12 bytes
MAX_SEED = 2**63 - 1  # the widest seed torch's generators and numpy's take alike
MAX_CLASSES = 100_000  # ImageNet-21k has 21,841; a larger label is a corrupt file, and K sizes the classifier
MAX_EPOCHS = 100_000
MAX_BATCH_SIZE = 1 << 20
# Filtered variants evaluated in one pass: a sweep has at most filters x thresholds of them per group,
# and past a few dozen even a large GPU is saturated; each holds its own suffix activations.
MAX_VARIANT_BATCH = 256
MAX_REPEATS = 1000  # runs per retraining arm; each is a full fine-tuning
MAX_LR = 10.0  # Adam steps of 10 already diverge; training stops on a non-finite loss anyway
MAX_DEPTH_BINS = 1000  # compare --by role: more bins than any network has layers put each group in its own
MAX_SPLIT_SAMPLES = 2**31 - 1  # samples in a split a report may record: 150 times ImageNet-21k's 14 million
MAX_WEIGHT_DECAY = 10.0  # an L2 pull of 10 already zeroes the weights; past float32 range Adam cannot even start
# tau is a share of the unfiltered network's accuracy (scores) or of accuracy itself (thresholds): a
# group cannot lose more than all of it (S_clean, S_adv ≥ -1 and |Δ| ≤ 1), so at τ ≥ 1 nothing is ever
# fragile and every group robust.
MAX_TAU = 1
# Below about 30 samples a bootstrap of binary outcomes has too few distinct resamples to estimate a
# standard error (at 1 sample every draw is the same; at 3, a tenth of them are): no interval is given
# there, so no class is decided (method §5c), and an adaptive sweep's first look is at least this large.
# The usual rule of thumb for a normal approximation.
MIN_INTERVAL_SAMPLES = 30
LIMITS_DOC = "docs/limits.md"


def _option(info: ValidationInfo) -> str:
    return "--" + (info.field_name or "value").replace("_", "-")


def bounded(
    low: float | None, high: float | None, *, above: bool = False, below: bool = False, why: str = ""
) -> AfterValidator:
    """A validator: the value is finite and within [low, high] (``above``: strictly above ``low``;
    ``below``: strictly below ``high``). ``None`` and ``'auto'`` pass through for the optional and
    automatic settings."""

    if high is None:
        need, span = f"be {'greater than' if above else 'at least'} {low}", f"{'>' if above else '≥'} {low}"
    elif low is None:
        need, span = f"be {'below' if below else 'at most'} {high}", f"{'<' if below else '≤'} {high}"
    else:
        span = f"in {'(' if above else '['}{low}, {high}{')' if below else ']'}"
        need = f"lie {span}"

    def check(value, info: ValidationInfo):
        if value is None or value == "auto":
            return value
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{_option(info)} must be a finite number {span}{why}, got {value}")
        too_low = low is not None and (value <= low if above else value < low)
        too_high = high is not None and (value >= high if below else value > high)
        if too_low or too_high:
            limit = f"; see {LIMITS_DOC}" if too_high else ""
            raise ValueError(f"{_option(info)} must {need}{why}, got {value}{limit}")
        return value

    return AfterValidator(check)


# Command options (scan, train, retrain): the message names the option and its range.
Thresholds = Annotated[int, bounded(MIN_THRESHOLDS, MAX_THRESHOLDS, why=" (Simpson's rule needs 3 points)")]
Bootstrap = Annotated[int, bounded(0, MAX_BOOTSTRAP, why=" (0 turns intervals off)")]
Seed = Annotated[int, bounded(0, MAX_SEED)]
Tau = Annotated[float, bounded(0, MAX_TAU, below=True, why=" (a share of accuracy: at 1 no group can be fragile)")]
# Looks closer than 1 % apart cost an engine call each for almost no new samples; 2 is doubling.
LookRatio = Annotated[float, bounded(1.01, 2, why=" (1.2: each look 20 % larger than the last)")]
InitialSamples = Annotated[
    int, bounded(MIN_INTERVAL_SAMPLES, None, why=" (fewer samples give no interval)")
]
UnitShare = Annotated[float, bounded(0, 1)]
SampleCount = Annotated[int | None, bounded(1, None)]  # more than a split holds means all of it
BatchSize = Annotated[int, bounded(1, MAX_BATCH_SIZE)]
VariantBatch = Annotated[int, bounded(1, MAX_VARIANT_BATCH)]
Epochs = Annotated[int, bounded(1, MAX_EPOCHS)]
LearningRate = Annotated[float, bounded(0, MAX_LR, above=True)]
WeightDecay = Annotated[float, bounded(0, MAX_WEIGHT_DECAY)]

# Policy fields, read from YAML/JSON: strict, so `true` is not taken for 1.0 nor "0.5" for a number.
PolicyShare = Annotated[float, Strict(), Field(ge=0, le=1, allow_inf_nan=False)]
PolicyMargin = Annotated[float, Strict(), Field(ge=0, allow_inf_nan=False)]
