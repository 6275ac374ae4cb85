"""Scores to classes (method §5): pure functions."""

from __future__ import annotations

from typing import Literal

Class = Literal["fragile", "robust", "antifragile", "unperturbed", "undefined"]


def classify(score: float | None, tau: float, *, perturbed: bool = True) -> Class:
    """``fragile`` below −tau, ``antifragile`` above tau, ``robust`` within.

    A sweep that altered no entry measured nothing, so it is ``unperturbed``, never robust; a score
    whose reference accuracy was 0 is ``undefined``.
    """
    if not perturbed:
        return "unperturbed"
    if score is None:
        return "undefined"
    if score < -tau:
        return "fragile"
    if score > tau:
        return "antifragile"
    return "robust"
