"""The tidy long CSV: one row per group × filter × threshold (× budget, for a threat profile), rendered
from a Report alone."""

from __future__ import annotations

import csv
import io

from .model import FilterCurve, Report

CURVE_COLUMNS = (
    "group", "filter", "threshold_index", "threshold", "position", "removed", "numel", "samples", "clean", "adversarial"
)
BUDGET_COLUMNS = CURVE_COLUMNS[:2] + ("eps",) + CURVE_COLUMNS[2:]  # a threat profile's: a row per budget too
GLOBAL_GROUP = "(global)"


def _budgets(report: Report, curve: FilterCurve) -> list[tuple[float, list[float]]]:
    """Each budget of ``report``'s threat profile with ``curve``'s adversarial accuracies there: the headline's
    are the curve's own, every other budget's its surface row, the worst case at that budget as the scan
    measured it from the surface's bits (what :func:`fragscan.scoring.surface.at_budget` restates). A curve
    without a surface (a damaged report) has the headline's rows alone."""
    threat = report.threat
    return [
        (eps, curve.adversarial if eps == threat.headline else curve.surface.adversarial[i])
        for i, eps in enumerate(threat.budgets)
        if eps == threat.headline or curve.surface is not None
    ]


def _rows(report: Report, group: str, numel: int | str, filters: dict[str, FilterCurve]):
    for filter_id, curve in filters.items():
        budgets = [(None, curve.adversarial)] if report.threat is None else _budgets(report, curve)
        for eps, adversarial in budgets:
            for index, threshold in enumerate(curve.thresholds):
                yield (
                    group, filter_id, *(() if eps is None else (eps,)), index, threshold, curve.positions[index],
                    curve.removed[index], numel, curve.samples, curve.clean[index], adversarial[index],
                )


def curves_csv(report: Report) -> str:
    """``removed`` counts zeroed entries of ``numel``; accuracies are shares of the ``samples`` the
    sweep evaluated (all drawn, or fewer for an adaptive sweep that stopped early).
    Global-scope curves (all groups filtered at once) appear as group ``(global)``, with ``numel``
    empty: the report does not record the pooled size.
    A threat profile's CSV has an ``eps`` column after ``filter`` and a row per budget of the profile
    (ascending) at each threshold: ``adversarial`` is the worst case at that budget, ``clean`` the same at
    every budget; its rows at the headline budget are the body's curves, as a one-budget scan writes them."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CURVE_COLUMNS if report.threat is None else BUDGET_COLUMNS)
    for group in report.groups:
        writer.writerows(_rows(report, group.name, group.numel, group.filters))
    if report.global_:
        writer.writerows(_rows(report, GLOBAL_GROUP, "", report.global_))
    return buffer.getvalue()
