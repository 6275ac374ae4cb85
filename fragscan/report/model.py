"""Pydantic models of the JSON report. Bump ``SCHEMA_VERSION`` whenever a field changes."""

from __future__ import annotations

import base64
import binascii
import re
from collections import Counter
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..base.limits import MAX_SPLIT_SAMPLES
from ..config import AdaptivePlan, Precision, ScanConfig
from .numbers import order_of

SCHEMA_VERSION = "2.2"
# A score's class (method §5, §6): the three the method claims (DECIDED), or why no claim is made.
Class = Literal["fragile", "robust", "antifragile", "inconclusive", "unperturbed", "undefined"]
DECIDED: frozenset[str] = frozenset({"fragile", "robust", "antifragile"})
# Settings that change what a score means: two reports that differ in one compare with a warning
# (an audit's baseline, `fragscan compare`). A pulse band's width alone follows the thresholds; the
# samples are compared as evaluated (report.baseline.samples), not as --max-samples asked.
COMPARABLE_SETTINGS = (
    "dataset", "split", "thresholds", "attack", "eps_used", "attack_mode", "scope",
    "baseline", "normalise_by", "norm_mode", "attack_space", "precision_used", "classify", "tau", "seed",
)  # fmt: skip


class _Model(BaseModel):
    # No NaN or infinity anywhere: a report is read by audits and CI tools, and JSON has neither.
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True, extra="forbid", allow_inf_nan=False)


class ScoreTriple(_Model):
    clean: float | None
    adversarial: float | None
    difference: float | None


class ClassTriple(_Model):
    clean: Class
    adversarial: Class
    difference: Class


Interval = tuple[float, float]  # a confidence interval: (low, high)
# The two accuracies of a network: on the clean samples, and under attack (a score combines them).
Accuracy = Literal["clean", "adversarial"]
ACCURACIES: tuple[Accuracy, ...] = get_args(Accuracy)


class IntervalTriple(_Model):
    """95 % paired-bootstrap intervals of the three scores; None where the score is undefined."""

    clean: Interval | None
    adversarial: Interval | None
    difference: Interval | None


class ThresholdClasses(_Model):
    """Per threshold, the class of the paired difference to the unfiltered network (method §6)."""

    clean: list[Class]
    adversarial: list[Class]
    difference: list[Class]


class ThresholdValues(_Model):
    """Per threshold, one number per score; None where the threshold altered nothing."""

    clean: list[float | None]
    adversarial: list[float | None]
    difference: list[float | None]


class ThresholdIntervals(_Model):
    """Per threshold, the interval of Δ adjusted for the scan's thresholds (settings.threshold_level)."""

    clean: list[Interval | None]
    adversarial: list[Interval | None]
    difference: list[Interval | None]


class PackedCorrectness(_Model):
    """Per-sample correctness as base64 of numpy.packbits over the row-major bool array
    ([thresholds, samples] for a curve, [samples] for the baseline and a retraining run), most significant bit
    first."""

    clean: str
    adversarial: str

    def check_holds(self, bits: int, where: str) -> None:
        """ValueError unless each accuracy's packed bits hold exactly ``bits`` outcomes (:func:`check_packed`)."""
        for accuracy in ACCURACIES:
            check_packed(getattr(self, accuracy), bits, f"{where} correct.{accuracy}")


