"""Settings of every command that computes: scan, train and retrain, each one frozen pydantic object.

A scan's is written verbatim into every report, a retraining's into retrain.json. Every decision the
method spec marks **[ours]** is a field here, so a report says which was used. Each field's description
is also its command-line option's help text (``cli/_options.py``), and its default the option's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Annotated, Literal, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from .base.limits import (
    MAX_BOOTSTRAP,
    MAX_REPEATS,
    MIN_THRESHOLDS,
    BatchSize,
    Bootstrap,
    Epochs,
    InitialSamples,
    LearningRate,
    LookRatio,
    SampleCount,
    Seed,
    Tau,
    Thresholds,
    UnitShare,
    VariantBatch,
    WeightDecay,
    bounded,
)
from .base.threat_spec import parse as parse_threat

Score = Literal["clean", "adversarial", "difference"]
SCORES: tuple[Score, ...] = get_args(Score)
# A class rule (method §5, §6): the setting `classify` names the one a scan uses.
Rule = Literal["evidence", "tau"]
# --eps auto: the adversarial accuracy of the unfiltered network ≈ half its clean accuracy.
EPS_TARGET = 0.5
Stem = Literal["imagenet", "cifar"]
# Shared by scan, train and retrain, which must build the same network.
STEM = "paper built-ins' first layers: 'imagenet' (torchvision's stem) or 'cifar' (3x3 stride-1, no max-pool)"
MODEL = "registered model name (see `fragscan models`)"
DATASET = "registered dataset adapter (see `fragscan datasets`)"
DEVICE = "'auto' (CUDA when present), cpu, cuda, cuda:N or mps: one this machine has"
# A sweep's arithmetic: exact fp32, or autocast to a 16-bit float.
Precision = Literal["fp32", "bf16", "fp16", "tf32"]
Control = Literal["unmasked", "random"]
# Choices a settings part names again (see the parts below ScanConfig).
Scope = Literal["local", "global"]
GlobalRange = Literal["pooled", "unit"]
NormMode = Literal["eval", "train"]
AttackModeChoice = Literal["regenerate", "fixed"]  # --attack-mode: how its adversary crafts examples
ScoreBaseline = Literal["one", "density"]
NormaliseBy = Literal["unfiltered", "first"]


def _pixel_budget(value):
    if value != "auto" and not 0.0 <= value <= 1.0:
        raise ValueError(
            "--eps must be 'auto' or a number in [0, 1] (pixels, or normalised units with --attack-space normalized), "
            f"got {value}"
        )
    return value


# Option types shared by every settings object that evaluates attacks (scan, retrain).
PixelBudget = Annotated[float | Literal["auto"], AfterValidator(_pixel_budget)]
SampleLimit = SampleCount
AttackSpace = Annotated[
    Literal["pixel", "normalized"],
    Field(
        description="[ours] 'pixel': attacks perturb [0,1] pixels and clip; 'normalized': the source's FGSM, a step "
        "of eps on the normalised input, unclipped (--attack FGSM only; eps in normalised units)"
    ),
]


class Adaptive(BaseModel):
    """[ours] Adaptive sampling (method §5b): how a sweep starts and how often it looks again; it
    grows to ``max_samples``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    initial_samples: InitialSamples = Field(50, description="samples of each sweep's first look")
    look_ratio: LookRatio = Field(
        1.2, description="each later look has this many times the samples of the one before, up to --max-samples"
    )
    look_boundary: str = Field(
        "pocock",
        description="how the looks' intervals share alpha: pocock (one critical value at every look), or an "
        "alpha-spending function, obrien-fleming (little alpha early, the final look's interval close to a "
        "plain 95 % one) or power:RHO (alpha spent as the share of samples to the power RHO)",
    )

    @field_validator("look_boundary")
    @classmethod
    def _known_boundary(cls, value: str) -> str:
        exponent = value.removeprefix("power:")
        if value in ("pocock", "obrien-fleming") or (exponent != value and _positive_number(exponent)):
            return value
        raise ValueError(f"--look-boundary must be pocock, obrien-fleming or power:RHO with RHO > 0, got {value!r}")


