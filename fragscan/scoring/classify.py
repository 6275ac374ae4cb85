"""Scores to classes (method §5, §6): pure functions.

Two rules. ``evidence`` (the default) makes a claim only where the score's interval supports it:
the whole interval below −τ is ``fragile``, above +τ ``antifragile``, within ±τ ``robust``, and
anything else ``inconclusive``. ``tau`` is the source's point rule on the score alone.
"""

from __future__ import annotations

import math

from ..config import Rule
from ..report.model import Class, Interval


def classify(
    score: float | None,
    tau: float,
    *,
    perturbed: bool = True,
    interval: Interval | None = None,
    rule: Rule = "evidence",
) -> Class:
    """The class of one score under ``rule``.

    A sweep that altered no entry measured nothing, so it is ``unperturbed``; a score whose
    reference accuracy was 0 is ``undefined``. Under ``evidence`` a score without an interval
    (``--bootstrap 0``, or undefined in most resamples) cannot be decided: ``inconclusive``.
    """
    if not perturbed:
        return "unperturbed"
    if score is None:
        return "undefined"
    if rule == "evidence":
        return "inconclusive" if interval is None else evidence_class(interval, tau)
    if score < -tau:
        return "fragile"
    if score > tau:
        return "antifragile"
    return "robust"


def evidence_class(interval: Interval, tau: float) -> Class:
    """Where the whole interval lies relative to ±τ; ``inconclusive`` when it straddles a boundary."""
    low, high = interval
    if high < -tau:
        return "fragile"
    if low > tau:
        return "antifragile"
    if -tau <= low and high <= tau:
        return "robust"
    return "inconclusive"


def decision_margin(score: float, tau: float) -> float:
    """How far the point estimate sits from the nearest class boundary (±τ): the largest interval
    half-width that could still decide a score centred there."""
    return abs(abs(score) - tau)


def samples_to_decide(score: float | None, half_width: float | None, samples: int, tau: float) -> int | None:
    """About how many samples would shrink the interval (half-width ∝ 1/√n) enough to decide the
    score where its point estimate lies now; ``None`` when no sample count would (the point sits
    on a boundary) or nothing is known."""
    if score is None or half_width is None or samples < 1:
        return None
    margin = decision_margin(score, tau)
    if margin == 0:
        return None
    if half_width < margin:
        return samples
    return math.ceil(samples * (half_width / margin) ** 2)