def check_packed(text: str, bits: int, where: str) -> None:
    """ValueError unless ``text`` is base64 of exactly ``bits`` bits (numpy.packbits pads the last byte with zero
    bits): damaged bits would be read back as other samples' outcomes."""
    try:
        packed = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise ValueError(f"{where} is not base64; the report is damaged: scan again") from None
    padding = -bits % 8
    if len(packed) != -(-bits // 8) or (padding and packed[-1] & ((1 << padding) - 1)):
        raise ValueError(
            f"{where} does not hold the {bits} outcomes its samples say; the report is damaged: scan again"
        )


def _check_accuracies(values: list[float], where: str) -> None:
    if any(not 0 <= value <= 1 for value in values):
        raise ValueError(f"{where} has an accuracy outside [0, 1]; the report is damaged: scan again")


class LookReport(_Model):
    """One look of an adaptive sweep (method §5b), at the plan's interval levels."""

    samples: int = Field(description="the first samples of the seeded order this look used")
    classes: ClassTriple
    intervals: IntervalTriple = Field(
        description="bootstrap intervals at settings.adaptive.filter_level (spending: this look's, filter_zs)"
    )
    summary_class: Class | None = Field(None, description="summary filter only: the group's class at this look")
    summary_interval: Interval | None = Field(
        None, description="its interval, at settings.adaptive.summary_level (spending: this look's, summary_zs)"
    )


class BudgetScores(_Model):
    """Per budget of a threat profile (threat.budgets order), one value per score that depends on ε."""

    adversarial: list[float | None]
    difference: list[float | None]


class BudgetIntervals(_Model):
    """Per budget, the score's interval at threat.filter_level (Bonferroni over the budgets)."""

    adversarial: list[Interval | None]
    difference: list[Interval | None]


class BudgetClasses(_Model):
    adversarial: list[Class]
    difference: list[Class]


class Surface(_Model):
    """A threat profile's sweep over budget x threshold (method §6b, schema 2.2+); clean accuracy does
    not depend on ε and stays in the curve."""

    adversarial: list[list[float]] = Field(
        description="[budget][threshold]: worst-case adversarial accuracy at threat.budgets[i], threshold j"
    )
    numel: int = Field(description="entries of the swept tensor(s): the density baseline's denominator")
    scores: BudgetScores
    intervals: BudgetIntervals | None = Field(None, description="at threat.filter_level; None without bootstrap")
    classes: BudgetClasses = Field(description="per budget, at threat.filter_level")
    correct: str | None = Field(
        None, description="worst-case correctness per sample, packed bits of the bool [budgets, thresholds, samples]"
    )


class FilterCurve(_Model):
    """One sweep: per threshold, the share of samples classified correctly and what was removed."""

    label: str
    thresholds: list[float]
    positions: list[float] = Field(description="normalised sweep position t_i = i/(N-1)")
    removed: list[int] = Field(description="entries inside the filter's band, set to zero")
    changed: list[int] = Field(description="removed entries that were non-zero (really altered)")
    samples: int = Field(description="evaluation samples the curve and scores use: the first of the seeded order")
    clean: list[float] = Field(description="clean accuracy")
    adversarial: list[float] = Field(description="adversarial accuracy")
    scores: ScoreTriple
    intervals: IntervalTriple | None = Field(None, description="95% bootstrap intervals (settings.bootstrap > 0)")
    classes: ClassTriple
    correct: PackedCorrectness | None = Field(None, description="per-sample correctness, packed bits")
    half_widths: ScoreTriple | None = Field(None, description="half the width of each score's 95% interval")
    threshold_classes: ThresholdClasses | None = Field(
        None,
        description="per threshold: class of Δ = acc_i − acc0 (clean, adversarial, Δadv − Δclean); τ as accuracy",
    )
    threshold_p_values: ThresholdValues | None = Field(
        None, description="per threshold: exact McNemar (sign test) p-value of Δ against 0"
    )
    threshold_q_values: ThresholdValues | None = Field(
        None, description="per threshold: Benjamini-Hochberg q-value over the scan's perturbed thresholds"
    )
    threshold_intervals: ThresholdIntervals | None = Field(
        None, description="per threshold: interval of Δ at settings.threshold_level"
    )
    surface: Surface | None = Field(
        None, description="threat profiles (schema 2.2+): adversarial accuracy over budget x threshold; the curve's "
        "own adversarial fields are the headline budget's"
    )
    looks: list[LookReport] | None = Field(
        None, alias="rounds", description="adaptive scans: every look the sweep took, in order"
    )
    stop: Literal["decided", "futile", "maximum"] | None = Field(
        None, description="adaptive scans: why the sweep stopped (futile: an undecided class was out of reach)"
    )

    @model_validator(mode="after")
    def _one_value_per_threshold(self):
        lengths = {name: len(getattr(self, name)) for name in _PER_THRESHOLD}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"curve {self.label!r} lists differ in length ({lengths}); the report is damaged")
        _check_accuracies(self.clean + self.adversarial, f"curve {self.label!r}")
        if any(not 1 <= look.samples <= self.samples for look in self.looks or ()):
            raise ValueError(
                f"curve {self.label!r} has a look beyond its {self.samples} samples; the report is damaged: scan again"
            )
        return self


