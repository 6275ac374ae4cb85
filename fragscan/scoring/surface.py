"""A threat profile's claims per budget (method §6b): the ε x threshold surface, scored and classed.

The scan states its body (baseline, curves, scores, classes, masks) at the headline budget, as a
one-budget scan would. Beside it, per budget:

- each (group, filter) gets its worst-case accuracy over the thresholds, its scores, and intervals
  at 1 − 0.05/B (Bonferroni over the B budgets: a class per budget is B claims, as a class per
  threshold is one claim per threshold);
- each group gets its summary score's class per budget at 1 − 0.05/(G·B), simultaneous over the
  groups and the budgets (:func:`judge_budgets`), and its flip budget: the smallest budget whose
  decided class differs from the decided class at the budgets below it ("robust up to 0.05,
  fragile from 0.1"). Inconclusive budgets are passed over, neither keeping nor breaking a class.

An adaptive scan's per-budget intervals are repeated confidence intervals over its planned looks
for the same families (the plan's z for α/B and α/(G·B) at the sweep's last look,
:func:`fragscan.scoring.adaptive.planned_level`): they hold at whichever look the sweep stopped, as its
headline intervals do. ``threat.filter_level`` and ``summary_level`` are the final look's.

Everything here is recomputable from a saved report (packed bits, bootstrap seed and size), and
:func:`at_budget` restates a report at any of its budgets (``fragscan mask --eps``, audits).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from ..base.errors import ConfigError
from ..config import ScoringPart
from ..data import drawn_ranks
from ..report import BudgetClasses, BudgetIntervals, BudgetScores, FilterCurve, GroupReport, Report, Surface
from ..report.model import DECIDED
from ..sweep.engine import Curve
from .adaptive import look_levels, planned_level
from .assess import References, assess, budget_references
from .classify import classify
from .confidence import LEVEL, pack_bits, unpack_bits
from .evidence import judge

VARYING = ("adversarial", "difference")  # the scores ε changes; clean accuracy is measured once


def at(curve: Curve, budget: int) -> Curve:
    """The curve at one budget, from a profile's curve ([thresholds, samples, budgets] adversarial)."""
    return replace(curve, adversarial=curve.adversarial[..., budget])


def surface(curve: Curve, references: list[References], scoring: ScoringPart, level: float) -> Surface:
    """The curve's surface: per budget its accuracies, scores, and intervals and classes at ``level``
    (:func:`fragscan.scoring.adaptive.planned_level` for the B budgets)."""
    samples = curve.clean.shape[1]
    assessed = [assess(at(curve, i), r.at(samples), scoring, level) for i, r in enumerate(references)]
    return Surface(
        adversarial=[a.adversarial for a in assessed],
        numel=curve.numel,
        scores=BudgetScores(**{k: [getattr(a.scores, k) for a in assessed] for k in VARYING}),
        intervals=None if assessed[0].intervals is None else BudgetIntervals(
            **{k: [getattr(a.intervals, k) for a in assessed] for k in VARYING}
        ),
        classes=BudgetClasses(**{k: [a.classes[k] for a in assessed] for k in VARYING}),
        correct=pack_bits(curve.adversarial.movedim(-1, 0)),
    )


def flip_budget(budgets: list[float], classes: list[str]) -> float | None:
    """The smallest budget whose decided class differs from the last decided class below it."""
    last = None
    for eps, cls in zip(budgets, classes):
        if cls in DECIDED:
            if last is not None and cls != last:
                return eps
            last = cls
    return None


def _bits(report: Report) -> tuple[torch.Tensor, torch.Tensor]:
    """The unfiltered network's clean bits [samples] and worst-case bits [samples, budgets]."""
    samples = report.baseline.samples
    clean0 = unpack_bits(report.baseline.correct.clean, [samples])
    return clean0, torch.stack([unpack_bits(w.correct, [samples]) for w in report.threat.worst], -1)


def _curve(curve: FilterCurve, budgets: int) -> Curve:
    """A scored curve back as the engine's, its adversarial bits [thresholds, samples, budgets]."""
    shape = [len(curve.thresholds), curve.samples]
    return Curve(
        thresholds=curve.thresholds,
        positions=curve.positions,
        removed=curve.removed,
        changed=curve.changed,
        numel=curve.surface.numel,
        clean=unpack_bits(curve.correct.clean, shape),
        adversarial=unpack_bits(curve.surface.correct, [budgets, *shape]).movedim(0, -1),
    )


def _judgeable(report: Report) -> bool:
    curves = [curve for _, curve in report.named_curves()]
    return (
        report.threat is not None
        and report.baseline.correct is not None
        and all(w.correct is not None for w in report.threat.worst)
        and all(c.correct is not None and c.surface is not None and c.surface.correct is not None for c in curves)
    )


