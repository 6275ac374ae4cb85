"""Pydantic models of the JSON report. Bump ``SCHEMA_VERSION`` whenever a field changes."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from ..classify import Class
from ..config import ScanConfig

SCHEMA_VERSION = "1.1"


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True, extra="forbid")


class ScoreTriple(_Model):
    clean: float | None
    adversarial: float | None
    difference: float | None


class ClassTriple(_Model):
    clean: Class
    adversarial: Class
    difference: Class


class FilterCurve(_Model):
    """One sweep: per threshold, the share of samples classified correctly and what was removed."""

    label: str
    thresholds: list[float]
    positions: list[float] = Field(description="normalised sweep position t_i = i/(N-1)")
    removed: list[int] = Field(description="entries inside the filter's band, set to zero")
    changed: list[int] = Field(description="removed entries that were non-zero (really altered)")
    clean: list[float] = Field(description="clean accuracy")
    adversarial: list[float] = Field(description="adversarial accuracy")
    scores: ScoreTriple
    classes: ClassTriple


class GroupReport(_Model):
    name: str
    module_type: str
    numel: int
    shape: list[int]
    filters: dict[str, FilterCurve]
    summary_class: Class = Field(alias="class", description="class of the summary filter's summary score")


class SkippedGroupReport(_Model):
    name: str
    reason: str


class Baseline(_Model):
    clean: float
    adversarial: float
    samples: int


class ModelInfo(_Model):
    name: str
    weights: str | None
    weights_sha256: str | None
    input_size: list[int]
    mean: list[float]
    std: list[float]
    num_classes: int
    parameters: int


class DatasetInfo(_Model):
    name: str
    split: str
    root: str | None
    size: int = Field(description="samples in the split")
    samples: int = Field(description="samples evaluated")
    selection: str
    description: str


class Settings(ScanConfig):
    """Every option as given, plus what was resolved at run time."""

    eps_used: float = Field(description="the perturbation budget actually used (after --eps auto)")
    device_used: str
    versions: dict[str, str]


class RunInfo(_Model):
    started_at: str
    duration_s: float
    executor: str = Field("local", description="where the sweeps ran: local (in-process) or ray; never changes a number")
    resumed_targets: int = Field(0, description="targets read back from checkpoints instead of swept (resume)")


class Report(_Model):
    schema_version: str = SCHEMA_VERSION
    fragscan_version: str
    model: ModelInfo
    dataset: DatasetInfo
    settings: Settings
    baseline: Baseline
    groups: list[GroupReport]
    skipped: list[SkippedGroupReport]
    global_: dict[str, FilterCurve] | None = Field(None, alias="global", description="global-scope curves")
    plugins: list[str] = Field(default_factory=list, description="plugins loaded for this scan")
    warnings: list[str] = Field(default_factory=list)
    run: RunInfo = Field(description="timing; the only part that differs between identical scans")