_PER_THRESHOLD = ("thresholds", "positions", "removed", "changed", "clean", "adversarial")


class GroupReport(_Model):
    name: str
    module_type: str
    numel: int
    shape: list[int]
    filters: dict[str, FilterCurve]
    samples: int = Field(description="the most samples any of its filters used")
    summary_class: Class = Field(alias="class", description="class of the summary filter's summary score")
    summary_interval: Interval | None = Field(
        None, description="the summary score's interval at settings.summary_level (simultaneous over the groups)"
    )
    half_width: float | None = Field(None, description="half the width of summary_interval")
    samples_to_decide: int | None = Field(
        None, description="inconclusive groups: about how many samples would decide the class (half-width ∝ 1/√n)"
    )
    budget_classes: list[Class] | None = Field(
        None, description="threat profiles (2.2+): the summary score's class per budget, at threat.summary_level"
    )
    budget_intervals: list[Interval | None] | None = Field(
        None, description="threat profiles (2.2+): the summary score's interval per budget, at threat.summary_level"
    )
    flip_eps: float | None = Field(
        None, description="threat profiles (2.2+): the smallest budget whose decided class differs from the decided "
        "class below it; None: no change"
    )


class NetworkGroup(_Model):
    """One analysable tensor of the whole network, scanned or not."""

    name: str
    module_type: str


class SkippedGroupReport(_Model):
    name: str
    reason: str


class UnfilteredReport(_Model):
    """The unfiltered network on the evaluation samples (the report's ``baseline``): what scores compare to."""

    clean: float
    adversarial: float
    samples: int
    correct: PackedCorrectness | None = Field(None, description="per-sample correctness of the unfiltered network")

    @model_validator(mode="after")
    def _outcomes_of_its_samples(self):
        _check_accuracies([self.clean, self.adversarial], "baseline")
        if self.correct is not None:
            self.correct.check_holds(self.samples, "baseline")
        return self


class ThreatAttack(_Model):
    attack: str
    eps: float
    adversarial: float = Field(description="the unfiltered network's accuracy under this attack alone")
    parameters: dict[str, bool | int | float | str] | None = Field(
        None, description="the attack as built: its torchattacks hyper-parameters (as settings.attack_parameters)"
    )


class ThreatBudget(_Model):
    eps: float
    adversarial: float = Field(description="the unfiltered network's worst-case accuracy over the budget's attacks")
    correct: str | None = Field(None, description="its per-sample worst-case correctness, packed bits")


class Threat(_Model):
    """A threat profile (method §6b, schema 2.2+): several attacks and budgets, judged by the per-sample
    worst case. The report's body (baseline.adversarial, curves, classes, masks) is the headline budget's."""

    spec: str = Field(description="--threat as given")
    budgets: list[float] = Field(description="the resolved budgets, ascending ('auto' calibrated)")
    headline: float = Field(description="the budget the report's body states (--headline-eps, default the largest)")
    attacks: list[ThreatAttack] = Field(description="each attack at each of its budgets, alone")
    worst: list[ThreatBudget] = Field(description="per budget, in budgets' order: the worst case over its attacks")
    filter_level: float | None = Field(
        None,
        description="level of per-budget filter intervals: 1 - 0.05/budgets (adaptive: Pocock's over the looks; a "
        "spending boundary's at the final look)",
    )
    summary_level: float | None = Field(
        None,
        description="level of per-budget group intervals: 1 - 0.05/(groups x budgets) (adaptive: Pocock's; a "
        "spending boundary's at the final look)",
    )


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

    model_config = ConfigDict(allow_inf_nan=False)  # merged with ScanConfig's; as for every report model

    eps_used: float = Field(description="the perturbation budget actually used (after --eps auto)")
    attack_parameters: dict[str, bool | int | float | str] | None = Field(
        None,
        description="the attack as built: its torchattacks hyper-parameters, e.g. PGD's eps, alpha (step size), "
        "steps and random_start (schema 2.2+); a threat profile's are each attack's, in threat.attacks",
    )
    batch_size_used: int | None = Field(None, description="the batch size actually used (after --batch-size auto)")
    device_used: str
    precision_used: Precision = Field(
        "fp32", description="the sweep's arithmetic (fp32 when --precision broke its tolerance)"
    )
    precision_disagreement: float | None = Field(
        None,
        description="with --precision bf16/fp16: share of samples whose correctness on the unfiltered network "
        "differed from fp32",
    )
    versions: dict[str, str]
    filter_level: float | None = Field(None, description="confidence level of per-filter intervals and classes")
    summary_level: float | None = Field(
        None, description="per-group level of summary intervals: Bonferroni, 0.95 simultaneous over the groups"
    )
    threshold_level: float | None = Field(
        None, description="per-threshold level of threshold intervals: Bonferroni over the perturbed thresholds"
    )
    threshold_method: str | None = Field(None, description="how threshold intervals, p- and q-values are computed")
    interval_min_tail: int | None = Field(
        None,
        description="score intervals are bootstrap percentile intervals where each tail holds at least this "
        "many resamples, else normal intervals (the score ± z x the resamples' standard deviation) (schema 2.1+)",
    )
    filter_method: Literal["percentile", "normal"] | None = Field(
        None, description="how per-filter score intervals are computed at filter_level (schema 2.1+)"
    )
    summary_method: Literal["percentile", "normal"] | None = Field(
        None, description="how summary intervals are computed at summary_level (schema 2.1+)"
    )
    adaptive: AdaptivePlan | None = Field(None, description="adaptive sampling as resolved: looks, levels, futility")


