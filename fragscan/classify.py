"""Scores to classes (method §5): pure functions."""

from __future__ import annotations

from typing import Literal

Class = Literal["fragile", "robust", "antifragile", "unperturbed", "undefined"]


def classify(
    score: float | None,
    tau: float,
    *,
    perturbed: bool = True,
    interval: tuple[float, float] | None = None,
    mode: Literal["tau", "ci"] = "tau",
) -> Class:
    """``fragile`` below −tau, ``antifragile`` above tau, ``robust`` within.

    ``mode='ci'`` uses the score's bootstrap ``interval``: robust when it contains 0 or lies within
    ±tau, otherwise fragile or antifragile by the side of 0 it lies on. A sweep that altered no entry
    measured nothing, so it is ``unperturbed``, never robust; a score whose reference accuracy was
    0 (or, in ci mode, without an interval) is ``undefined``.
    """
    if not perturbed:
        return "unperturbed"
    if score is None:
        return "undefined"
    if mode == "ci":
        if interval is None:
            return "undefined"
        low, high = interval
        if low <= 0 <= high or (-tau <= low and high <= tau):
            return "robust"
        return "fragile" if high < 0 else "antifragile"
    if score < -tau:
        return "fragile"
    if score > tau:
        return "antifragile"
    return "robust"
