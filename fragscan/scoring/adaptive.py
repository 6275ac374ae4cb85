"""Adaptive sampling (method §5b): each (group, filter) sweep grows its samples until the classes
it contributes are decided, out of reach, or it has used every drawn sample.

A sweep first looks at the first K samples of the seeded order, then at geometrically more (each
look ``look_ratio`` times the one before) up to the samples drawn. Each look evaluates only the
samples new to it (every filtered network sees each sample once) and reuses the unfiltered
network's bits, measured once on every drawn sample. A sweep at n samples is scored on exactly the
samples, in the order, that a scan with ``max_samples=n`` evaluates, against the same reference
and bootstrap (:mod:`fragscan.scoring.assess`): its numbers are that scan's.

Looking several times would inflate the error rate, so every interval is a repeated confidence
interval over the planned looks (:mod:`fragscan.scoring.sequential`): the score ± z · bootstrap SE with
Pocock's constant z for the plan's look sizes (or, with ``look_boundary`` an alpha-spending function,
each look's own z), z for α = 0.05 for per-filter classes and for α = 0.05/G for the summary class
(one per group, a family over the G groups). The stopping rule, the report and
:func:`fragscan.scoring.evidence.judge` use those z, recorded in the plan; a sweep's claims are at
the level of the look it stopped at. Looks the plan did not foresee never happen: a resumed scan
with another ``--max-samples`` is another scan (the resume store refuses it), and the plan is made
once per scan (a Ray worker receives the driver's).

A look is also the unit of resuming: :func:`grow` hands its state after each look
(:class:`LookState`) to a callback and can start from such a state, so an interrupted target goes on
at its next look. This module does no file I/O; the caller keeps the state
(:mod:`fragscan.pipeline.resume`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from ..config import SCORES, Adaptive, AdaptivePlan, ScoringPart, SweepPart
from ..report.model import DECIDED, Class, Interval
from ..sweep.engine import Curve, EngineInfo, SweepEvent
from .assess import References, assess
from .classify import classify, decision_margin
from .confidence import LEVEL, family_level, floor_share, reference_accuracies, width_floor
from .sequential import level_of, pocock_z, spending_boundary, z_of

FUTILITY = (
    "a sweep stops undecided when each undecided class is out of reach: its interval's half-width at the "
    "planned final look (the bootstrap's shrunk as 1/sqrt(n) and scaled to the final look's critical value, "
    "the few-samples floor at max_samples and the final level) would still exceed the distance of its score "
    "to the nearest of ±tau"
)
# Classes no further sample changes: the sweep altered nothing, or the reference accuracy is 0 on
# every drawn sample. A prefix whose reference accuracy is 0 is undefined only for now.
SETTLED = DECIDED | {"unperturbed", "undefined"}
# The reference accuracies each score divides by (method §4), by index in References.unfiltered.
REFERENCES = {"clean": (0,), "adversarial": (1,), "difference": (0, 1)}


def schedule(adaptive: Adaptive, drawn: int) -> list[int]:
    """The looks' sample counts: K, then each ``look_ratio`` times the last (at least one more), up
    to ``drawn``, which is always the last; a look less than a quarter step short of it is dropped,
    as it would cost an engine call for a few samples."""
    looks = []
    samples = min(adaptive.initial_samples, drawn)
    while samples < drawn and (not looks or drawn - samples >= samples * (adaptive.look_ratio - 1) / 4):
        looks.append(samples)
        samples = max(samples + 1, round(samples * adaptive.look_ratio))
    return [*looks, drawn]


def plan(adaptive: Adaptive, drawn: int, groups: int) -> AdaptivePlan:
    """The looks and the critical values (and levels) they imply for per-filter and summary claims."""
    looks = schedule(adaptive, drawn)
    filter_zs = _critical_values(adaptive.look_boundary, looks, 1 - LEVEL)
    summary_zs = _critical_values(adaptive.look_boundary, looks, (1 - LEVEL) / max(1, groups))
    pocock = adaptive.look_boundary == "pocock"
    return AdaptivePlan(
        **adaptive.model_dump(),
        max_samples=drawn,
        schedule=looks,
        looks=len(looks),
        interval_adjustment="pocock" if pocock else "spending",
        filter_z=filter_zs[0] if pocock else None,
        summary_z=summary_zs[0] if pocock else None,
        filter_zs=None if pocock else filter_zs,
        summary_zs=None if pocock else summary_zs,
        filter_level=level_of(filter_zs[-1]),
        summary_level=level_of(summary_zs[-1]),
        futility=FUTILITY,
    )


def _critical_values(boundary: str, looks: list[int], alpha: float) -> list[float]:
    """Per look, the critical value of repeated intervals that cover at every look at once with
    probability 1 − ``alpha``: Pocock's one constant, or the spending function's own per look."""
    if boundary == "pocock":
        return [pocock_z(looks, alpha)] * len(looks)
    return spending_boundary(looks, alpha, boundary)


def look_levels(adaptive_plan: AdaptivePlan, samples: int) -> tuple[float, float]:
    """The per-filter and summary levels of the planned look at ``samples``: the plan's one level at
    every look, or with a spending boundary that look's own."""
    if adaptive_plan.filter_zs is None:
        return adaptive_plan.filter_level, adaptive_plan.summary_level
    index = adaptive_plan.schedule.index(samples)
    return level_of(adaptive_plan.filter_zs[index]), level_of(adaptive_plan.summary_zs[index])


