"""Pydantic models of ``retrain.json``, the result of selective retraining (method §7): the second
contract beside the scan report, with its own version. Bump ``RETRAIN_SCHEMA_VERSION`` whenever a
field changes."""

from __future__ import annotations

from pydantic import BaseModel, Field

from ..config import RetrainConfig
from .model import PackedCorrectness

RETRAIN_SCHEMA_VERSION = "2.2"  # 2.1: warnings; 2.2: threat profiles (threat, runs' worst)


class Estimate(BaseModel):
    estimate: float
    interval: tuple[float, float] = Field(description="95% percentile bootstrap interval over test samples and repeats")


class Comparison(BaseModel):
    """Selective minus a control, paired by test sample and repeat."""

    adversarial: Estimate
    clean: Estimate


class ParameterChange(BaseModel):
    name: str
    elements: int
    trainable: int = Field(description="elements this run's mask lets train")
    moved: int = Field(description="trainable elements whose value changed")
    frozen_moved: int = Field(description="frozen elements whose bits changed (must be 0)")


class Run(BaseModel):
    repeat: int
    seed: int = Field(description="seeds this run's data order (and its random mask)")
    clean: float
    adversarial: float = Field(description="with --threat: the per-sample worst case at the headline budget")
    worst: list[float] | None = Field(
        None, description="with --threat: the worst-case accuracy at each of threat.budgets, in its order"
    )
    correct: PackedCorrectness = Field(description="per-sample correctness on the evaluation samples")
    parameters: list[ParameterChange] = Field(description="per parameter; empty for the unmasked arm")


class Arm(BaseModel):
    trainable_share: float = Field(description="share of all parameter elements this arm trains")
    clean: Estimate = Field(description="mean over repeats")
    adversarial: Estimate
    runs: list[Run]


class RetrainThreat(BaseModel):
    """The threat profile the arms were judged by (``--threat``), as resolved."""

    spec: str
    budgets: list[float] = Field(description="ascending ('auto' calibrated on the starting network)")
    headline: float = Field(description="the budget eps_used, runs' adversarial and the comparisons state")


class RetrainResult(BaseModel):
    schema_version: str = RETRAIN_SCHEMA_VERSION
    fragscan_version: str
    settings: RetrainConfig
    eps_used: float
    threat: RetrainThreat | None = None
    device_used: str
    versions: dict[str, str]
    mask_metadata: dict[str, str]
    mask_split: str | None = Field(description="the split the mask's scan ran on (None: the mask does not say)")
    mask_chooses_elements: bool = Field(
        description="some parameter is trainable in part (else the random control is the mask itself)"
    )
    holdout: str | None = Field(description="how the validation split was held out of the training data")
    samples: int = Field(description="evaluation samples")
    fine_tuning_samples: int
    before: Arm = Field(description="the starting network, judged once (trainable_share 0)")
    arms: dict[str, Arm] = Field(description="selective, and the controls run: random, unmasked")
    comparison: dict[str, Comparison] = Field(description="selective_minus_random, selective_minus_unmasked")
    verdict: str = Field(description="whether the mask's choice beat chance, in one sentence")
    frozen_bit_identical: bool = Field(description="every masked-out element kept its exact bits, in every masked arm")
    warnings: list[str] = Field(
        default_factory=list, description="what makes the result say less, e.g. an --eps auto that missed its target"
    )
    duration_s: float
