"""Adaptive sampling (method §5b): each (group, filter) sweep grows its samples until the classes
it contributes are decided, out of reach, or it has used every drawn sample.

A sweep first looks at the first K samples of the seeded order, then at 2K, 4K, ... up to the
samples drawn. Each look evaluates only the samples new to it (every filtered network sees each
sample once) and reuses the unfiltered network's bits, measured once on every drawn sample. A
sweep at n samples is scored on exactly the samples, in the order, that a scan with
``max_samples=n`` evaluates, against the same reference and bootstrap (:mod:`fragscan.assess`):
its numbers are that scan's.

Looking several times would inflate the error rate, so every interval is a Bonferroni interval
over the planned looks: per-filter classes at 1 − 0.05/L, the summary class (one per group, a
family over the G groups) at 1 − 0.05/(G·L). The stopping rule and the report use those levels.

A look is also the unit of checkpointing: :func:`grow` hands its state after each look
(:class:`Rounds`) to a callback and can start from such a state, so an interrupted target goes on
at its next look. This module does no file I/O; the caller keeps the state
(:mod:`fragscan.resume`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from .assess import SCORES, References, assess
from .classify import DECIDED, Class, classify, samples_to_decide
from .confidence import Interval, family_level
from .config import Adaptive, AdaptivePlan, ScanConfig
from .engine import Curve, EngineInfo, SweepEvent

FUTILITY = (
    "a sweep stops undecided when each undecided class is out of reach: its interval's half-width, "
    "shrunk as 1/sqrt(n) to max_samples, would still exceed the distance of its score to the nearest of ±tau"
)
# Classes no further sample changes: the sweep altered nothing, or the reference accuracy is 0.
SETTLED = DECIDED | {"unperturbed", "undefined"}


def plan(adaptive: Adaptive, drawn: int, groups: int) -> AdaptivePlan:
    """The looks (K, 2K, 4K, ... then every drawn sample) and the interval levels they imply."""
    schedule = []
    samples = min(adaptive.initial_samples, drawn)
    while samples < drawn:
        schedule.append(samples)
        samples *= 2
    schedule.append(drawn)
    looks = len(schedule)
    return AdaptivePlan(
        initial_samples=adaptive.initial_samples,
        max_samples=drawn,
        schedule=schedule,
        looks=looks,
        filter_level=family_level(1, looks),
        summary_level=family_level(groups, looks),
        futility=FUTILITY,
    )


@dataclass(frozen=True)
class Look:
    """One look at one sweep: its classes and intervals at the plan's levels, and whether it stops."""

    samples: int
    classes: dict[str, Class]
    intervals: dict[str, Interval]
    summary: tuple[Class, Interval] | None  # the summary filter's summary score, at the summary level
    stop: str | None  # "decided", "futile" (some class out of reach), "maximum"; None: look again


def look(curve: Curve, filter_id: str, references: References, config: ScanConfig, adaptive: AdaptivePlan) -> Look:
    samples = curve.clean.shape[1]
    reference = references.at(samples)
    assessment = assess(curve, reference, config, adaptive.filter_level)
    intervals = {s: None if assessment.intervals is None else getattr(assessment.intervals, s) for s in SCORES}
    claims = [(getattr(assessment.scores, s), intervals[s], assessment.classes[s]) for s in SCORES]
    summary = None
    if filter_id == config.summary_filter:
        wide = assess(curve, reference, config, adaptive.summary_level)
        score = getattr(wide.scores, config.summary_score)
        interval = None if wide.intervals is None else getattr(wide.intervals, config.summary_score)
        summary_class = classify(
            score, config.tau, perturbed=any(curve.changed), interval=interval, rule=config.classify
        )
        summary = summary_class, interval
        claims.append((score, interval, summary_class))
    undecided = [(score, interval) for score, interval, cls in claims if cls not in SETTLED]
    if not undecided:
        stop = "decided"
    elif all(_out_of_reach(s, interval, samples, config.tau, adaptive.max_samples) for s, interval in undecided):
        stop = "futile"
    elif samples >= adaptive.max_samples:
        stop = "maximum"
    else:
        stop = None
    return Look(samples, assessment.classes, intervals, summary, stop)


def _out_of_reach(score: float | None, interval: Interval, samples: int, tau: float, maximum: int) -> bool:
    if interval is None:  # undefined in most resamples: no sample count gives it an interval
        return True
    needed = samples_to_decide(score, (interval[1] - interval[0]) / 2, samples, tau)
    return needed is None or needed > maximum


