"""Family-wise claims (method §5, §6): summary classes, threshold classes and resolution.

A claim made in a family needs every member: the summary classes' simultaneous level depends on how
many groups the report holds, the threshold intervals' on how many thresholds the scan measured. A
group's class is made in one place, :func:`summary_claim`: by the scan once every group is scored,
and by :func:`judge` from a report; threshold claims are made on the assembled report
(:func:`judge_thresholds`). Both use only what the report stores (the packed per-sample correctness,
the bootstrap's seed and size): a saved report.json alone reproduces them, and a resumed scan
rescored with other settings gets them anew.

Threshold intervals: the paired difference Δ = acc_i − acc0 is the mean of per-sample differences
d ∈ {−1, 0, 1} (clean, adversarial) or d ∈ {−2, …, 2} (their difference). Its interval is Agresti and
Min's (2005) Wald interval for matched pairs: half a pseudo-sample is added to each cell of the paired
table (d = +1, d = −1 and twice d = 0), so a threshold with no discordant sample still has a width
set by the sample count. Bonferroni over the scan's perturbed thresholds (one family per score)
keeps every decided threshold class right at once with 95 % confidence; we chose it over
false-coverage-rate intervals after Benjamini–Hochberg selection because ``robust`` claims are made
about the thresholds such a selection leaves out. Each threshold also records the exact sign test on
its discordant samples (for clean and adversarial this is McNemar's exact test) and its BH q-value.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import binomtest, false_discovery_control, norm

from ..config import SCORES, AdaptivePlan, ScoringPart
from ..data import drawn_ranks
from ..report import (
    FilterCurve,
    GroupReport,
    Report,
    ScoreTriple,
    ThresholdClasses,
    ThresholdIntervals,
    ThresholdValues,
)
from ..report.model import Interval
from .adaptive import planned_level
from .assess import References
from .classify import classify, samples_to_decide
from .confidence import LEVEL, MIN_TAIL_RESAMPLES, interval_method, unpack_bits

THRESHOLD_METHOD = (
    "Agresti-Min paired Wald interval, Bonferroni over the scan's perturbed thresholds (adaptive scans: "
    "the plan's repeated-interval z for that alpha at the curve's last look: Pocock's, or its spending boundary's); "
    "exact sign test on discordant samples (McNemar), Benjamini-Hochberg q"
)


def judge(report: Report) -> Report:
    """``report`` with its family-wise claims made anew (a report restated at another budget, say):
    threshold evidence on every curve (:func:`judge_thresholds`) and each group's summary claim
    (:func:`summary_claim`)."""
    if not _judgeable(report):
        return report  # nothing per sample to judge by
    judged, references = judge_thresholds(report), _references(report)
    scoring, adaptive_plan, groups = report.settings.scoring_part, report.settings.adaptive, len(report.groups)

    def summarised(group: GroupReport) -> GroupReport:
        curve = group.filters[scoring.summary_filter]
        return group.model_copy(update=summary_claim(curve, group.numel, references, scoring, adaptive_plan, groups))

    return judged.model_copy(update={"groups": [summarised(g) for g in judged.groups]})


def summary_claim(
    curve: FilterCurve, numel: int, references: References, scoring: ScoringPart,
    adaptive_plan: AdaptivePlan | None, groups: int,
) -> dict:
    """A group's claim, the one place its class is made: the class of the summary filter's ``curve``
    under its summary score, from that score's interval at the level simultaneous over the ``groups``
    (an adaptive sweep's: at its last look), bootstrapped with the unfiltered ``references`` on the
    curve's samples; with the interval, its half-width and, when inconclusive, the samples that would
    decide: the GroupReport fields so named."""
    level = planned_level(adaptive_plan, groups, curve.samples)
    bootstrap = references.at(curve.samples).bootstrap
    interval = None
    if bootstrap is not None:
        present = None if scoring.baseline != "density" else [1.0 - r / numel for r in curve.removed]
        interval = getattr(
            bootstrap.intervals(*_unpacked(curve), curve.positions, present=present,
                                normalise_by=scoring.normalise_by, level=level,
                                point=[getattr(curve.scores, score_name) for score_name in SCORES]),
            scoring.summary_score,
        )
    score = getattr(curve.scores, scoring.summary_score)
    summary_class = classify(score, scoring.tau, perturbed=any(curve.changed), interval=interval, rule=scoring.classify)
    half_width = _half_width(interval)
    return {
        "summary_class": summary_class,
        "summary_interval": interval,
        "half_width": half_width,
        "samples_to_decide": _samples_to_decide(summary_class, score, half_width, curve.samples, scoring.tau),
    }


def judge_thresholds(report: Report) -> Report:
    """``report`` with threshold evidence on every curve (classes, intervals, p- and q-values over
    the scan's perturbed thresholds) and the levels of every claim recorded in its settings."""
    if not _judgeable(report):
        return report  # nothing per sample to judge by
    curves = _curves(report)
    settings = report.settings
    references = _references(report)
    unfiltered = references.unfiltered
    perturbed = sum(sum(1 for n in c.changed if n > 0) for *_, c in curves)
    tests = {  # one curve's per-sample arrays at a time: a large scan's would not all fit at once
        (name, f): _tests(_differences(*_unpacked(curve), *_prefix(unfiltered, references, curve)),
                          planned_level(settings.adaptive, perturbed, curve.samples))
        for name, f, curve in curves
    }
    q_values = _q_values(tests, {(name, f): c.changed for name, f, c in curves})

    def judged(name: str, filter_id: str, curve: FilterCurve) -> FilterCurve:
        key = (name, filter_id)
        deltas, intervals, p_values = tests[key]
        classes = {
            score_name: [
                classify(float(deltas[k][i]), settings.tau, perturbed=changed > 0, interval=intervals[k][i],
                         rule=settings.classify)
                for i, changed in enumerate(curve.changed)
            ]
            for k, score_name in enumerate(SCORES)
        }
        unperturbed = [changed == 0 for changed in curve.changed]
        return curve.model_copy(
            update={
                "half_widths": None if curve.intervals is None else ScoreTriple(
                    **{score_name: _half_width(getattr(curve.intervals, score_name)) for score_name in SCORES}
                ),
                "threshold_classes": ThresholdClasses(**classes),
                "threshold_p_values": ThresholdValues(
                    **{score_name: _unless(p_values[k], unperturbed) for k, score_name in enumerate(SCORES)}
                ),
                "threshold_q_values": ThresholdValues(**dict(zip(SCORES, q_values[key]))),
                "threshold_intervals": ThresholdIntervals(
                    **{score_name: _unless(intervals[k], unperturbed) for k, score_name in enumerate(SCORES)}
                ),
            }
        )

    # recorded in the settings: the final look's levels (a spending plan's earlier looks have their own)
    threshold_level = planned_level(settings.adaptive, perturbed)
    summary_level = planned_level(settings.adaptive, len(report.groups))
    filter_level = LEVEL if settings.adaptive is None else settings.adaptive.filter_level
    return report.model_copy(
        update={
            "groups": [
                g.model_copy(update={"filters": {f: judged(g.name, f, c) for f, c in g.filters.items()}})
                for g in report.groups
            ],
            "global_": None if report.global_ is None else {
                f: judged("global", f, c) for f, c in report.global_.items()
            },
            "settings": settings.model_copy(
                update={
                    "filter_level": filter_level,
                    "summary_level": summary_level,
                    "interval_min_tail": None if not settings.bootstrap else MIN_TAIL_RESAMPLES,
                    "filter_method": None if not settings.bootstrap else interval_method(filter_level,
                                                                                        settings.bootstrap),
                    "summary_method": None if not settings.bootstrap else interval_method(summary_level,
                                                                                         settings.bootstrap),
                    "threshold_level": threshold_level,
                    "threshold_method": THRESHOLD_METHOD,
                }
            ),
        }
    )


def _curves(report: Report) -> list[tuple[str, str, FilterCurve]]:
    curves = [(g.name, f, c) for g in report.groups for f, c in g.filters.items()]
    return curves + [("global", f, c) for f, c in (report.global_ or {}).items()]


def _judgeable(report: Report) -> bool:
    """Whether the report holds the per-sample bits its claims are made from."""
    return report.baseline.correct is not None and all(c.correct is not None for *_, c in _curves(report))


def _references(report: Report) -> References:
    """The unfiltered network's reference, each curve paired with it on its own samples: all drawn
    ones, or an adaptive sweep's prefix of the seeded order."""
    drawn, settings = report.baseline.samples, report.settings
    unfiltered = tuple(unpack_bits(getattr(report.baseline.correct, k), [drawn]) for k in ("clean", "adversarial"))
    ranks = drawn_ranks(report.dataset.size, drawn, settings.seed)
    return References(unfiltered, ranks, settings.bootstrap, settings.seed)


def group_class(report: Report, group: GroupReport, filter_id: str, score: str) -> str:
    """A group's class under one filter and score: its summary class (simultaneous over the groups)
    for the summary filter and score, else that filter's own (95 %) class."""
    if (filter_id, score) == (report.settings.summary_filter, report.settings.summary_score):
        return group.summary_class
    return getattr(group.filters[filter_id].classes, score)


def _unpacked(curve: FilterCurve):
    shape = [len(curve.thresholds), curve.samples]
    return tuple(unpack_bits(getattr(curve.correct, k), shape) for k in ("clean", "adversarial"))


def _prefix(unfiltered, references: References, curve: FilterCurve):
    """The unfiltered network's bits on the curve's samples."""
    columns = references.columns(curve.samples)
    return tuple(bits[columns] for bits in unfiltered)


def _differences(clean, adversarial, clean0, adversarial0) -> np.ndarray:
    """Per-sample paired differences to the unfiltered network, [scores, thresholds, samples]."""
    d_clean = clean.numpy().astype(np.int8) - clean0.numpy().astype(np.int8)
    d_adversarial = adversarial.numpy().astype(np.int8) - adversarial0.numpy().astype(np.int8)
    return np.stack([d_clean, d_adversarial, d_adversarial - d_clean])


def paired_interval(d: np.ndarray, level: float) -> np.ndarray:
    """Agresti–Min's interval (add ½ to each paired cell) of the mean of ``d`` at ``level``, along the
    last axis: [..., 2] bounds."""
    samples = d.shape[-1] + 2  # pseudo-samples: ½ at d = +1, ½ at d = −1, 1 at d = 0
    mean = d.sum(-1) / samples
    second = ((d.astype(np.float64) ** 2).sum(-1) + 1) / samples
    half = norm.ppf(1 - (1 - level) / 2) * np.sqrt(np.maximum(second - mean**2, 0) / samples)
    return np.stack([mean - half, mean + half], -1)


def sign_test(d: np.ndarray) -> float:
    """Two-sided exact binomial test on the discordant samples (d ≠ 0); 1 when there are none."""
    up, down = int((d > 0).sum()), int((d < 0).sum())
    return 1.0 if up + down == 0 else float(binomtest(up, up + down, 0.5).pvalue)


def _tests(differences: np.ndarray, level: float):
    """Per score and threshold: the point Δ (unadjusted, as the τ rule reads it), the adjusted interval, p."""
    deltas = differences.mean(-1)
    bounds = paired_interval(differences, level)
    intervals = [[(float(lo), float(hi)) for lo, hi in per_score] for per_score in bounds]
    p_values = [[sign_test(row) for row in per_score] for per_score in differences]
    return deltas, intervals, p_values


def _q_values(tests: dict, changed: dict) -> dict:
    """BH q-values over every perturbed threshold of the scan, one family per score; None elsewhere."""
    keys = list(tests)
    q_values = {key: [[None] * len(changed[key]) for _ in SCORES] for key in keys}
    for k in range(len(SCORES)):
        cells = [(key, i) for key in keys for i, n in enumerate(changed[key]) if n > 0]
        if not cells:
            continue
        adjusted = false_discovery_control([tests[key][2][k][i] for key, i in cells], method="bh")
        for (key, i), q in zip(cells, adjusted):
            q_values[key][k][i] = float(q)
    return q_values


def _unless(values: list, skip: list[bool]) -> list:
    """``values`` with None where nothing was perturbed (no claim is made there)."""
    return [None if s else v for v, s in zip(values, skip)]


def _half_width(interval: Interval | None) -> float | None:
    return None if interval is None else (interval[1] - interval[0]) / 2


def _samples_to_decide(summary_class: str, score: float | None, half_width: float | None, samples: int, tau: float):
    return samples_to_decide(score, half_width, samples, tau) if summary_class == "inconclusive" else None