class EngineReport(_Model):
    """How the sweep was computed; the numbers do not depend on it (they equal the obvious loop's)."""

    prefix_reuse: bool = Field(description="some group's filtered variants ran only the dependent suffix")
    fallback: str | None = Field(description="why no group could reuse a prefix (full forwards instead)")
    full_forward_targets: dict[str, str] = Field(description="groups run with full forwards, and why")
    fused_attack: bool = Field(description="clean predictions shared the attack's gradient forward (FGSM)")
    fused_attack_note: str | None = Field(description="why the attack ran on its own, when it did")
    suffix_share: dict[str, float] = Field(description="per group: suffix multiply-adds / full forward's")
    variants: int = Field(description="distinct filtered networks evaluated")
    cells: int = Field(description="filter x threshold cells in the curves")
    variant_batch: int = Field(1, description="most filtered variants evaluated in one pass (schema 2.2; 1 before)")
    variant_batch_note: str | None = Field(None, description="why variants ran one at a time (or fewer at once)")
    variant_batch_difference: float = Field(
        0.0, description="largest logit difference, batched vs one at a time, in the first-batch checks (0: exact)"
    )


class CheckpointScores(_Model):
    scores: ScoreTriple
    intervals: IntervalTriple | None
    classes: ClassTriple


class CheckpointGroup(_Model):
    name: str
    filters: dict[str, CheckpointScores]
    summary_class: Class = Field(alias="class")


class CheckpointReport(_Model):
    """One checkpoint of a multi-checkpoint scan: its baseline and scores (curves only for the last,
    which is the report's body)."""

    label: str
    weights: str
    weights_sha256: str | None
    eps_used: float
    precision_used: Precision = Field("fp32", description="this checkpoint's sweep arithmetic")
    precision_disagreement: float | None = Field(None, description="as in settings, for this checkpoint")
    baseline: UnfilteredReport
    groups: list[CheckpointGroup]


class RunInfo(_Model):
    started_at: str
    duration_s: float
    executor: str = Field(
        "local", description="where the sweeps ran: local (in-process) or ray; never changes a number"
    )
    resumed_targets: int = Field(0, description="targets read back from the resume store instead of swept")
    continued_targets: int = Field(
        0, description="adaptive targets that went on from their saved looks instead of starting again (2.1+)"
    )