def judge_budgets(report: Report) -> Report:
    """``report`` with each group's class per budget (summary filter and score, simultaneous over the
    groups and budgets) and its flip budget; a report without a profile is returned as it is."""
    if not _judgeable(report):
        return report
    settings, budgets = report.settings, report.threat.budgets
    clean0, worst0 = _bits(report)
    ranks = drawn_ranks(report.dataset.size, report.baseline.samples, settings.seed)
    scoring = settings.scoring_part
    references = budget_references(clean0, worst0, ranks, scoring)
    family = len(report.groups) * len(budgets)

    def judged(group: GroupReport) -> GroupReport:
        curve = group.filters[settings.summary_filter]
        level = planned_level(settings.adaptive, family, curve.samples)
        engine_curve = _curve(curve, len(budgets))
        score_name = settings.summary_score
        classes, intervals = [], []
        for i, reference in enumerate(references):
            assessed = assess(at(engine_curve, i), reference.at(curve.samples), scoring, level)
            interval = None if assessed.intervals is None else getattr(assessed.intervals, score_name)
            score = getattr(assessed.scores, score_name)
            classes.append(classify(score, settings.tau, perturbed=any(curve.changed), interval=interval,
                                    rule=settings.classify))
            intervals.append(interval)
        return group.model_copy(
            update={"budget_classes": classes, "budget_intervals": intervals,
                    "flip_eps": flip_budget(budgets, classes)}
        )

    threat = report.threat.model_copy(
        update={"filter_level": planned_level(settings.adaptive, len(budgets)),
                "summary_level": planned_level(settings.adaptive, family)}
    )
    return report.model_copy(update={"groups": [judged(g) for g in report.groups], "threat": threat})


def at_budget(report: Report, eps: float) -> Report:
    """``report`` restated at budget ``eps`` of its profile: the baseline's adversarial accuracy, every
    curve's adversarial accuracies, scores, intervals and classes, and the family-wise claims
    (summary and threshold classes) are those a scan with ``eps`` as its headline states."""
    if report.threat is None:
        raise ConfigError("this report has no threat profile (--threat): it states one budget, settings.eps_used")
    budgets = report.threat.budgets
    if eps not in budgets:
        listed = ", ".join(f"{b:g}" for b in budgets)
        raise ConfigError(f"--eps {eps:g} is not among the report's budgets ({listed})")
    if eps == report.threat.headline:
        return report
    if not _judgeable(report):
        raise ConfigError("this report holds no per-sample bits to restate it at another budget; scan again")
    i, settings = budgets.index(eps), report.settings
    clean0, worst0 = _bits(report)
    ranks = drawn_ranks(report.dataset.size, report.baseline.samples, settings.seed)
    scoring = settings.scoring_part
    reference = budget_references(clean0, worst0, ranks, scoring)[i]

    def restated(curve: FilterCurve) -> FilterCurve:
        engine_curve = at(_curve(curve, len(budgets)), i)
        # as the scan's body: at the level of the sweep's last look
        level = LEVEL if settings.adaptive is None else look_levels(settings.adaptive, curve.samples)[0]
        assessed = assess(engine_curve, reference.at(curve.samples), scoring, level)
        scores, intervals = assessed.scores, assessed.intervals
        return curve.model_copy(
            update={
                "adversarial": assessed.adversarial,
                "scores": curve.scores.model_copy(update={k: getattr(scores, k) for k in VARYING}),
                "intervals": None if intervals is None else curve.intervals.model_copy(
                    update={k: getattr(intervals, k) for k in VARYING}
                ),
                "classes": curve.classes.model_copy(update={k: assessed.classes[k] for k in VARYING}),
                "correct": curve.correct.model_copy(update={"adversarial": pack_bits(engine_curve.adversarial)}),
            }
        )

    worst = report.threat.worst[i]
    baseline = report.baseline.model_copy(
        update={"adversarial": worst.adversarial,
                "correct": report.baseline.correct.model_copy(update={"adversarial": worst.correct})}
    )
    restated_report = report.model_copy(
        update={
            "baseline": baseline,
            "groups": [g.model_copy(update={"filters": {f: restated(c) for f, c in g.filters.items()}})
                       for g in report.groups],
            "global_": None if report.global_ is None else {f: restated(c) for f, c in report.global_.items()},
            "threat": report.threat.model_copy(update={"headline": eps}),
            "settings": settings.model_copy(update={"eps_used": eps}),
        }
    )
    return judge(restated_report)


def stated_at(report: Report, eps: float | None, name: str) -> Report:
    """``report`` as stated at budget ``eps`` (None: as it is), for commands that read several reports
    or a policy naming a budget: a profile is restated (:func:`at_budget`), a one-budget report must
    have been scanned at ``eps``."""
    if eps is None or (report.threat is None and eps == report.settings.eps_used):
        return report
    if report.threat is None:
        raise ConfigError(
            f"{name} was scanned at one budget, ε={report.settings.eps_used:g}, not {eps:g}; scan it with --threat "
            "to state it at several"
        )
    return at_budget(report, eps)