@dataclass(frozen=True)
class Look:
    """One look at one sweep: its classes and intervals at the plan's levels, and whether it stops."""

    samples: int
    classes: dict[str, Class]
    intervals: dict[str, Interval | None]
    summary: tuple[Class, Interval | None] | None  # the summary filter's summary score, at the summary level
    stop: str | None  # "decided", "futile" (some class out of reach), "maximum"; None: look again


def look(
    curve: Curve, filter_id: str, references: References, scoring: ScoringPart, adaptive_plan: AdaptivePlan,
    scores: tuple[str, ...] = SCORES,
) -> Look:
    """``scores``: the per-filter scores whose classes the stop waits for (a profile's other budgets:
    only those ε changes)."""
    samples = curve.clean.shape[1]
    reference = references.at(samples)
    filter_level, summary_level = look_levels(adaptive_plan, samples)
    assessment = assess(curve, reference, scoring, filter_level)
    intervals = {s: None if assessment.intervals is None else getattr(assessment.intervals, s) for s in SCORES}
    # (score name, score, interval, class, level now, level at the final look) of each claim the sweep contributes
    claims = [(s, getattr(assessment.scores, s), intervals[s], assessment.classes[s], filter_level,
               adaptive_plan.filter_level) for s in scores]
    summary = None
    if filter_id == scoring.summary_filter:
        wide = assess(curve, reference, scoring, summary_level)
        score = getattr(wide.scores, scoring.summary_score)
        interval = None if wide.intervals is None else getattr(wide.intervals, scoring.summary_score)
        summary_class = classify(
            score, scoring.tau, perturbed=any(curve.changed), interval=interval, rule=scoring.classify
        )
        summary = summary_class, interval
        claims.append(
            (scoring.summary_score, score, interval, summary_class, summary_level, adaptive_plan.summary_level)
        )
    accuracies = reference_accuracies(
        curve.clean, curve.adversarial, (reference.clean0, reference.adversarial0), scoring.normalise_by
    )
    undecided = [
        (score, interval, dict(zip(SCORES, width_floor(samples, level, *accuracies)))[score_name], level, final)
        for score_name, score, interval, cls, level, final in claims
        if cls not in DECIDED | {"unperturbed"} and not _undefined_for_good(score_name, references, scoring)
    ]
    if not undecided:
        stop = "decided"
    elif all(_out_of_reach(*claim, samples, scoring.tau, adaptive_plan.max_samples) for claim in undecided):
        stop = "futile"
    elif samples >= adaptive_plan.max_samples:
        stop = "maximum"
    else:
        stop = None
    return Look(samples, assessment.classes, intervals, summary, stop)