class Report(_Model):
    schema_version: str = SCHEMA_VERSION
    fragscan_version: str
    model: ModelInfo
    dataset: DatasetInfo
    settings: Settings
    baseline: UnfilteredReport
    groups: list[GroupReport]
    skipped: list[SkippedGroupReport]
    network: list[NetworkGroup] | None = Field(
        None,
        description="with --select: every analysable tensor of the whole network in module order, so that roles "
        "(first conv, relative depth) are the network's, not the selection's (schema 2.2+)",
    )
    global_: dict[str, FilterCurve] | None = Field(None, alias="global", description="global-scope curves")
    checkpoints: list[CheckpointReport] | None = Field(
        None, description="multi-checkpoint scans: per-checkpoint scores in scan order; the body is the last one's"
    )
    plugins: list[str] = Field(default_factory=list, description="plugins loaded for this scan")
    warnings: list[str] = Field(default_factory=list)
    engine: EngineReport | None = Field(None, description="how the sweep was computed (schema 1.1+)")
    threat: Threat | None = Field(None, description="threat profiles (--threat): budgets, attacks, worst cases (2.2+)")
    run: RunInfo = Field(description="timing; the only part that differs between identical scans")

    @field_validator("schema_version")
    @classmethod
    def _a_schema_version(cls, version: str) -> str:
        if re.fullmatch(r"[1-9][0-9]*\.[0-9]+", version) is None:
            raise ValueError(
                f"{version[:40]!r} is not MAJOR.MINOR (as {SCHEMA_VERSION}); the report is damaged: "
                "scan again"
            )
        return version

    @model_validator(mode="after")
    def _samples_within_the_split(self):
        """Every sample count within the next: curves' within the baseline's, the baseline's within the
        split's, and the split within what any dataset holds (``samples: 1e12`` is a damaged report)."""
        size, drawn = self.dataset.size, self.baseline.samples
        counts = [("baseline", c.baseline.samples, size) for c in self.checkpoints or ()]
        counts += [("dataset.samples", self.dataset.samples, size), ("baseline.samples", drawn, size)]
        counts += [(f"group {g.name!r}", g.samples, drawn) for g in self.groups]
        counts += [(f"{name} {c.label!r}", c.samples, drawn) for name, c in self.named_curves()]
        if not 1 <= size <= MAX_SPLIT_SAMPLES:
            raise ValueError(f"dataset.size {size} is no split's size; the report is damaged: scan again")
        wrong = next(((what, n, most) for what, n, most in counts if not 1 <= n <= most), None)
        if wrong is not None:
            raise ValueError(
                f"{wrong[0]} has {wrong[1]} samples, outside [1, {wrong[2]}]; the report is damaged: scan again"
            )
        return self

    @model_validator(mode="after")
    def _curves_as_long_as_the_sweep(self):
        curves = self.named_curves()
        wrong = next(((name, c) for name, c in curves if len(c.thresholds) != self.settings.thresholds), None)
        if wrong is not None:
            raise ValueError(
                f"{wrong[0]} {wrong[1].label!r} has {len(wrong[1].thresholds)} thresholds, settings.thresholds "
                f"says {self.settings.thresholds}; the report is damaged: scan again"
            )
        return self

    @model_validator(mode="after")
    def _spending_sweeps_end_at_a_planned_look(self):
        """A spending plan's claims are at the level of the look each sweep stopped at: it must be one."""
        adaptive = self.settings.adaptive
        if adaptive is None or adaptive.filter_zs is None:
            return self
        wrong = next(((name, c) for name, c in self.named_curves() if c.samples not in adaptive.schedule), None)
        if wrong is not None:
            raise ValueError(
                f"{wrong[0]} {wrong[1].label!r} has {wrong[1].samples} samples, none of the looks in "
                "settings.adaptive.schedule; the report is damaged: scan again"
            )
        return self

    def setting_differences(self, other: Report) -> list[str]:
        """Each setting of :data:`COMPARABLE_SETTINGS`, and the samples evaluated, in which ``other``
        differs from this report, as "thresholds 9 → 25" (``other``'s value first)."""
        pairs = [(name, getattr(other.settings, name), getattr(self.settings, name)) for name in COMPARABLE_SETTINGS]
        pairs.append(("samples", other.baseline.samples, self.baseline.samples))
        return [f"{name} {old} → {new}" for name, old, new in pairs if old != new]

    @model_validator(mode="after")
    def _bits_of_every_sample(self):
        """After the counts above are known to agree: each curve's packed bits hold [thresholds, samples], its
        threat surface's [budgets, thresholds, samples], and each budget's unfiltered worst case [samples]."""
        budgets = len(self.threat.budgets) if self.threat is not None else 0
        for name, curve in self.named_curves():
            cells = len(curve.thresholds) * curve.samples
            if curve.correct is not None:
                curve.correct.check_holds(cells, f"{name} {curve.label!r}")
            if curve.surface is not None and curve.surface.correct is not None:
                check_packed(curve.surface.correct, budgets * cells, f"{name} {curve.label!r} surface.correct")
        for worst in self.threat.worst if self.threat is not None else ():
            if worst.correct is not None:
                check_packed(worst.correct, self.baseline.samples, f"threat.worst ε={worst.eps:g} correct")
        return self

    def named_curves(self) -> list[tuple[str, FilterCurve]]:
        """Every curve with the group it belongs to ("global" for a global-scope curve)."""
        named = [(g.name, c) for g in self.groups for c in g.filters.values()]
        return named + [("global", c) for c in (self.global_ or {}).values()]

    def sample_evaluations(self) -> tuple[int, int]:
        """Sample evaluations the groups' curves used (Σ over cells of their samples), and what
        the same cells would use at every drawn sample: an adaptive scan's spend against a full one."""
        cells = [(len(c.thresholds), c.samples) for g in self.groups for c in g.filters.values()]
        return sum(t * n for t, n in cells), sum(t for t, _ in cells) * self.baseline.samples

    def resolution_note(self) -> str | None:
        """"3 groups inconclusive at 1000 samples; 1 of them could be decided within the test split's
        10,000 samples (of order 10⁴): fc.weight; the other 2 would need far more (of order 10⁷)",
        or None when every group is decided. A projection from a point estimate is only an order of
        magnitude; what it can say is whether the whole split would do."""
        undecided = [g for g in self.groups if g.summary_class == "inconclusive"]
        if not undecided:
            return None
        plural = "s" if len(undecided) > 1 else ""
        most_samples = max(g.samples for g in undecided)
        upto = "" if all(g.samples == most_samples for g in undecided) else "up to "
        line = f"{len(undecided)} group{plural} inconclusive at {upto}{most_samples} samples"
        size = self.dataset.size
        within = [g for g in undecided if g.samples_to_decide is not None and g.samples_to_decide <= size]
        beyond = [g for g in undecided if g.samples_to_decide is not None and g.samples_to_decide > size]
        boundary = [g for g in undecided if g.samples_to_decide is None]
        split = f"the {self.dataset.split} split's {size:,} samples"
        parts = []
        if within:
            names = ", ".join(g.name for g in within[:3]) + (f" and {len(within) - 3} more" if len(within) > 3 else "")
            parts.append(
                f"{_which(within, undecided)} could be decided within {split} "
                f"(of order {order_of(max(g.samples_to_decide for g in within))}): {names}"
            )
        if beyond:
            parts.append(
                f"{len(beyond) if within else _which(beyond, undecided)} would need far more than "
                f"{'that' if within else split} (of order {order_of(max(g.samples_to_decide for g in beyond))})"
            )
        if boundary:
            one = len(boundary) == 1
            parts.append(
                f"{_which(boundary, undecided)} {'sits' if one else 'sit'} on a class boundary, so no sample count "
                f"would decide {'it' if one else 'them'}"
            )
        return "; ".join([line, *parts])

    def sampling_note(self) -> str | None:
        """One line on an adaptive scan's spend and its sweeps' stops; None for other scans."""
        if self.settings.adaptive is None:
            return None
        used, full = self.sample_evaluations()
        stops = Counter(c.stop for g in self.groups for c in g.filters.values())
        looks = ", ".join(str(n) for n in self.settings.adaptive.schedule)
        return (
            f"adaptive sampling used {used:,} of {full:,} sample evaluations ({used / max(1, full):.0%}); "
            f"looks at {looks} samples; sweeps stopped: "
            + ", ".join(f"{stops[s]} {s}" for s in ("decided", "futile", "maximum") if stops[s])
        )


def _which(some: list[GroupReport], undecided: list[GroupReport]) -> str:
    """How a sentence names ``some`` of the ``undecided`` groups: it, all 3, 2 of them."""
    if len(undecided) == 1:
        return "it"
    if len(some) == len(undecided):
        return "both" if len(some) == 2 else f"all {len(some)}"
    return f"{len(some)} of them"