def _positive_number(text: str) -> bool:
    try:
        return 0 < float(text) < math.inf
    except ValueError:
        return False


class AdaptivePlan(Adaptive):
    """What an adaptive scan resolved: its looks and the interval levels they imply."""

    look_ratio: LookRatio = Field(2.0, description="growth of the looks (schema 2.1 reports: doubling)")
    look_boundary: str = Field("pocock", description="the looks' boundary (reports that do not say: pocock)")
    max_samples: int = Field(description="samples drawn; no sweep uses more")
    schedule: list[int] = Field(description="the sample counts of the planned looks, up to max_samples")
    looks: int = Field(description="planned looks")
    interval_adjustment: Literal["bonferroni", "pocock", "spending"] = Field(
        "bonferroni",
        description="how repeated looks are paid for (repeated confidence intervals): pocock, one group-sequential "
        "critical value for every planned look; spending, one per look from the boundary's alpha-spending "
        "function (filter_zs, summary_zs); bonferroni (schema 2.1), alpha split over the looks",
    )
    filter_z: float | None = Field(
        None, description="pocock: critical value of per-filter intervals at every look: P(max |Z_k| <= z) = 0.95"
    )
    summary_z: float | None = Field(
        None, description="pocock: critical value of summary intervals: P(max |Z_k| <= z) = 1 - 0.05 / groups"
    )
    filter_zs: list[float] | None = Field(
        None, description="spending: per look, the critical value c_k of per-filter intervals: "
        "P(|Z_k| > c_k at some look) = 0.05"
    )
    summary_zs: list[float] | None = Field(
        None, description="spending: per look, the critical value of summary intervals, for 0.05 / groups"
    )
    filter_level: float = Field(
        description="level of one look's per-filter interval (2 Phi(z) - 1); spending: the final look's"
    )
    summary_level: float = Field(
        description="level of one look's summary interval (2 Phi(z) - 1); spending: the final look's"
    )
    futility: str = Field(description="when a sweep stops although a class is undecided")

    @model_validator(mode="after")
    def _a_critical_value_per_look(self):
        per_look = (self.filter_zs, self.summary_zs)
        if self.interval_adjustment == "spending" and any(z is None or len(z) != len(self.schedule) for z in per_look):
            raise ValueError(
                "settings.adaptive is a spending plan without one filter_zs and summary_zs value per look of its "
                "schedule; the report is damaged: scan again"
            )
        return self


# Paths a report or result records are absolute, so a later command run from another directory
# (`fragscan mask REPORT`) finds the same files, whether the settings came from the CLI or the API.
ResolvedPath = Annotated[Path, AfterValidator(lambda path: path.resolve())]


class ScanConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("digits-cnn", description=MODEL)
    dataset: str = Field("digits", description=DATASET)
    weights: ResolvedPath | None = Field(None, description="weights file; default: the model's own")
    checkpoints: tuple[ResolvedPath, ...] = Field(
        (), description="several weights files (e.g. epochs) scanned in order into one report; replaces weights"
    )
    data_root: ResolvedPath | None = Field(None, description="directory the dataset adapter reads")
    split: str = Field("test", description="dataset split to evaluate on; val (held out of train) for masks")
    pretrained: bool = Field(
        False,
        description="for timm/torchvision models: start from published ImageNet weights (--weights FILE or the cache)",
    )
    stem: Stem = Field("imagenet", description=f"[ours] {STEM}")
    download: bool = Field(False, description="let the dataset adapter download missing files (off: offline)")
    plugins: tuple[ResolvedPath, ...] = Field((), description="plugin files (--plugin) loaded before the scan")
    max_samples: SampleLimit = Field(
        1000,
        description="evaluation samples, drawn with the seed; larger is slower and surer; None: all (--all-samples)",
    )
    batch_size: BatchSize | Literal["auto"] = Field(
        256, description="evaluation batch size, or auto: the largest that fits (resolved once, recorded)"
    )
    variant_batch: VariantBatch | Literal["auto"] = Field(
        "auto",
        description="filtered variants of a group evaluated in one pass, or auto: as many as fit in free GPU "
        "memory where a probe finds it faster, 1 on a CPU; the numbers are the same (checked on the first batch)",
    )
    filters: tuple[str, ...] = Field(
        ("step-up", "step-down", "pulse"),
        description="synaptic filters to sweep, comma-separated (see `fragscan filters`)",
    )
    thresholds: Thresholds = Field(25, description=f"thresholds per sweep, at least {MIN_THRESHOLDS} (the source's 25)")
    attack: str = Field("FGSM", description="a torchattacks class name (see `fragscan attacks`)")
    eps: PixelBudget = Field(
        "auto", description="perturbation budget in [0,1] pixels, or auto: calibrated so adv0 ≈ eps_target x clean0"
    )
    attack_space: AttackSpace = "pixel"
    eps_target: Annotated[float, bounded(0, 1, above=True)] = Field(
        EPS_TARGET, description="[ours] --eps auto aims for adv0 = eps_target * clean0"
    )
    threat: str | None = Field(
        None,
        description="[ours] threat profile: attacks with budgets, e.g. 'FGSM@0.02,0.05;PGD@0.05' (auto allowed); "
        "per budget the per-sample worst case over its attacks (method §6b); replaces --attack/--eps",
    )
    headline_eps: Annotated[float, bounded(0, 1)] | None = Field(
        None,
        description="[ours] with --threat: the budget the group classes and masks are stated at; default the largest",
    )
    attack_mode: AttackModeChoice = Field(
        "regenerate",
        description="'regenerate': craft attacks against each filtered network; 'fixed': once, "
        "against the unfiltered one",
    )
    scope: Scope = Field(
        "local", description="'local': one group at a time; 'global': all groups together"
    )
    global_range: GlobalRange = Field(
        "pooled",
        description="[ours] global thresholds over the 'pooled' [lo, hi], or the source's fixed 'unit' [-1, 1]",
    )
    include: tuple[str, ...] = Field(
        (), description="[ours] extra parameters to analyse: globs over parameter names, or 'bias' / 'norm'"
    )
    select: tuple[str, ...] = Field(
        (), description="analyse only the groups whose names match one of these globs (default: every group)"
    )
    baseline: ScoreBaseline = Field(
        "one", description="[ours] score baseline b: 'one' (1), or 'density' (the share still present)"
    )
    normalise_by: NormaliseBy = Field(
        "unfiltered",
        description="[ours] divide curves by the 'unfiltered' accuracy, or the source's 'first' threshold's",
    )
    norm_mode: NormMode = Field(
        "eval",
        description="[ours] normalisation layers in 'eval' mode, or the source's 'train' mode (batch statistics)",
    )
    tau: Tau = Field(0.01, description="robustness margin: |S| <= tau is robust; below 1")
    classify: Rule = Field(
        "evidence",
        description="[ours] evidence: a class only where the score's interval lies wholly below -tau (fragile), "
        "above +tau (antifragile) or within ±tau (robust), else inconclusive; tau: the source's point rule",
    )
    bootstrap: Bootstrap = Field(
        1000, description="[ours] paired bootstrap resamples over evaluation samples for score intervals; 0 = none"
    )
    summary_filter: str = Field("pulse", description="[ours] filter whose class is a group's summary class")
    summary_score: Score = Field(
        "adversarial",
        description="[ours] score whose class is a group's summary class: clean, adversarial or difference",
    )
    adaptive: Adaptive | None = Field(
        None,
        description="[ours] grow each (group, filter) sweep's samples from initial_samples by look_ratio per look, "
        "up to max_samples, until its classes are decided (method §5b); None: every sweep uses max_samples",
    )
    seed: Seed = Field(0, description="seeds sample draw and attack randomness")
    device: str = Field("auto", description=DEVICE)
    precision: Precision = Field(
        "fp32",
        description="[ours] arithmetic of the sweep: fp32 (exact: the obvious loop's numbers), bf16/fp16 "
        "autocast or tf32 tensor cores on CUDA (faster, may flip a few predictions; checked against "
        "--precision-tolerance)",
    )
    precision_tolerance: UnitShare = Field(
        0.01,
        description="[ours] with bf16/fp16/tf32: largest share of evaluation samples whose clean or adversarial "
        "correctness on the unfiltered network may differ from fp32; above it the sweep runs in fp32",
    )

    # Each stage reads the part of the settings it needs (the parts below), not the whole object.
    @property
    def data_part(self) -> DataPart:
        return _project(DataPart, self)

    @property
    def sweep_part(self) -> SweepPart:
        return _project(SweepPart, self)

    @property
    def attack_part(self) -> AttackPart:
        return _project(AttackPart, self)

    @property
    def scoring_part(self) -> ScoringPart:
        return _project(ScoringPart, self)

    @property
    def runtime_part(self) -> RuntimePart:
        return _project(RuntimePart, self)

    @field_validator("classify", mode="before")
    @classmethod
    def _ci_was_replaced(cls, value):
        if value == "ci":
            raise ValueError(
                "--classify ci was replaced by evidence (robust needs the interval within ±tau, not merely "
                "containing 0); use --classify evidence, or tau for the source's point rule"
            )
        return value

    @field_validator("adaptive", mode="before")
    @classmethod
    def _adaptive_switch(cls, value):
        if value is True:  # ScanConfig(adaptive=True): the default start
            return Adaptive()
        return None if value is False else value

    @field_validator("filters", "include", "select", mode="before")
    @classmethod
    def _split_commas(cls, value):
        if isinstance(value, str):
            value = [value]
        return tuple(part.strip() for item in value for part in str(item).split(",") if part.strip())

    @model_validator(mode="after")
    def _threat_profile(self):
        return _check_profile(self)

    @model_validator(mode="after")
    def _summary_filter_swept(self):
        if self.checkpoints and self.weights is not None:
            raise ValueError("--checkpoints replaces --weights; give either several --weights or --checkpoints DIR")
        if self.classify == "evidence" and self.bootstrap == 0:
            raise ValueError(
                "--classify evidence needs score intervals; set --bootstrap to 1000 or so, or use --classify tau"
            )
        if self.adaptive is not None and self.scope == "global":
            raise ValueError("--adaptive grows each group's sweep on its own; use it with --scope local")
        if self.adaptive is not None and self.classify != "evidence":
            raise ValueError(
                "--adaptive stops a sweep once its interval decides the class; use it with --classify evidence"
            )
        if not self.filters:
            raise ValueError("--filters is empty; name at least one filter (see `fragscan filters`)")
        twice = _first_repeat(self.filters)
        if twice is not None:
            raise ValueError(f"--filters names {twice!r} twice; name each filter once")
        twice = _first_repeat(self.checkpoints)
        if twice is not None:  # scanning it twice would only double the time and the report's columns
            raise ValueError(f"--weights names the file {str(twice)!r} twice; give each checkpoint once")
        if self.summary_filter not in self.filters:
            raise ValueError(
                f"--summary-filter {self.summary_filter!r} is not among --filters {','.join(self.filters)}; "
                "add it or choose one of them"
            )
        return self