def _undefined_for_good(score_name: str, references: References, scoring: ScoringPart) -> bool:
    """Whether the score stays undefined at every sample count: a reference accuracy it divides by is
    0 on every drawn sample (a prefix's 0 may not last: a first look of a few samples, all wrong)."""
    unfiltered = references.unfiltered
    return scoring.normalise_by == "unfiltered" and any(not unfiltered[i].any() for i in REFERENCES[score_name])


def _out_of_reach(
    score: float | None, interval: Interval | None, floor: float, level: float, final_level: float, samples: int,
    tau: float, maximum: int,
) -> bool:
    """Whether the interval at the final look could not decide the score where it lies now. That
    interval is this one's (at ``level``) with the bootstrap's half-width shrunk as 1/√n and scaled
    to the final look's critical value (``final_level``: a spending boundary's is narrower than an
    early look's), but never below the few-samples floor at the maximum and that level; an interval
    at its ``floor`` now says nothing of the bootstrap's, so only that floor's own shrinking is
    projected (an optimistic guess costs samples, never a wrong class)."""
    if score is None or interval is None:  # undefined on this prefix only: more samples can define it
        return False
    half = (interval[1] - interval[0]) / 2
    final_floor = floor * floor_share(maximum, final_level) / floor_share(samples, level)
    scale = math.sqrt(samples / maximum) * z_of(final_level) / z_of(level)
    bootstrap = half * scale if half > floor * (1 + 1e-9) else 0.0
    return decision_margin(score, tau) <= max(final_floor, bootstrap)


def history(
    curve: Curve, filter_id: str, references: References, scoring: ScoringPart, adaptive_plan: AdaptivePlan,
    profile: Profile | None = None,
) -> list[Look]:
    """Every look the sweep took, recomputed from its final curve (its columns are the prefix of
    its size; each earlier look saw a prefix of those); a threat ``profile``'s by its rule."""
    ranks = references.ranks[references.columns(curve.clean.shape[1])]
    looks = []
    for samples in adaptive_plan.schedule:
        if samples > curve.clean.shape[1]:
            break
        kept = ranks < samples
        looks.append(_look(_columns(curve, kept), filter_id, references, scoring, adaptive_plan, profile))
    return looks


def _columns(curve: Curve, columns: torch.Tensor) -> Curve:
    return replace(curve, clean=curve.clean[:, columns], adversarial=curve.adversarial[:, columns])


@dataclass(frozen=True)
class Measured:
    """What one look's measuring gives: the filters' curves on the new samples, and how."""

    curves: dict[str, Curve]
    info: EngineInfo


Measure = Callable[[tuple[str, ...], torch.Tensor, Callable[[SweepEvent], None] | None], Measured]


@dataclass(frozen=True)
class LookState:
    """A target's sweeps after its latest finished look: what a resumed target goes on from.

    ``curves`` holds each filter's curve on the samples it has used so far, the first n of the
    seeded order (n: the schedule's size at the look where it ``stopped``, or at ``look`` for the
    filters still looking); ``infos`` is the engine's account of each look taken."""

    look: int  # index in the plan's schedule of the latest finished look
    curves: dict[str, Curve]
    stopped: frozenset[str]  # filters whose sweep has stopped (decided, futile, maximum)
    infos: tuple[EngineInfo, ...]