def history(
    curve: Curve, filter_id: str, references: References, config: ScanConfig, adaptive: AdaptivePlan
) -> list[Look]:
    """Every look the sweep took, recomputed from its final curve (its columns are the prefix of
    its size; each earlier look saw a prefix of those)."""
    ranks = references.ranks[references.columns(curve.clean.shape[1])]
    looks = []
    for samples in adaptive.schedule:
        if samples > curve.clean.shape[1]:
            break
        kept = ranks < samples
        looks.append(look(_columns(curve, kept), filter_id, references, config, adaptive))
    return looks


def _columns(curve: Curve, columns: torch.Tensor) -> Curve:
    return replace(curve, clean=curve.clean[:, columns], adversarial=curve.adversarial[:, columns])


@dataclass(frozen=True)
class Evaluated:
    """What one look's evaluation gives: the filters' curves on the new samples, and how."""

    curves: dict[str, Curve]
    info: EngineInfo


Evaluate = Callable[[tuple[str, ...], torch.Tensor, Callable[[SweepEvent], None] | None], Evaluated]


@dataclass(frozen=True)
class Rounds:
    """A target's sweeps after its latest finished look: what a resumed target goes on from.

    ``curves`` holds each filter's curve on the samples it has used so far, the first n of the
    seeded order (n: the schedule's size at the look where it ``stopped``, or at ``look`` for the
    filters still looking); ``infos`` is the engine's account of each look taken."""

    look: int  # index in the plan's schedule of the latest finished look
    curves: dict[str, Curve]
    stopped: frozenset[str]  # filters whose sweep has stopped (decided, futile, maximum)
    infos: tuple[EngineInfo, ...]


def grow(
    filter_ids: tuple[str, ...],
    evaluate: Evaluate,
    references: References,
    config: ScanConfig,
    adaptive: AdaptivePlan,
    progress: Callable[[SweepEvent], None] | None = None,
    target: str = "",
    start: Rounds | None = None,
    on_look: Callable[[Rounds], None] | None = None,
) -> tuple[dict[str, Curve], list[EngineInfo]]:
    """Each filter's curve on the samples it needed, and the engine's account of every look.

    ``evaluate(filters, columns, progress)`` sweeps those filters over the evaluated samples at
    ``columns`` (positions among all drawn). Progress counts filter x threshold x look steps; a
    sweep that stops early counts its remaining looks as done. ``start`` (a state ``on_look`` was
    given) goes on at its next look, evaluating only what the filters still looking have not
    seen; ``on_look(state)`` follows every look after which some filter looks again.
    """
    ranks = references.ranks
    steps = len(filter_ids) * config.thresholds
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
        seen, begin = adaptive.schedule[start.look], start.look + 1
    for index in range(begin, len(adaptive.schedule)) if active else ():
        samples = adaptive.schedule[index]
        new = ((ranks >= seen) & (ranks < samples)).nonzero().squeeze(1)

        def forward(event: SweepEvent, offset=index * steps) -> None:
            progress(replace(event, done=offset + event.done, total=steps * adaptive.looks))

        evaluated = evaluate(active, new, forward if progress else None)
        infos.append(evaluated.info)
        prefix = references.columns(samples)
        for filter_id in active:
            curve = evaluated.curves[filter_id]
            _keep_bits(bits, filter_id, curve, new, len(ranks))
            clean, adversarial = bits[filter_id]
            grown = replace(current.get(filter_id, curve), clean=clean[:, prefix], adversarial=adversarial[:, prefix])
            current[filter_id] = grown
            if look(grown, filter_id, references, config, adaptive).stop is not None:
                stopped.add(filter_id)
        active, seen = tuple(f for f in active if f not in stopped), samples
        if not active:
            break
        if on_look is not None:
            on_look(Rounds(index, dict(current), frozenset(stopped), tuple(infos)))
    if progress is not None:
        progress(SweepEvent(target, filter_ids[-1], steps * adaptive.looks, steps * adaptive.looks))
    return {f: current[f] for f in filter_ids}, infos


def _keep_bits(
    bits: dict[str, tuple[torch.Tensor, torch.Tensor]], filter_id: str, curve: Curve, columns: torch.Tensor, drawn: int
) -> None:
    """Record ``curve``'s bits at ``columns`` among the ``drawn`` samples (False where not yet evaluated)."""
    if filter_id not in bits:
        shape = (curve.clean.shape[0], drawn)
        bits[filter_id] = torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, dtype=torch.bool)
    bits[filter_id][0][:, columns], bits[filter_id][1][:, columns] = curve.clean, curve.adversarial