# The parts of a scan's settings, each what one stage reads: a stage annotated with a part sees no other
# setting. They are projections of a ScanConfig (validated there, and written flat into every report, as
# the command line gives them); a setting several stages read (the seed) is in each of their parts.


@dataclass(frozen=True)
class DataPart:
    """What is analysed: the model, its weights, and the samples drawn from the dataset."""

    model: str
    dataset: str
    weights: Path | None
    data_root: Path | None
    split: str
    pretrained: bool
    stem: Stem
    download: bool
    max_samples: SampleLimit
    seed: int


@dataclass(frozen=True)
class SweepPart:
    """What the sweep measures: which tensors, under which filters and thresholds, how grouped."""

    filters: tuple[str, ...]
    thresholds: Thresholds
    scope: Scope
    global_range: GlobalRange
    include: tuple[str, ...]
    select: tuple[str, ...]
    norm_mode: NormMode
    variant_batch: VariantBatch | Literal["auto"]


@dataclass(frozen=True)
class AttackPart:
    """How every network is attacked: one attack and budget, or a threat profile."""

    attack: str
    eps: PixelBudget
    attack_space: AttackSpace
    eps_target: float
    threat: str | None
    headline_eps: float | None
    attack_mode: AttackModeChoice
    norm_mode: NormMode
    seed: int