def grow(
    sweep: SweepPart,
    measure: Measure,
    references: References,
    scoring: ScoringPart,
    adaptive_plan: AdaptivePlan,
    progress: Callable[[SweepEvent], None] | None = None,
    target: str = "",
    start: LookState | None = None,
    on_look: Callable[[LookState], None] | None = None,
    profile: Profile | None = None,
) -> tuple[dict[str, Curve], list[EngineInfo]]:
    """Each of ``sweep.filters``' curve on the samples it needed, and the engine's account of every look.

    ``measure(filters, columns, progress)`` sweeps those filters over the evaluation samples at
    ``columns`` (positions among all drawn). Progress counts filter x threshold x look steps; a
    sweep that stops early counts its remaining looks as done. ``start`` (a state ``on_look`` was
    given) goes on at its next look, measuring only what the filters still looking have not
    seen; ``on_look(state)`` follows every look after which some filter looks again. A threat
    ``profile``'s sweeps stop by its rule (:func:`profile_look`).
    """
    ranks, filter_ids = references.ranks, sweep.filters
    steps = len(filter_ids) * sweep.thresholds
    bits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    current: dict[str, Curve] = {}  # each filter's curve on the samples it has used so far
    stopped: set[str] = set()
    infos: list[EngineInfo] = []
    active, seen, begin = filter_ids, 0, 0
    if start is not None:
        current, stopped, infos = dict(start.curves), set(start.stopped), list(start.infos)
        active = tuple(f for f in filter_ids if f not in stopped)
        for filter_id in active:
            kept = current[filter_id]
            _keep_bits(bits, filter_id, kept, references.columns(kept.clean.shape[1]), len(ranks))
        seen, begin = adaptive_plan.schedule[start.look], start.look + 1
    for index in range(begin, len(adaptive_plan.schedule)) if active else ():
        samples = adaptive_plan.schedule[index]
        new = ((ranks >= seen) & (ranks < samples)).nonzero().squeeze(1)

        def forward(event: SweepEvent, offset=index * steps) -> None:
            progress(replace(event, done=offset + event.done, total=steps * adaptive_plan.looks))

        measured = measure(active, new, forward if progress else None)
        infos.append(measured.info)
        prefix = references.columns(samples)
        for filter_id in active:
            curve = measured.curves[filter_id]
            _keep_bits(bits, filter_id, curve, new, len(ranks))
            clean, adversarial = bits[filter_id]
            grown = replace(current.get(filter_id, curve), clean=clean[:, prefix], adversarial=adversarial[:, prefix])
            current[filter_id] = grown
            if _look(grown, filter_id, references, scoring, adaptive_plan, profile).stop is not None:
                stopped.add(filter_id)
        active, seen = tuple(f for f in active if f not in stopped), samples
        if not active:
            break
        if on_look is not None:
            on_look(LookState(index, dict(current), frozenset(stopped), tuple(infos)))
    if progress is not None:
        progress(SweepEvent(target, filter_ids[-1], steps * adaptive_plan.looks, steps * adaptive_plan.looks))
    return {f: current[f] for f in filter_ids}, infos


def _keep_bits(
    bits: dict[str, tuple[torch.Tensor, torch.Tensor]], filter_id: str, curve: Curve, columns: torch.Tensor, drawn: int
) -> None:
    """Record ``curve``'s bits at ``columns`` among the ``drawn`` samples (False where not yet evaluated)."""
    if filter_id not in bits:
        shape = (curve.clean.shape[0], drawn)
        budgets = curve.adversarial.shape[2:]  # a threat profile's adversarial bits: [thresholds, samples, budgets]
        bits[filter_id] = torch.zeros(shape, dtype=torch.bool), torch.zeros((*shape, *budgets), dtype=torch.bool)
    bits[filter_id][0][:, columns], bits[filter_id][1][:, columns] = curve.clean, curve.adversarial


# --- Threat profiles (fragscan.sweep.threats): looks that wait for every budget's classes -----------------