@dataclass(frozen=True)
class ScoringPart:
    """How curves become scores, intervals and classes."""

    baseline: ScoreBaseline
    normalise_by: NormaliseBy
    tau: Tau
    classify: Rule
    bootstrap: Bootstrap
    summary_filter: str
    summary_score: Score
    seed: int


@dataclass(frozen=True)
class RuntimePart:
    """Where and in which arithmetic the scan runs; never a number beyond the precision tolerance."""

    device: str
    precision: Precision
    precision_tolerance: float


Part = TypeVar("Part", DataPart, SweepPart, AttackPart, ScoringPart, RuntimePart)


def _project(part: type[Part], settings: ScanConfig) -> Part:
    return part(**{field.name: getattr(settings, field.name) for field in fields(part)})


class TrainSettings(BaseModel):
    """The optimiser's settings of `fragscan train` and `retrain`; every number bounded and finite."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: Epochs = Field(10, description="training epochs")
    lr: LearningRate = Field(1e-3, description="Adam learning rate (the source's 1e-3)")
    batch_size: BatchSize = Field(100, description="batch size (the source's 100)")
    weight_decay: WeightDecay = Field(0.0, description="Adam weight decay")
    seed: Seed = Field(0, description="seeds initialisation and data order")


class TrainConfig(TrainSettings):
    """Settings of `fragscan train`: what to train, on which data, and where its checkpoints fall."""

    model: str = Field(description=MODEL)
    dataset: str = Field(description=DATASET)
    weights: ResolvedPath | None = Field(
        None, description="weights to start from; default: a fresh seeded initialisation"
    )
    pretrained: bool = Field(
        False,
        description="for timm/tv models: start from ImageNet weights (--weights FILE, or the local cache), "
        "fitted to the data",
    )
    stem: Stem = Field("imagenet", description=STEM)
    data_root: ResolvedPath | None = Field(None, description="directory the dataset adapter reads")
    split: str = Field("train", description="split to train on (train: the training data less val)")
    eval_split: str = Field("test", description="split whose clean accuracy each checkpoint records")
    save_every: Annotated[int, bounded(1, None)] = Field(
        10, description="write a checkpoint every K epochs (and after the last)"
    )
    device: str = Field("auto", description=DEVICE)

    @property
    def optimiser(self) -> TrainSettings:
        """The optimiser's settings alone, as ``training.json`` records them."""
        return TrainSettings(**self.model_dump(include=set(TrainSettings.model_fields)))