def planned_level(adaptive_plan: AdaptivePlan | None, members: int, samples: int | None = None) -> float:
    """The per-claim level of a family of ``members`` claims at 95 % together, each looked at by
    the adaptive plan's looks, at the look of ``samples`` (default: the final one): the plan's
    repeated-interval z for α = 0.05/members over the planned look sizes (Pocock's, or the spending
    boundary's at that look), or as schema 2.1 reports were judged, Bonferroni over the looks too;
    without a plan, Bonferroni over the members."""
    if adaptive_plan is None or adaptive_plan.interval_adjustment == "bonferroni":
        return family_level(members, 1 if adaptive_plan is None else adaptive_plan.looks)
    critical = _critical_values(adaptive_plan.look_boundary, adaptive_plan.schedule, (1 - LEVEL) / max(1, members))
    one_for_all = samples is None or adaptive_plan.filter_zs is None  # Pocock's: the same z at every look
    return level_of(critical[-1 if one_for_all else adaptive_plan.schedule.index(samples)])


def family_plan(adaptive_plan: AdaptivePlan, members: int, summary_members: int) -> AdaptivePlan:
    """``adaptive_plan`` with its per-filter claims a family of ``members`` and its summary claims one of
    ``summary_members``, at 95 % together each (:func:`planned_level`), at every look."""
    levels = {
        "filter_level": planned_level(adaptive_plan, members),
        "summary_level": planned_level(adaptive_plan, summary_members),
    }
    if adaptive_plan.filter_zs is not None:
        for name, family in (("filter_zs", members), ("summary_zs", summary_members)):
            levels[name] = _critical_values(adaptive_plan.look_boundary, adaptive_plan.schedule, (1 - LEVEL) / family)
    return adaptive_plan.model_copy(update=levels)


@dataclass(frozen=True)
class Profile:
    """A threat profile's sweeps, as the stopping rule sees them: the unfiltered network's reference
    per budget, the headline budget's index, and the plan its per-budget claims are looked at by
    (repeated intervals over the plan's looks, for α/B per filter and α/(G·B) per group, the
    surface's Bonferroni families; :func:`family_plan`)."""

    references: list[References]
    headline: int
    per_budget: AdaptivePlan


def profile(adaptive_plan: AdaptivePlan, references: list[References], headline: int, groups: int) -> Profile:
    budgets = len(references)
    return Profile(references, headline, family_plan(adaptive_plan, budgets, groups * budgets))


def profile_look(
    curve: Curve, filter_id: str, profile: Profile, scoring: ScoringPart, adaptive_plan: AdaptivePlan
) -> Look:
    """A look at a profile's sweep (adversarial bits [thresholds, samples, budgets]): the headline
    budget's look, as a one-budget scan's (its classes and intervals are the report's looks), that
    stops only once every budget's claims have stopped too: per budget the adversarial and
    difference classes (clean accuracy does not depend on ε) and, for the summary filter, the
    group's class, each decided or out of reach at its repeated-interval level."""
    budgets = [
        look(replace(curve, adversarial=curve.adversarial[..., i]), filter_id, reference, scoring, profile.per_budget,
             scores=("adversarial", "difference"))
        for i, reference in enumerate(profile.references)
    ]
    headline = look(
        replace(curve, adversarial=curve.adversarial[..., profile.headline]), filter_id,
        profile.references[profile.headline], scoring, adaptive_plan,
    )
    stops = [headline.stop, *(b.stop for b in budgets)]
    if None in stops:
        stop = None
    elif all(s == "decided" for s in stops):
        stop = "decided"
    elif "maximum" in stops:  # some claim still within reach, and no sample left
        stop = "maximum"
    else:  # every claim decided or out of reach, some out of reach
        stop = "futile"
    return replace(headline, stop=stop)


def _look(
    curve: Curve, filter_id: str, references: References, scoring: ScoringPart, adaptive_plan: AdaptivePlan,
    profile: Profile | None,
) -> Look:
    if profile is None:
        return look(curve, filter_id, references, scoring, adaptive_plan)
    return profile_look(curve, filter_id, profile, scoring, adaptive_plan)