class RetrainConfig(BaseModel):
    """Settings of `fragscan retrain` (method §7): the mask, the arms, their shared budget and attack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("digits-cnn", description=MODEL)
    dataset: str = Field("digits", description=DATASET)
    weights: ResolvedPath | None = Field(None, description="weights to start from; default: the model's own")
    stem: Stem = Field("imagenet", description=f"{STEM}: the scan's")
    mask: ResolvedPath = Field(description="retrain mask (mask.safetensors), 1 = trainable")
    data_root: ResolvedPath | None = Field(None, description="directory the dataset adapter reads")
    train_split: str = Field("train", description="split to fine-tune on (train: the training data less val)")
    eval_split: str = Field("test", description="split to judge on; never the split the mask was scanned on")
    max_samples: SampleLimit = Field(1000, description="evaluation samples (seeded draw; more than a split holds: all)")
    train_samples: SampleLimit = Field(
        None, description="fine-tuning samples (seeded draw, the same for every run); default: the whole split"
    )
    epochs: Epochs = Field(5, description="fine-tuning epochs (the same for every arm)")
    lr: LearningRate = Field(1e-3, description="Adam learning rate (the source's)")
    batch_size: BatchSize = Field(100, description="training batch size (the source's)")
    weight_decay: WeightDecay = Field(0.0, description="Adam weight decay; frozen elements stay bit-identical anyway")
    adversarial: bool = Field(
        False,
        description="fine-tune on adversarial examples crafted against the network (with --threat: the per-sample "
        "worst case over the headline budget's attacks)",
    )
    attack: str = Field("FGSM", description="a torchattacks class for evaluation (and --adversarial training)")
    eps: PixelBudget = Field("auto", description="budget in [0,1] pixels, or auto (adv0 ≈ half of clean0)")
    attack_space: AttackSpace = "pixel"
    threat: str | None = Field(
        None,
        description="judge by a threat profile, as scan --threat takes it ('FGSM@0.02,0.05;PGD@0.05'): the per-sample "
        "worst case at its headline budget, every budget's recorded; replaces --attack/--eps. Never read from the mask",
    )
    headline_eps: Annotated[float, bounded(0, 1)] | None = Field(
        None, description="with --threat: the budget the arms are judged at; default the largest"
    )
    controls: tuple[Control, ...] = Field(
        ("unmasked", "random"),
        description="control arms besides the selective one, comma-separated: unmasked, random (same count per "
        "parameter), or none",
    )
    repeats: Annotated[int, bounded(1, MAX_REPEATS)] = Field(3, description="runs per arm, seeded seed, seed + 1, ...")
    bootstrap: Annotated[int, bounded(1, MAX_BOOTSTRAP)] = Field(
        2000, description="bootstrap resamples for the intervals (over test samples and repeats)"
    )
    seed: Seed = Field(0, description="seeds the data order, evaluation draw, random masks, attacks and bootstrap")
    device: str = Field("auto", description=DEVICE)

    @field_validator("controls")
    @classmethod
    def _distinct(cls, value):
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _threat_profile(self):
        return _check_profile(self)


def _check_profile(values: BaseModel) -> BaseModel:
    """A --threat beside --attack/--eps (or --headline-eps without one, or naming none of its budgets) is
    refused, as a scan's and a retrain's settings; ``values`` has threat, headline_eps, attack, eps."""
    if values.threat is None:
        if values.headline_eps is not None:
            raise ValueError("--headline-eps picks one of --threat's budgets; give a --threat or drop it")
        return values
    entries = parse_threat(values.threat)
    fields = type(values).model_fields
    if (values.attack, values.eps) != (fields["attack"].default, fields["eps"].default):
        raise ValueError("--threat replaces --attack and --eps; list the attacks and budgets in the profile")
    budgets = {entry.eps for entry in entries}
    if values.headline_eps is not None and "auto" not in budgets and values.headline_eps not in budgets:
        listed = ", ".join(f"{b:g}" for b in sorted(budgets))
        raise ValueError(f"--headline-eps {values.headline_eps:g} is not among --threat's budgets ({listed})")
    return values


def _first_repeat(items):
    """The first item that occurs earlier in ``items`` too, else None."""
    return next((item for i, item in enumerate(items) if item in items[:i]), None)


def build_config(model_type: type[BaseModel], **values) -> BaseModel:
    """Validate settings, turning pydantic's report into one actionable line."""
    from pydantic import ValidationError

    from .base.errors import ConfigError

    try:
        return model_type(**values)
    except ValidationError as error:
        first = error.errors()[0]
        message = first["msg"].removeprefix("Value error, ")
        if not message.startswith("--"):
            option = "--" + "-".join(str(part) for part in first["loc"][:1]).replace("_", "-")
            message = f"{option}: {message}" if first["loc"] else message
        raise ConfigError(message) from None
